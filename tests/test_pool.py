"""Coarsening layers: PyG drop-ins match PyG, the pure-torch matching is the greedy matching, and every layer is
certified equivariant up to a permutation of its pooled nodes by a check that catches broken layers."""

import pytest
import torch
import torch.nn.functional as F
import torch_geometric.nn as pyg_nn
from torch import nn
from torch_geometric.data import Data
from torch_geometric.utils import to_dense_adj, to_dense_batch

from gdl_graphs.bench.verify import POOLING_LAYERS, layer_entries, pooling_readout_entries, verify
from gdl_graphs.groups import PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS
from gdl_graphs.nn import (DiffPool, GCNConv, GraclusPooling, MinCutPool, SAGPooling, TopKPooling, dense_diff_pool,
                           dense_mincut_pool, graclus)
from gdl_graphs.testing import (PoolThenReadout, assert_permutation_invariant, assert_pooling_equivariant,
                                check_symmetry, permute_graph, random_node_permutation)
from tests.conftest import random_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def _assert_same(ours, theirs, atol=1e-6):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        if a is None or b is None:
            assert a is None and b is None
        elif a.dtype == torch.long:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, atol=atol, rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# TopKPooling / SAGPooling: drop-ins for PyG's
# ----------------------------------------------------------------------------------------------------------------
SCORE_KWARGS = [{}, {"ratio": 0.3}, {"ratio": 3}, {"min_score": 0.1}, {"ratio": 0.6, "multiplier": 2.0},
                {"nonlinearity": "sigmoid"}]


@pytest.mark.parametrize("kwargs", SCORE_KWARGS, ids=str)
@pytest.mark.parametrize("name", ["TopKPooling", "SAGPooling"])
def test_score_pooling_matches_pyg(name, kwargs):
    data = random_batch((1, 6, 11, 17), channels=8, edge_dim=3)
    ours = {"TopKPooling": TopKPooling, "SAGPooling": SAGPooling}[name](8, **kwargs)
    theirs = getattr(pyg_nn, name)(8, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    assert repr(ours) == repr(theirs)
    x = data.x.clone().requires_grad_()
    x_ref = data.x.clone().requires_grad_()
    out = ours(x, data.edge_index, data.edge_attr, data.batch)
    ref = theirs(x_ref, data.edge_index, data.edge_attr, data.batch)
    _assert_same(out, ref)
    (out[0].sum() + out[5].sum()).backward()
    (ref[0].sum() + ref[5].sum()).backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-6, rtol=1e-6)
    # and the other way round: PyG's weights in ours, one graph without batch/edge_attr, scores from attn
    ours.load_state_dict(getattr(pyg_nn, name)(8, **kwargs).state_dict())
    theirs.load_state_dict(ours.state_dict())
    attn = torch.randn(data.num_nodes, 8)
    _assert_same(ours(data.x, data.edge_index, attn=attn), theirs(data.x, data.edge_index, attn=attn))


def test_sag_pooling_with_our_gcn_loads_pyg_weights():
    data = random_batch((5, 9), channels=8)
    ours, theirs = SAGPooling(8, 0.5, GNN=GCNConv), pyg_nn.SAGPooling(8, 0.5, GNN=pyg_nn.GCNConv)
    ours.load_state_dict(theirs.state_dict())
    _assert_same(ours(data.x, data.edge_index, batch=data.batch), theirs(data.x, data.edge_index, batch=data.batch))
    assert repr(ours) == repr(theirs)


def test_score_pooling_reset_parameters_and_ties():
    pool = TopKPooling(4)
    before = pool.select.weight.clone()
    pool.reset_parameters()
    assert not torch.equal(before, pool.select.weight)
    # equal scores: the lower node index is kept first (PyG's unstable sort gives no such guarantee)
    x = torch.ones(6, 4)
    perm = pool(x, torch.empty(2, 0, dtype=torch.long))[4]
    assert perm.tolist() == [0, 1, 2]


@pytest.mark.parametrize("kwargs, match", [({"ratio": 1.0}, "ratio=1.0"), ({"ratio": 0}, "ratio=0"),
                                           ({"ratio": "half"}, "ratio must be"), ({"ratio": None}, "min_score"),
                                           ({"min_score": 2.0}, "min_score")])
def test_score_pooling_refuses_bad_ratio(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TopKPooling(4, **kwargs)
    with pytest.raises(ValueError, match=match):
        SAGPooling(4, **kwargs)


def test_score_pooling_errors_name_the_argument():
    data = random_batch((5,), channels=4)
    pool = TopKPooling(4)
    with pytest.raises(ValueError, match="in_channels=4"):
        pool(torch.randn(5, 3), data.edge_index)
    with pytest.raises(ValueError, match="attn"):
        pool(data.x, data.edge_index, attn=torch.randn(4, 4))
    with pytest.raises(ValueError, match="batch"):
        pool(data.x, data.edge_index, batch=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="edge_index refers to node 9"):
        pool(data.x, torch.tensor([[0], [9]]))
    with pytest.raises(ValueError, match="edge_attr"):
        pool(data.x, data.edge_index, edge_attr=torch.randn(1, 2))
    with pytest.raises(ValueError, match="LongTensor"):
        pool(data.x, data.edge_index.to_sparse())


# ----------------------------------------------------------------------------------------------------------------
# Dense DiffPool / MinCutPool
# ----------------------------------------------------------------------------------------------------------------
def _dense_batch(seed=0, clusters=4):
    data = random_batch((3, 7, 10), channels=6, seed=seed)
    x, mask = to_dense_batch(data.x, data.batch)
    adj = to_dense_adj(data.edge_index, data.batch, max_num_nodes=x.size(1))
    return x, adj, torch.randn(*x.shape[:2], clusters, generator=torch.Generator().manual_seed(seed)), mask


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (dense_diff_pool, pyg_nn.dense_diff_pool, {}), (dense_diff_pool, pyg_nn.dense_diff_pool, {"normalize": False}),
    (dense_mincut_pool, pyg_nn.dense_mincut_pool, {}), (dense_mincut_pool, pyg_nn.dense_mincut_pool, {"temp": 0.5})])
@pytest.mark.parametrize("masked", [True, False])
def test_dense_pooling_matches_pyg(ours, theirs, kwargs, masked):
    x, adj, s, mask = _dense_batch()
    mask = mask if masked else None
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    out, ref = ours(x, adj, s1, mask, **kwargs), theirs(x, adj, s2, mask, **kwargs)
    _assert_same(out, ref)
    sum(o.sum() for o in out).backward()
    sum(r.sum() for r in ref).backward()
    torch.testing.assert_close(s1.grad, s2.grad, atol=1e-6, rtol=1e-6)
    _assert_same(ours(x[0], adj[0], s[0], **kwargs), theirs(x[0], adj[0], s[0], **kwargs))  # one graph, [N, *]


def test_dense_pooling_errors_name_the_argument():
    x, adj, s, mask = _dense_batch()
    with pytest.raises(ValueError, match="adj must have shape"):
        dense_diff_pool(x, adj[:, :-1], s, mask)
    with pytest.raises(ValueError, match="s must have shape"):
        dense_mincut_pool(x, adj, s[:, :-1], mask)
    with pytest.raises(ValueError, match="mask must have shape"):
        dense_diff_pool(x, adj, s, mask[:, :-1])
    with pytest.raises(ValueError, match="temp must be > 0"):
        dense_mincut_pool(x, adj, s, mask, temp=0.0)
    with pytest.raises(ValueError, match="x must be a dense tensor"):
        dense_diff_pool(x[0, 0], adj, s)
    with pytest.raises(ValueError, match=r"x must have shape \[B, N, 6\]"):
        MinCutPool(6, 3)(x[..., :5], adj, mask)


def test_diffpool_and_mincut_layers():
    x, adj, _, mask = _dense_batch()
    diff = DiffPool(6, 5, num_clusters=3)
    out = diff(x, adj, mask)
    expected = dense_diff_pool(diff.embed(x, adj, mask), adj, diff.assign(x, adj, mask), mask)
    _assert_same(out, expected)
    assert out[0].shape == (3, 3, 5) and out[1].shape == (3, 3, 3)
    assert repr(diff) == "DiffPool(6, 5, num_clusters=3)"
    mincut = MinCutPool(6, 3, hidden_channels=8)
    _assert_same(mincut(x, adj, mask), dense_mincut_pool(x, adj, mincut.assign(x), mask))
    before = mincut.assign[0].weight.clone()
    mincut.reset_parameters()
    assert not torch.equal(before, mincut.assign[0].weight)
    with pytest.raises(ValueError, match="num_clusters=3"):
        DiffPool(6, 5, 3, assign=pyg_nn.DenseSAGEConv(6, 2))(x, adj, mask)


# ----------------------------------------------------------------------------------------------------------------
# graclus and GraclusPooling
# ----------------------------------------------------------------------------------------------------------------
def _greedy_reference(edge_index, weight, num_nodes, priority):
    """Sequential greedy matching: undirected edges by (-weight, min priority, max priority), take if both free."""
    total = {}
    for (a, b), w in zip(edge_index.t().tolist(), weight.tolist()):
        if a != b:
            key = (min(a, b), max(a, b))
            total[key] = total.get(key, 0.0) + w
    ranked = sorted(total, key=lambda k: (-total[k], min(priority[k[0]], priority[k[1]]),
                                          max(priority[k[0]], priority[k[1]])))
    cluster = list(range(num_nodes))
    free = [True] * num_nodes
    for a, b in ranked:
        if free[a] and free[b]:
            free[a] = free[b] = False
            cluster[a] = cluster[b] = min(a, b)
    return cluster


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("weighted", [True, False])
def test_graclus_is_the_greedy_matching(seed, weighted):
    data = random_batch((1, 8, 15, 30), channels=2, seed=seed)
    n, e = data.num_nodes, data.edge_index.size(1)
    weight = torch.rand(e, generator=torch.Generator().manual_seed(seed)) if weighted else None
    ones = torch.ones(e) if weight is None else weight
    assert graclus(data.edge_index, weight, n).tolist() == _greedy_reference(data.edge_index, ones, n, list(range(n)))
    priority = torch.randperm(n, generator=torch.Generator().manual_seed(7)).tolist()
    seeded = graclus(data.edge_index, weight, n, seed=7)
    assert seeded.tolist() == _greedy_reference(data.edge_index, ones, n, priority)
    assert torch.equal(seeded, graclus(data.edge_index, weight, n, seed=7))  # deterministic
    # a maximal matching inside each graph: pairs are adjacent, in one graph; no edge joins two unmatched nodes
    cluster = seeded
    sizes = torch.bincount(cluster, minlength=n)
    assert int(sizes.max()) <= 2
    single = sizes[cluster] == 1
    src, dst = data.edge_index
    assert not bool((single[src] & single[dst] & (src != dst)).any())
    assert torch.equal(data.batch, data.batch[cluster])


def test_graclus_errors_and_edge_cases():
    assert graclus(torch.empty(2, 0, dtype=torch.long), num_nodes=3).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="non-negative"):
        graclus(torch.tensor([[0], [1]]), torch.tensor([-1.0]))
    with pytest.raises(ValueError, match="edge_weight must have shape"):
        graclus(torch.tensor([[0], [1]]), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="edge_index"):
        graclus(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reduce"):
        GraclusPooling("median")


@pytest.mark.parametrize("reduce, pyg_pool", [("max", pyg_nn.max_pool), ("mean", pyg_nn.avg_pool)])
def test_graclus_pooling_equals_pyg_pooling_of_its_clusters(reduce, pyg_pool):
    data = random_batch((4, 9, 13), channels=5, seed=3)
    weight = torch.rand(data.edge_index.size(1), generator=torch.Generator().manual_seed(0))
    x, edge_index, edge_weight, batch, cluster = GraclusPooling(reduce)(data.x, data.edge_index, weight, data.batch)
    ref = pyg_pool(graclus(data.edge_index, weight, data.num_nodes),
                   Data(x=data.x, edge_index=data.edge_index, edge_attr=weight, batch=data.batch))
    _assert_same((x, edge_index, edge_weight, batch), (ref.x, ref.edge_index, ref.edge_attr, ref.batch))
    assert torch.equal(x, torch.stack([data.x[cluster == c].max(0).values if reduce == "max"
                                       else data.x[cluster == c].mean(0) for c in range(x.size(0))]))


def _grid(height, width):
    ids = torch.arange(height * width).view(height, width)
    right = torch.stack([ids[:, :-1].flatten(), ids[:, 1:].flatten()])
    down = torch.stack([ids[:-1].flatten(), ids[1:].flatten()])
    edges = torch.cat([right, down], 1)
    return torch.cat([edges, edges.flip(0)], 1)


def test_two_graclus_levels_on_a_grid_are_strided_2x2_pooling():
    image = torch.rand(1, 3, 8, 6)
    x, edge_index = image[0].flatten(1).t(), _grid(8, 6)
    pool = GraclusPooling("max")
    weight = torch.ones(edge_index.size(1))
    x, edge_index, weight, _, _ = pool(x, edge_index, weight)
    x, edge_index, weight, _, _ = pool(x, edge_index, weight)
    assert torch.equal(x.t().reshape(1, 3, 4, 3), F.max_pool2d(image, 2, stride=2))


# ----------------------------------------------------------------------------------------------------------------
# The symmetry certificate
# ----------------------------------------------------------------------------------------------------------------
def test_every_pooling_layer_is_certified():
    rows = verify([e for e in layer_entries() if e.name in POOLING_LAYERS] + pooling_readout_entries())
    assert len(rows) == 10
    for name, group, error, status in rows:
        assert status == "ok", (name, status)
        assert error is not None and error < 1e-4
        assert group == (PERMUTATION_EQUIVARIANT_UP_TO_CLUSTERS if "readout" not in name else "S_n-invariant")


def test_graclus_renumbers_its_clusters_so_the_weaker_check_is_needed():
    data = random_batch((9, 12), channels=4)
    weight = data.x[data.edge_index].sum(-1).prod(0).abs()  # a function of the graph, not of the labels
    moved = permute_graph(data, random_node_permutation(data, torch.Generator().manual_seed(1)))
    moved_weight = moved.x[moved.edge_index].sum(-1).prod(0).abs()
    pool = GraclusPooling("max")
    pooled = pool(data.x, data.edge_index, weight, data.batch)[0]
    pooled_moved = pool(moved.x, moved.edge_index, moved_weight, moved.batch)[0]
    assert pooled.shape == pooled_moved.shape and not torch.equal(pooled, pooled_moved)  # same rows, other order
    assert torch.equal(pooled.sort(0).values, pooled_moved.sort(0).values)
    call = lambda m, d: m(d.x, d.edge_index, d.x[d.edge_index].sum(-1).prod(0).abs(), d.batch)  # noqa: E731
    assert check_symmetry(pool, data, call=call) < 1e-5


class KeepsFirstNodes(TopKPooling):
    """Broken: keeps the lowest-numbered half of each graph's nodes, whatever their scores."""

    def forward(self, x, edge_index, edge_attr=None, batch=None, attn=None):
        batch = torch.zeros(x.size(0), dtype=torch.long) if batch is None else batch
        return self._pool(x, edge_index, edge_attr, batch, -torch.arange(x.size(0), dtype=x.dtype).unsqueeze(-1)
                          * self.select.weight.sign())


class DropsFirstEdge(TopKPooling):
    """Broken: loses whichever pooled edge happens to come first in the edge list."""

    def forward(self, *args, **kwargs):
        x, edge_index, edge_attr, batch, perm, score = super().forward(*args, **kwargs)
        return x, edge_index[:, 1:], edge_attr, batch, perm, score


class WrongSelection(TopKPooling):
    """Broken: reports the positions 0..K-1 as the kept input nodes."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        return out[:4] + (torch.arange(out[4].numel()), out[5])


class IndexAwareMinCut(MinCutPool):
    """Broken: the assignment depends on each node's position in the padded batch."""

    def forward(self, x, adj, mask=None):
        return dense_mincut_pool(x, adj, self.assign(x) + torch.arange(x.size(1), dtype=x.dtype).view(1, -1, 1)
                                 * torch.arange(self.num_clusters, dtype=x.dtype), mask)


@pytest.mark.parametrize("broken, expected", [(KeepsFirstNodes, "pooled features"),
                                              (DropsFirstEdge, "pooled adjacency"),
                                              (WrongSelection, r"output\[4\] \(selected\)")])
def test_the_check_catches_broken_sparse_pooling(broken, expected):
    data = random_batch((6, 10), channels=4)
    call = lambda m, d: m(d.x, d.edge_index, batch=d.batch)  # noqa: E731
    with pytest.raises(AssertionError, match=expected):
        check_symmetry(broken(4, ratio=0.5), data, call=call)
    assert check_symmetry(TopKPooling(4, ratio=0.5), data, call=call) < 1e-5  # the unbroken layer passes


def test_the_check_catches_broken_dense_pooling_and_its_readout():
    data = random_batch((6, 10), channels=4)

    def dense(m, d):
        x, mask = to_dense_batch(d.x, d.batch)
        return m(x, to_dense_adj(d.edge_index, d.batch, max_num_nodes=x.size(1)), mask)

    with pytest.raises(AssertionError, match="no permutation of the pooled nodes"):
        assert_pooling_equivariant(IndexAwareMinCut(4, 3), data, call=dense)
    assert assert_pooling_equivariant(MinCutPool(4, 3), data, call=dense) < 1e-5
    # rows of S sum to 1, so a sum readout after dense pooling is the sum of the inputs whatever the assignment:
    # the readout certificate alone would pass this broken layer, the pooled-graph check above does not
    assert assert_permutation_invariant(PoolThenReadout(IndexAwareMinCut(4, 3), dense), data) < 1e-5


def test_the_readout_certificate_catches_a_broken_selection():
    data = random_batch((6, 10), channels=4)
    call = lambda m, d: m(d.x, d.edge_index, batch=d.batch)  # noqa: E731
    with pytest.raises(AssertionError, match="not invariant"):
        assert_permutation_invariant(PoolThenReadout(KeepsFirstNodes(4, ratio=0.5), call), data)
    assert assert_permutation_invariant(PoolThenReadout(TopKPooling(4, ratio=0.5), call), data) < 1e-5


def test_graclus_ties_are_label_dependent_and_the_check_says_so():
    # a path a - b - c with equal weights: the index tie-break pairs (0, 1); relabelled, it pairs other nodes
    data = Data(x=torch.tensor([[1.0], [2.0], [4.0]]), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    call = lambda m, d: m(d.x, d.edge_index, torch.ones(d.edge_index.size(1)))  # noqa: E731
    with pytest.raises(AssertionError, match="pooled"):
        assert_pooling_equivariant(GraclusPooling("sum"), data, call=call, trials=6)
    weighted = lambda m, d: m(d.x, d.edge_index, d.x[d.edge_index].prod(0).view(-1))  # noqa: E731  no ties
    assert assert_pooling_equivariant(GraclusPooling("sum"), data, call=weighted, trials=6) == 0.0


class CrossingEdges(GraclusPooling):
    """Broken: joins the first pooled node of the batch to the last one, across graphs."""

    def forward(self, *args):
        x, edge_index, weight, batch, cluster = super().forward(*args)
        extra = torch.tensor([[0], [x.size(0) - 1]])
        return x, torch.cat([edge_index, extra], 1), torch.cat([weight, weight[:1]]), batch, cluster


def test_the_check_catches_pooled_edges_between_graphs():
    data = random_batch((6, 10), channels=4)
    call = lambda m, d: m(d.x, d.edge_index, d.x[d.edge_index].sum(-1).prod(0).abs(), d.batch)  # noqa: E731
    with pytest.raises(AssertionError, match="joins two different graphs"):
        assert_pooling_equivariant(CrossingEdges(), data, call=call)


def test_the_check_refuses_unreadable_outputs():
    data = random_batch((5,), channels=4)
    with pytest.raises(ValueError, match="pooled_outputs"):
        assert_pooling_equivariant(nn.Identity(), data, call=lambda m, d: d.x)
    with pytest.raises(ValueError, match="output_kinds has 2 entries"):
        assert_pooling_equivariant(TopKPooling(4), data, output_kinds=("x", "edge_index"))
    with pytest.raises(ValueError, match="unknown output kind"):
        assert_pooling_equivariant(TopKPooling(4), data, output_kinds=("x", "node", "edge_attr", "batch",
                                                                         "selected", "pooled"))
