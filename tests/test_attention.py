"""Complete-graph attention: equality with an explicit complete-graph edge list, no leakage, symmetry, biases."""

from __future__ import annotations

import math

import networkx as nx
import pytest
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.nn import TransformerConv
from torch_geometric.utils import scatter, softmax

from gdl_graphs.nn.attention import (
    AddShortestPathDistance,
    EdgeBias,
    GraphMultiheadAttention,
    GraphTransformerLayer,
    SPDBias,
    graph_attention,
    shortest_path_distance,
)
from gdl_graphs.nn.attention.transformer import block_size
from gdl_graphs.testing import assert_permutation_equivariant, check_symmetry
from tests.conftest import random_batch, random_graph

MIXED_SIZES = (1, 64, 2, 3, 17, 5, 33, 8, 1, 12, 40, 7)  # graph sizes 1..64, many block lengths


# ---------------------------------------------------------------------------------------------------------------
# The reference: attention as message passing on an explicit complete-graph edge list
# ---------------------------------------------------------------------------------------------------------------
def complete_graph_edges(batch: Tensor) -> Tensor:
    """All ordered pairs (j -> i) of nodes of the same graph, self-pairs included: [2, sum_g n_g^2]."""
    same = batch[:, None] == batch[None, :]
    dst, src = same.nonzero(as_tuple=True)
    return torch.stack([src, dst])


def reference_attention(q, k, v, batch, pair_bias=None):
    """softmax_j(<q_i, k_j>/sqrt(d) + b_ij) v_j over the complete-graph edge list; pair_bias(src, dst) -> [P, H]."""
    src, dst = complete_graph_edges(batch)
    scores = (q[dst] * k[src]).sum(-1) / math.sqrt(q.size(-1))
    if pair_bias is not None:
        scores = scores + pair_bias(src, dst)
    alpha = softmax(scores, dst, num_nodes=q.size(0))
    return scatter(alpha.unsqueeze(-1) * v[src], dst, dim=0, dim_size=q.size(0), reduce="sum")


def reference_mha(module: GraphMultiheadAttention, x, batch, pair_bias=None):
    heads, d = module.heads, module.channels // module.heads
    q, k, v = module.qkv(x).view(x.size(0), 3, heads, d).unbind(1)
    return module.out(reference_attention(q, k, v, batch, pair_bias).reshape(x.size(0), -1))


def reference_layer(layer: GraphTransformerLayer, x, batch, pair_bias=None):
    attn = lambda h: reference_mha(layer.attn, h, batch, pair_bias)  # noqa: E731
    if layer.norm_first:
        h = x + attn(layer.norm1(x))
        return h + layer.ffn(layer.norm2(h))
    h = layer.norm1(x + attn(x))
    return layer.norm2(h + layer.ffn(h))


def edge_pair_bias(bias: EdgeBias, edge_index, edge_attr, num_nodes):
    """Sum of w^T e over the edges j -> i of each pair, by hashing pairs (independent of to_dense_adj)."""
    table = torch.zeros(num_nodes * num_nodes, bias.heads, dtype=edge_attr.dtype)
    table = table.index_add(0, edge_index[0] * num_nodes + edge_index[1], bias.lin(edge_attr))
    return lambda src, dst: table[src * num_nodes + dst]


def spd_pair_bias(bias: SPDBias, data: Batch):
    """Distances from networkx BFS per graph (independent of scipy), looked up in the bias's table."""
    far = bias.max_distance + 1
    dist = torch.full((data.num_nodes, data.num_nodes), far, dtype=torch.long)
    for g in range(data.num_graphs):
        lo, hi = int(data.ptr[g]), int(data.ptr[g + 1])
        graph = nx.MultiDiGraph()
        graph.add_nodes_from(range(lo, hi))
        graph.add_edges_from(e for e in data.edge_index.t().tolist() if lo <= e[0] < hi)
        for u, lengths in nx.all_pairs_shortest_path_length(graph):
            for v, length in lengths.items():
                dist[u, v] = min(length, far)
    return lambda src, dst: bias.table(dist[src, dst])


def mixed_batch(sizes=MIXED_SIZES, channels=16, edge_dim=None, dtype=torch.float32, seed=0):
    return random_batch(sizes, channels=channels, seed=seed, edge_dim=edge_dim, dtype=dtype)


# ---------------------------------------------------------------------------------------------------------------
# Equality with the reference
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sizes", [MIXED_SIZES, (16,) * 5, (10, 10, 9)], ids=["mixed", "uniform", "one-block"])
# float64 pins the equality; float32 allows its rounding (a full CI run once saw 4.0e-5 on the mixed batch, where
# the same test alone gives less than 1e-5: the SDPA kernel's float32 blocking is not fixed from run to run)
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-4), (torch.float64, 1e-12)])
def test_graph_attention_equals_complete_graph_reference(dtype, atol, sizes):
    data = mixed_batch(sizes, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(data.num_nodes, 4, 8, generator=g, dtype=dtype) for _ in range(3))
    out = graph_attention(q, k, v, data.batch)
    torch.testing.assert_close(out, reference_attention(q, k, v, data.batch), atol=atol, rtol=0)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_layer_equals_reference(norm_first):
    data = mixed_batch()
    layer = GraphTransformerLayer(16, heads=4, norm_first=norm_first).eval()
    with torch.no_grad():
        out = layer(data.x, data.batch)
        torch.testing.assert_close(out, reference_layer(layer, data.x, data.batch), atol=1e-5, rtol=0)


def test_attention_equals_pyg_transformer_conv_on_complete_graph():
    """Same weights, PyG's TransformerConv on the explicit complete-graph edge list: same output."""
    data = mixed_batch()
    channels, heads = 16, 4
    ours = GraphMultiheadAttention(channels, heads)
    pyg = TransformerConv(channels, channels // heads, heads=heads, root_weight=False)
    with torch.no_grad():
        wq, wk, wv = ours.qkv.weight.chunk(3)
        bq, bk, bv = ours.qkv.bias.chunk(3)
        for lin, w, b in ((pyg.lin_query, wq, bq), (pyg.lin_key, wk, bk), (pyg.lin_value, wv, bv)):
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        ours.out.weight.copy_(torch.eye(channels))
        ours.out.bias.zero_()
        expected = pyg(data.x, complete_graph_edges(data.batch))
        torch.testing.assert_close(ours(data.x, data.batch), expected, atol=1e-5, rtol=0)


def test_edge_and_spd_bias_equal_reference():
    data = AddShortestPathDistance()(mixed_batch(edge_dim=3))
    layer = GraphTransformerLayer(16, heads=4).eval()
    edge_bias, spd_bias = EdgeBias(3, 4), SPDBias(max_distance=3, heads=4)
    with torch.no_grad():
        bias = (edge_bias(data.edge_index, data.edge_attr, data.batch)
                + spd_bias(data.spd_index, data.spd, data.batch))
        out = layer(data.x, data.batch, bias)
        by_edge = edge_pair_bias(edge_bias, data.edge_index, data.edge_attr, data.num_nodes)
        by_spd = spd_pair_bias(spd_bias, data)
        for pair_bias in (by_edge, by_spd):  # each bias alone changes the output
            assert not torch.allclose(out, reference_layer(layer, data.x, data.batch, pair_bias), atol=1e-3)
        expected = reference_layer(layer, data.x, data.batch, lambda s, d: by_edge(s, d) + by_spd(s, d))
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_gradients_equal_reference():
    data = AddShortestPathDistance(max_distance=4)(mixed_batch(sizes=(1, 9, 30, 4), edge_dim=3, dtype=torch.float64))
    layer = GraphTransformerLayer(16, heads=4).double()
    edge_bias, spd_bias = EdgeBias(3, 4).double(), SPDBias(2, 4).double()
    params = [*layer.parameters(), *edge_bias.parameters(), *spd_bias.parameters()]
    x = data.x.clone().requires_grad_()

    bias = edge_bias(data.edge_index, data.edge_attr, data.batch) + spd_bias(data.spd_index, data.spd, data.batch)
    ours = torch.autograd.grad(layer(x, data.batch, bias).square().sum(), [x, *params])
    by_edge = edge_pair_bias(edge_bias, data.edge_index, data.edge_attr, data.num_nodes)
    by_spd = spd_pair_bias(spd_bias, data)
    out = reference_layer(layer, x, data.batch, lambda s, d: by_edge(s, d) + by_spd(s, d))
    expected = torch.autograd.grad(out.square().sum(), [x, *params])
    for a, b in zip(ours, expected):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-8)


# ---------------------------------------------------------------------------------------------------------------
# No leakage across graphs
# ---------------------------------------------------------------------------------------------------------------
def _outputs_per_graph(layer, graphs, with_bias):
    data = Batch.from_data_list(graphs)
    bias = None
    if with_bias:
        data = AddShortestPathDistance()(data)
        bias = (layer.edge_bias(data.edge_index, data.edge_attr, data.batch)
                + layer.spd_bias(data.spd_index, data.spd, data.batch))
    out = layer(data.x, data.batch, bias)
    return [out[data.batch == g] for g in range(len(graphs))]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("new_size", [5, 2, 11, 60])  # same size, smaller, same block as B, larger than all
def test_changing_one_graph_leaves_the_others_bit_identical(with_bias, new_size):
    layer = GraphTransformerLayer(16, heads=4).eval()
    layer.edge_bias, layer.spd_bias = EdgeBias(3, 4), SPDBias(3, 4)
    graph_a = random_graph(5, 15, 16, edge_dim=3, seed=0)
    others = [random_graph(9, 27, 16, edge_dim=3, seed=1), random_graph(3, 9, 16, edge_dim=3, seed=2)]
    changed_a = random_graph(new_size, 3 * new_size, 16, edge_dim=3, seed=100)
    with torch.no_grad():
        before = _outputs_per_graph(layer, [graph_a, *others], with_bias)
        after = _outputs_per_graph(layer, [changed_a, *others], with_bias)
    assert not torch.equal(before[0][: min(5, new_size)], after[0][: min(5, new_size)])
    for b, a in zip(before[1:], after[1:]):
        assert torch.equal(b, a)


def test_batch_equals_graphs_one_by_one():
    data = mixed_batch()
    layer = GraphTransformerLayer(16, heads=4).eval()
    with torch.no_grad():
        out = layer(data.x, data.batch)
        for g, graph in enumerate(data.to_data_list()):
            torch.testing.assert_close(out[data.batch == g], layer(graph.x), atol=1e-6, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# Symmetry
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: GraphMultiheadAttention(16, 4), lambda: GraphTransformerLayer(16, 4),
                                  lambda: GraphTransformerLayer(16, 2, norm="batch_norm", norm_first=False)],
                         ids=["attention", "pre-norm layer", "post-norm batch-norm layer"])
def test_permutation_equivariant(make):
    module = make()
    assert module.symmetry == "S_n-equivariant"
    assert check_symmetry(module, mixed_batch()) < 1e-4
    assert_permutation_equivariant(module, random_graph(12, 30, 16))


def test_permutation_equivariant_with_biases():
    """Biases recomputed from the permuted graph (distances included) permute with the nodes."""
    layer = GraphTransformerLayer(16, heads=4)
    edge_bias, spd_bias = EdgeBias(3, 4), SPDBias(2, 4)

    def call(module, data):
        spd_index, spd = shortest_path_distance(data.edge_index, data.num_nodes, data.batch)
        bias = edge_bias(data.edge_index, data.edge_attr, data.batch) + spd_bias(spd_index, spd, data.batch)
        return module(data.x, data.batch, bias)

    assert_permutation_equivariant(layer, mixed_batch(edge_dim=3), call=call, output_kinds="node")


def pair_to_node(dense: Tensor, batch: Tensor) -> Tensor:
    """Node-level summary of a [B, H, n, n] pair tensor: row sums, column sums and diagonal of each node: [N, 3H]."""
    local = torch.arange(batch.numel()) - torch.bincount(batch).cumsum(0).sub(torch.bincount(batch))[batch]
    rows = dense[batch, :, local, :].sum(-1)
    cols = dense[batch, :, :, local].sum(-1)
    return torch.cat([rows, cols, dense[batch, :, local, local]], dim=-1)


def test_bias_modules_are_permutation_equivariant():
    """P b P^T: checked through node-level summaries of the pair tensor (the kit has no pair-level kind)."""
    data = mixed_batch(sizes=(1, 9, 30, 4), edge_dim=3)
    edge_bias, spd_bias = EdgeBias(3, 4), SPDBias(3, 4)
    assert edge_bias.symmetry == spd_bias.symmetry == "S_n-equivariant"
    assert_permutation_equivariant(
        edge_bias, data, output_kinds="node",
        call=lambda m, d: pair_to_node(m(d.edge_index, d.edge_attr, d.batch), d.batch))
    assert_permutation_equivariant(
        spd_bias, data, output_kinds="node",
        call=lambda m, d: pair_to_node(m(*shortest_path_distance(d.edge_index, d.num_nodes, d.batch), d.batch),
                                       d.batch))


# ---------------------------------------------------------------------------------------------------------------
# Padding, tiny and empty graphs, dropout
# ---------------------------------------------------------------------------------------------------------------
def test_single_node_and_empty_graphs_give_finite_outputs_and_gradients():
    graphs = [random_graph(1, 1, 16, edge_dim=3), Data(x=torch.zeros(0, 16), edge_index=torch.zeros(2, 0).long(),
                                                       edge_attr=torch.zeros(0, 3)),
              random_graph(6, 12, 16, edge_dim=3, seed=1), random_graph(1, 0, 16, edge_dim=3, seed=2)]
    data = AddShortestPathDistance()(Batch.from_data_list(graphs))
    layer = GraphTransformerLayer(16, heads=4)
    spd_bias, edge_bias = SPDBias(2, 4), EdgeBias(3, 4)
    bias = spd_bias(data.spd_index, data.spd, data.batch) + edge_bias(data.edge_index, data.edge_attr, data.batch)
    out = layer(data.x, data.batch, bias)
    out.square().sum().backward()
    assert out.shape == (8, 16) and torch.isfinite(out).all()
    for p in (*layer.parameters(), *spd_bias.parameters(), *edge_bias.parameters()):
        assert torch.isfinite(p.grad).all()
    # a one-node graph attends only to itself (softmax weight 1 on its own value, whatever the bias)
    with torch.no_grad():
        alone = layer(data.x[:1])
        torch.testing.assert_close(out[:1], alone)
        h = layer.norm1(data.x[:1])
        torch.testing.assert_close(layer.attn(h), layer.attn.out(layer.attn.qkv(h)[:, 32:]))


def test_attention_dropout_is_active_only_in_training():
    data = mixed_batch()
    layer = GraphTransformerLayer(16, heads=4, attn_dropout=0.5)
    torch.manual_seed(3)
    first = layer(data.x, data.batch)
    torch.manual_seed(3)
    assert torch.equal(first, layer(data.x, data.batch))  # seeded: reproducible
    assert not torch.allclose(first, layer(data.x, data.batch))  # fresh masks
    layer.eval()
    assert torch.equal(layer(data.x, data.batch), layer(data.x, data.batch))


def test_block_size():
    assert [block_size(n) for n in (1, 2, 3, 4, 5, 7, 9, 13, 17, 100, 128, 129)] == \
        [1, 2, 3, 4, 6, 8, 12, 16, 24, 128, 128, 192]
    for n in range(1, 3000):
        assert n <= block_size(n) <= 1.5 * n


# ---------------------------------------------------------------------------------------------------------------
# Shortest-path distances
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("directed", [True, False])
def test_shortest_path_distance_matches_networkx(directed):
    data = random_graph(25, 30, seed=4)
    spd_index, spd = shortest_path_distance(data.edge_index, 25, max_distance=3, directed=directed)
    graph = (nx.DiGraph if directed else nx.Graph)()
    graph.add_nodes_from(range(25))
    graph.add_edges_from(data.edge_index.t().tolist())
    expected = {(u, v): d for u, lengths in nx.all_pairs_shortest_path_length(graph, cutoff=3)
                for v, d in lengths.items()}
    assert dict(zip(map(tuple, spd_index.t().tolist()), spd.tolist())) == expected


def test_spd_transform_batches_like_edge_index():
    graphs = [random_graph(n, 2 * n, seed=n) for n in (4, 1, 7)]
    batch = Batch.from_data_list([AddShortestPathDistance()(g.clone()) for g in graphs])
    spd_index, spd = shortest_path_distance(batch.edge_index, batch.num_nodes, batch.batch)
    assert torch.equal(batch.spd_index, spd_index) and torch.equal(batch.spd, spd)
    assert bool((batch.batch[spd_index[0]] == batch.batch[spd_index[1]]).all())


# ---------------------------------------------------------------------------------------------------------------
# Errors and repr
# ---------------------------------------------------------------------------------------------------------------
def test_bad_input_raises_value_errors():
    layer = GraphTransformerLayer(16, heads=4)
    data = mixed_batch(sizes=(3, 4), edge_dim=3)
    with pytest.raises(ValueError, match="heads"):
        GraphTransformerLayer(16, heads=3)
    with pytest.raises(ValueError, match="norm"):
        GraphTransformerLayer(16, norm="group")
    with pytest.raises(ValueError, match="dropout"):
        GraphTransformerLayer(16, dropout=1.0)
    with pytest.raises(ValueError, match="x has 8 features"):
        layer(data.x[:, :8], data.batch)
    with pytest.raises(ValueError, match="batch must be sorted"):
        layer(data.x, data.batch.flip(0))
    with pytest.raises(ValueError, match="batch must have shape"):
        layer(data.x, data.batch[:-1])
    with pytest.raises(ValueError, match="attn_bias must have shape"):
        layer(data.x, data.batch, torch.zeros(2, 4, 3, 3))
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        EdgeBias(3, 4)(data.edge_index, data.edge_attr[:, :2], data.batch)
    with pytest.raises(ValueError, match="different graphs"):
        EdgeBias(3, 4)(torch.tensor([[0], [5]]), torch.zeros(1, 3), data.batch)
    with pytest.raises(ValueError, match="num_nodes is required"):
        SPDBias(2, 4)(data.edge_index, torch.zeros(data.num_edges, dtype=torch.long))
    with pytest.raises(ValueError, match="spd must be a LongTensor"):
        SPDBias(2, 4)(data.edge_index, torch.zeros(data.num_edges), data.batch)


def test_repr():
    assert repr(GraphTransformerLayer(16, heads=4)) == "GraphTransformerLayer(16, heads=4, norm_first=True)"
    assert repr(GraphMultiheadAttention(16, 2)) == "GraphMultiheadAttention(16, heads=2)"
    assert repr(EdgeBias(3, 4)) == "EdgeBias(edge_dim=3, heads=4)"
    assert repr(SPDBias(5, 8)) == "SPDBias(max_distance=5, heads=8)"
    assert repr(AddShortestPathDistance(4)) == "AddShortestPathDistance(max_distance=4, directed=True)"
