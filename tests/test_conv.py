"""gdl_graphs.nn.conv layers against PyG's own, on the graphs that break naive implementations."""

import pytest
import torch
import torch_geometric.nn as pyg
from torch import nn

import gdl_graphs.nn as gnn
from gdl_graphs.nn import aggregate
from gdl_graphs.testing import check_symmetry
from tests.conftest import random_batch, random_graph

IN, OUT, EDGE = 8, 6, 3


def _mlp():
    return nn.Sequential(nn.Linear(IN, 16), nn.ReLU(), nn.Linear(16, OUT))


# name -> (ours, PyG's, needs edge_attr)
LAYERS = {
    "GCNConv": (lambda: gnn.GCNConv(IN, OUT), lambda: pyg.GCNConv(IN, OUT), False),
    "GCNConv-noloops": (lambda: gnn.GCNConv(IN, OUT, add_self_loops=False),
                        lambda: pyg.GCNConv(IN, OUT, add_self_loops=False), False),
    "GCNConv-raw": (lambda: gnn.GCNConv(IN, OUT, normalize=False), lambda: pyg.GCNConv(IN, OUT, normalize=False),
                    False),
    "GINConv": (lambda: gnn.GINConv(_mlp(), train_eps=True), lambda: pyg.GINConv(_mlp(), train_eps=True), False),
    "GINEConv": (lambda: gnn.GINEConv(_mlp(), edge_dim=EDGE), lambda: pyg.GINEConv(_mlp(), edge_dim=EDGE), True),
    "SAGEConv": (lambda: gnn.SAGEConv(IN, OUT), lambda: pyg.SAGEConv(IN, OUT), False),
    "SAGEConv-sum-project": (lambda: gnn.SAGEConv(IN, OUT, aggr="sum", project=True, normalize=True),
                             lambda: pyg.SAGEConv(IN, OUT, aggr="sum", project=True, normalize=True), False),
    "SAGEConv-max": (lambda: gnn.SAGEConv(IN, OUT, aggr="max"), lambda: pyg.SAGEConv(IN, OUT, aggr="max"), False),
    "GATConv": (lambda: gnn.GATConv(IN, OUT, heads=3), lambda: pyg.GATConv(IN, OUT, heads=3), False),
    "GATConv-edge-mean": (lambda: gnn.GATConv(IN, OUT, heads=2, edge_dim=EDGE, concat=False, residual=True),
                          lambda: pyg.GATConv(IN, OUT, heads=2, edge_dim=EDGE, concat=False, residual=True), True),
    "GATConv-noloops": (lambda: gnn.GATConv(IN, OUT, heads=2, add_self_loops=False),
                        lambda: pyg.GATConv(IN, OUT, heads=2, add_self_loops=False), False),
    "GATv2Conv": (lambda: gnn.GATv2Conv(IN, OUT, heads=2), lambda: pyg.GATv2Conv(IN, OUT, heads=2), False),
    "GATv2Conv-edge-shared": (lambda: gnn.GATv2Conv(IN, OUT, heads=2, edge_dim=EDGE, share_weights=True,
                                                    fill_value=0.5),
                              lambda: pyg.GATv2Conv(IN, OUT, heads=2, edge_dim=EDGE, share_weights=True,
                                                    fill_value=0.5), True),
}


def _graphs():
    """Graphs with isolated nodes, self-loops, duplicate edges, no edges at all, and a single node."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(10, IN, generator=g)
    cases = {
        "random": torch.randint(0, 10, (2, 40), generator=g),
        "isolated+selfloops+duplicates": torch.tensor([[0, 1, 1, 2, 2, 3, 5, 5], [1, 0, 0, 2, 3, 3, 6, 6]]),
        "no-edges": torch.empty(2, 0, dtype=torch.long),
    }
    out = [(name, x, ei) for name, ei in cases.items()]
    out.append(("one-node", x[:1], torch.tensor([[0], [0]])))
    out.append(("one-node-no-edges", x[:1], torch.empty(2, 0, dtype=torch.long)))
    return out


def _run(layer, x, edge_index, edge_attr):
    x = x.clone().requires_grad_()
    args = (x, edge_index) if edge_attr is None else (x, edge_index, edge_attr)
    out = layer(*args)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    grads = [x.grad] + [None if p.grad is None else p.grad.clone() for p in layer.parameters()]
    for p in layer.parameters():
        p.grad = None
    return out, grads


@pytest.mark.parametrize("graph", _graphs(), ids=lambda g: g[0])
@pytest.mark.parametrize("name", list(LAYERS))
def test_agrees_with_pyg_forward_and_gradients(name, graph):
    make_ours, make_pyg, edge = LAYERS[name]
    _, x, edge_index = graph
    torch.manual_seed(0)
    ours = make_ours()
    theirs = make_pyg()
    theirs.load_state_dict(ours.state_dict())
    edge_attr = torch.randn(edge_index.size(1), EDGE) if edge else None
    out_a, grads_a = _run(ours, x, edge_index, edge_attr)
    out_b, grads_b = _run(theirs, x, edge_index, edge_attr)
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    for ga, gb in zip(grads_a, grads_b):
        if gb is None:
            assert ga is None or not ga.abs().any()
        else:
            torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["GCNConv", "GINConv", "SAGEConv", "GATConv"])
def test_state_dict_loads_both_ways(name):
    make_ours, make_pyg, _ = LAYERS[name]
    ours, theirs = make_ours(), make_pyg()
    ours.load_state_dict(theirs.state_dict())  # PyG -> ours
    make_pyg().load_state_dict(ours.state_dict())  # ours -> PyG
    assert set(ours.state_dict()) == set(theirs.state_dict())


def test_gcn_edge_weights_and_improved_match_pyg():
    data = random_graph(10, 40)
    data.edge_index[:, :3] = torch.tensor([[1, 1, 4], [1, 1, 4]])  # weighted, repeated self-loops
    weight = torch.rand(40)
    weight[1] = weight[0]  # PyG keeps one of the repeated loop weights; make them equal so either is right
    for improved in (False, True):
        ours = gnn.GCNConv(IN, OUT, improved=improved)
        theirs = pyg.GCNConv(IN, OUT, improved=improved)
        theirs.load_state_dict(ours.state_dict())
        torch.testing.assert_close(ours(data.x, data.edge_index, weight), theirs(data.x, data.edge_index, weight))


@pytest.mark.parametrize("name", ["GCNConv", "GINConv", "SAGEConv", "GATConv", "GATv2Conv"])
def test_sparse_adjacency_input_equals_edge_index(name):
    torch.manual_seed(0)
    make_ours = LAYERS[name][0]
    layer = make_ours()
    g = torch.Generator().manual_seed(1)
    edge_index = torch.unique(torch.randint(0, 10, (2, 30), generator=g), dim=1)  # a simple graph
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    x = torch.randn(10, IN)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(edge_index.size(1)), (10, 10))
    expected = layer(x, edge_index)
    torch.testing.assert_close(layer(x, adj_t.to_sparse_csr()), expected)
    torch.testing.assert_close(layer(x, adj_t), expected)


@pytest.mark.parametrize("name", ["GCNConv", "GINConv", "GINEConv", "SAGEConv", "GATConv", "GATv2Conv"])
def test_permutation_equivariance(name):
    layer = LAYERS[name][0]()
    batch = random_batch(sizes=(1, 6, 11), channels=IN, edge_dim=EDGE)
    call = None if LAYERS[name][2] else (lambda m, d: m(d.x, d.edge_index))
    assert layer.symmetry == "S_n-equivariant"
    assert check_symmetry(layer, batch, call=call) < 1e-4


@pytest.mark.parametrize("name", ["GCNConv", "GINConv", "GINEConv", "SAGEConv", "GATConv", "GATv2Conv"])
def test_torch_compile_has_no_graph_breaks(name):
    import torch._dynamo

    torch._dynamo.reset()
    make_ours, _, edge = LAYERS[name]
    layer = make_ours()
    data = random_graph(16, 48, IN, edge_dim=EDGE if edge else None)
    args = (data.x, data.edge_index) if not edge else (data.x, data.edge_index, data.edge_attr)
    explanation = torch._dynamo.explain(layer)(*args)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    # and the compiled layer computes the same thing as the eager one
    torch.testing.assert_close(torch.compile(layer, backend="eager")(*args), layer(*args), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", [True, False], ids=["deterministic", "default"])
@pytest.mark.parametrize("name", ["GCNConv", "GINEConv", "SAGEConv", "GATConv"])
def test_bit_identical_across_runs(name, mode):
    # deterministic mode: the CSR path; default: a graph's first use gathers and sums with index_add_ (on CPU too)
    make_ours, _, edge = LAYERS[name]
    data = random_graph(300, 3000, IN, edge_dim=EDGE if edge else None)
    results = []
    with aggregate.deterministic(mode):
        for _ in range(2):
            torch.manual_seed(0)
            layer = make_ours()
            aggregate.clear_cache()
            edge_attr = data.edge_attr if edge else None
            results.append(_run(layer, data.x, data.edge_index, edge_attr))
    (out_a, grads_a), (out_b, grads_b) = results
    assert torch.equal(out_a, out_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_adjacency_is_built_once_and_shared_by_layers():
    aggregate.clear_cache()
    data = random_graph(20, 60, IN)
    layers = [gnn.GCNConv(IN, IN), gnn.GINConv(nn.Linear(IN, IN)), gnn.SAGEConv(IN, IN)]
    h = data.x
    for layer in layers:
        h = layer(h, data.edge_index)
    assert len(aggregate._cache) == 1
    data.edge_index.add_(0)  # an in-place change invalidates the entry
    gnn.GCNConv(IN, IN)(data.x, data.edge_index)
    adj = aggregate.adjacency(data.edge_index, 20)
    assert adj.perm is aggregate.adjacency(data.edge_index, 20).perm  # the structure is built once, then shared


def test_a_small_graph_builds_its_csr_on_second_use():
    # the first aggregation over a new small graph (a fresh mini-batch) gathers and sums with index_add_; the next
    # layer over the same graph builds the CSR structure and every later one reuses it
    aggregate.clear_cache()
    data = random_graph(20, 60, IN)
    first, second = gnn.GINConv(nn.Linear(IN, IN)), gnn.GINConv(nn.Linear(IN, IN))
    built = lambda: aggregate._cache.get(data.edge_index, 20, 20).structure is not None
    out = first(data.x, data.edge_index)
    assert not built()
    out = second(out, data.edge_index)
    assert built()
    out.sum().backward()
    aggregate.clear_cache()
    with pytest.MonkeyPatch.context() as patch:  # messages of SCATTER_MAX_MESSAGES elements build it on first use
        patch.setattr(aggregate, "SCATTER_MAX_MESSAGES", 60 * IN)
        gnn.GINConv(nn.Linear(IN, IN))(data.x, data.edge_index)
    assert built()
    aggregate.clear_cache()
    with aggregate.deterministic():  # deterministic mode always takes the atomics-free CSR path
        gnn.GINConv(nn.Linear(IN, IN))(data.x, data.edge_index)
    assert built()


def test_a_gpu_graph_gathers_and_sums_with_index_ops_up_to_its_own_larger_limit():
    # on a GPU a fresh batch's CSR build costs more than index_add_ up to CUDA_SCATTER_MAX_MESSAGES (measured on an
    # H200); the rule reads the graph's device, so a tensor of any non-CPU device (here "meta") takes the GPU limit
    edges = 1000
    width = aggregate.SCATTER_MAX_MESSAGES // edges + 1  # past the CPU limit, within the GPU one
    assert edges * width < aggregate.CUDA_SCATTER_MAX_MESSAGES
    for device, pays in (("cpu", False), ("meta", True)):
        adj = aggregate.Adjacency(torch.zeros(2, edges, dtype=torch.long, device=device), 10, 10, first_use=True)
        assert adj.index_ops_pay(width) is pays and adj.scatter_first(width) is pays
        assert not adj.index_ops_pay(aggregate.CUDA_SCATTER_MAX_MESSAGES // edges + 1)
        with aggregate.deterministic():
            assert not adj.index_ops_pay(1)


def test_attention_on_a_small_graph_never_builds_its_csr():
    # GAT's per-edge gathers, softmax sums and per-head message sums fuse no gather into a sum: on a small graph
    # index_select / index_add_ are as fast as the CSR operators in every layer (Adjacency.index_ops_pay), so the
    # self-loop graph's CSR is not built even by the second layer; a graph past SCATTER_MAX_MESSAGES builds it
    def self_loop_structure(edge_index, layers):
        aggregate.clear_cache()
        h = data.x
        for layer in layers:
            h = layer(h, edge_index)
        h.sum().backward()
        return aggregate._cache.get(edge_index, 20, 20).derived["self_loops"][2].structure

    data = random_graph(20, 60, IN)
    assert self_loop_structure(data.edge_index, [gnn.GATConv(IN, 4, heads=2), gnn.GATConv(8, 4, heads=2)]) is None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aggregate, "SCATTER_MAX_MESSAGES", 0)
        assert self_loop_structure(data.edge_index, [gnn.GATConv(IN, 4, heads=2)]) is not None


def test_cached_structures_die_with_their_edge_index():
    # the cache must not keep a batch's edge_index (and its structures) alive: it grew by one entry per mini-batch
    # (22 GB after ~10 training runs) before it referred to the tensor only weakly
    import gc

    aggregate.clear_cache()
    deg = torch.tensor([0, 10, 20, 30])
    layers = [gnn.GCNConv(IN, IN), gnn.GATConv(IN, 4, heads=2), gnn.SAGEConv(IN, IN), gnn.GINConv(nn.Linear(IN, IN)),
              gnn.PNAConv(IN, IN, ["mean", "max"], ["identity"], deg)]
    for seed in range(20):
        data = random_graph(20, 60, IN, seed=seed)
        for layer in layers:
            layer(data.x, data.edge_index).sum().backward()
    del data
    gc.collect()
    assert len(aggregate._cache) == 0
    kept = aggregate.adjacency(torch.randint(0, 5, (2, 12)), 5)  # the handle keeps its temporary edge_index alive
    gc.collect()
    assert kept.edge_index.shape == (2, 12) and int(kept.in_degree.sum()) == 12


def test_cached_gcn_reuses_first_graph_like_pyg():
    a, b = random_graph(10, 30, IN, seed=1), random_graph(10, 30, IN, seed=2)
    ours, theirs = gnn.GCNConv(IN, OUT, cached=True), pyg.GCNConv(IN, OUT, cached=True)
    theirs.load_state_dict(ours.state_dict())
    ours(a.x, a.edge_index), theirs(a.x, a.edge_index)
    torch.testing.assert_close(ours(b.x, b.edge_index), theirs(b.x, b.edge_index))


@pytest.mark.parametrize("bad, message", [
    (lambda x, ei: (x, ei.float()), "integer dtype"),
    (lambda x, ei: (x, ei.t().contiguous()), r"shape \[2, num_edges\]"),
    (lambda x, ei: (x, ei - 5), "negative node index"),
    (lambda x, ei: (x, ei + 100), "refers to node 1"),
    (lambda x, ei: (x[:, :5], ei), "x has 5 features, but the layer was built with in_channels=8"),
    (lambda x, ei: (x[0], ei), "x must have shape"),
])
def test_bad_input_raises_value_error_naming_the_argument(bad, message):
    data = random_graph(10, 30, IN)
    with pytest.raises(ValueError, match=message):
        gnn.GCNConv(IN, OUT)(*bad(data.x, data.edge_index))


def test_missing_or_wrong_edge_attr():
    data = random_graph(10, 30, IN, edge_dim=EDGE)
    layer = gnn.GINEConv(_mlp(), edge_dim=EDGE)
    with pytest.raises(ValueError, match="requires edge_attr"):
        layer(data.x, data.edge_index)
    with pytest.raises(ValueError, match="one row per edge"):
        layer(data.x, data.edge_index, data.edge_attr[:5])
    with pytest.raises(ValueError, match="edge_attr has 2 features"):
        layer(data.x, data.edge_index, data.edge_attr[:, :2])
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        gnn.GCNConv(IN, OUT)(data.x, data.edge_index, torch.rand(3))


def test_sorted_segment_reductions_equal_scatter_with_ties_and_zeros():
    # integer-valued messages: many equal extremes, not adjacent in their segment, and extremes of exactly 0 (where
    # scatter counts its zero initial value as one more tie): values and gradients must be scatter's (PyG's)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        edge_index = torch.randint(0, 6, (2, 25), generator=g)
        adj = aggregate.adjacency(edge_index, 6)
        values = torch.randint(-2, 3, (25, 3), generator=g).float()
        weights = torch.randn(6, 3, generator=g)
        for reduce in ("max", "min", "sum", "mean"):
            ours, theirs = values[adj.perm].clone().requires_grad_(), values.clone().requires_grad_()
            out = aggregate.reduce_sorted(ours, adj, reduce)
            expected = aggregate.reduce_edges(theirs, edge_index[1], 6, reduce)
            (out * weights).sum().backward()
            (expected * weights).sum().backward()
            torch.testing.assert_close(out, expected)
            torch.testing.assert_close(ours.grad, theirs.grad[adj.perm])
    with pytest.raises(ValueError, match="reduce_sorted supports"):
        aggregate.reduce_sorted(values, adj, "mul")


def test_relu_message_sum_equals_its_unfused_form_eager_and_compiled():
    # GINE's fused aggregation: values and both gradients as relu(x_j + e) summed by scatter, with zero-in-degree
    # targets, exact zeros before the ReLU, and under torch.compile (one opaque operator)
    g = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 7, (2, 40), generator=g)
    edge_index[1, edge_index[1] == 6] = 5  # node 6 receives nothing
    x = torch.randint(-2, 3, (7, 4), generator=g).double()
    edges = torch.randint(-2, 3, (40, 4), generator=g).double()
    weights = torch.randn(7, 4, generator=g, dtype=torch.float64)

    def reference(x, edges):
        return aggregate.reduce_edges(torch.relu(x[edge_index[0]] + edges), edge_index[1], 7)

    def fused(x, edges):
        return aggregate.relu_message_sum(aggregate.adjacency(edge_index, 7), x, edges)

    results = []
    for function in (reference, fused, torch.compile(fused, fullgraph=True)):
        xs, es = x.clone().requires_grad_(), edges.clone().requires_grad_()
        out = function(xs, es)
        (out * weights).sum().backward()
        results.append((out, xs.grad, es.grad))
    for got in results[1:]:
        for a, b in zip(got, results[0]):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert results[0][0][6].abs().sum() == 0


@pytest.mark.parametrize("by_target", [True, False], ids=["targets", "sources"])
def test_gather_edges_is_index_select_with_a_csr_backward(by_target):
    # values per edge, and the gradient (a CSR product on the incidence matrix, not a scatter): equal to
    # index_select's, with nodes that have no edges, eager and compiled, on a bipartite graph; twice differentiable
    g = torch.Generator().manual_seed(0)
    edge_index = torch.stack([torch.randint(0, 5, (30,), generator=g), torch.randint(0, 8, (30,), generator=g)])
    edge_index[:, edge_index[0] == 4] = 3  # source 4 sends nothing
    num_nodes = 8 if by_target else 5
    values = torch.randn(num_nodes, 3, 2, generator=g, dtype=torch.float64)
    weights = torch.randn(30, 3, 2, generator=g, dtype=torch.float64)
    adj = aggregate.adjacency(edge_index, (5, 8))

    def gathered(v):
        return aggregate.gather_edges(adj, v, by_target)

    expected_values = values.clone().requires_grad_()
    expected = expected_values.index_select(0, edge_index[1 if by_target else 0])
    (expected * weights).sum().backward()
    for function in (gathered, torch.compile(gathered, fullgraph=True)):
        ours = values.clone().requires_grad_()
        out = function(ours)
        (out * weights).sum().backward()
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
        torch.testing.assert_close(ours.grad, expected_values.grad, rtol=0, atol=1e-12)
    assert expected_values.grad[4].abs().sum() == 0 or by_target
    torch.autograd.gradgradcheck(gathered, (values.clone().requires_grad_(),))


def test_reduce_edges_paths_agree():
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 7, (50,), generator=g)
    messages = torch.randn(50, 4, generator=g)
    adj = aggregate.adjacency(torch.stack([index, index]), 7)
    for reduce in ("sum", "mean"):
        expected = aggregate.reduce_edges(messages, index, 7, reduce)
        torch.testing.assert_close(aggregate.reduce_edges(messages, index, 7, reduce, adj), expected)
        with aggregate.deterministic():
            torch.testing.assert_close(aggregate.reduce_edges(messages, index, 7, reduce), expected)
    with pytest.raises(ValueError, match="reduce must be one of"):
        aggregate.reduce_edges(messages, index, 7, "median")
