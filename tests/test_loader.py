"""gdl_graphs.loader.NeighborLoader against PyG's definition of neighbour sampling."""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from pathlib import Path

import pytest
import torch
import torch_geometric
from hypothesis import given, settings, strategies as st
from scipy.stats import chisquare
from torch_geometric.data import Data, HeteroData
from torch_geometric.utils import subgraph

from gdl_graphs.loader import CSRNeighborSampler, NeighborLoader
from gdl_graphs.loader import neighbor_loader
from gdl_graphs.loader.sampling import sample_hop
from tests.conftest import random_graph
from tests.fixtures.staged import require_staged

pytestmark = pytest.mark.usefixtures("one_thread")


def node_graph(num_nodes=40, num_edges=200, seed=0) -> Data:
    data = random_graph(num_nodes, num_edges, channels=4, edge_dim=3, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    data.y = torch.randint(0, 3, (num_nodes,), generator=g)
    data.train_mask = torch.rand(num_nodes, generator=g) < 0.5
    return data


def reference_full_expansion(data: Data, seeds: list[int], hops: int):
    """pyg-lib's algorithm written out node by node for ``num_neighbors=[-1] * hops`` (no randomness): in-edges of
    each frontier node in edge-id order; new nodes appended in order of first appearance; no node expanded twice."""
    src, dst = data.edge_index.tolist()
    in_edges = {i: [e for e in range(len(dst)) if dst[e] == i] for i in range(data.num_nodes)}
    local = {}
    for position, node in enumerate(seeds):
        local.setdefault(node, position)
    nodes, frontier, rows, cols, edges = list(seeds), list(range(len(seeds))), [], [], []
    counts_nodes, counts_edges = [len(seeds)], []
    for _ in range(hops):
        new, before = [], len(edges)
        for center in frontier:
            for e in in_edges[nodes[center]]:
                if src[e] not in local:
                    local[src[e]] = len(nodes)
                    nodes.append(src[e])
                    new.append(local[src[e]])
                rows.append(local[src[e]])
                cols.append(center)
                edges.append(e)
        frontier = new
        counts_nodes.append(len(new))
        counts_edges.append(len(edges) - before)
    return nodes, rows, cols, edges, counts_nodes, counts_edges


def check_sampled_edges_exist(data: Data, batch: Data) -> None:
    assert torch.equal(batch.n_id[batch.edge_index], data.edge_index[:, batch.e_id])
    assert torch.equal(batch.edge_attr, data.edge_attr[batch.e_id])
    assert torch.equal(batch.x, data.x[batch.n_id]) and torch.equal(batch.y, data.y[batch.n_id])


# ---------------------------------------------------------------------------------------------------------------
# PyG's definition, exactly (full expansion is deterministic)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hops", [1, 2, 3])
def test_full_expansion_matches_the_reference_algorithm(hops):
    data = node_graph(seed=hops)
    seeds = [5, 17, 3, 30]
    loader = NeighborLoader(data, num_neighbors=[-1] * hops, input_nodes=torch.tensor(seeds), batch_size=4)
    batch = next(iter(loader))
    nodes, rows, cols, edges, counts_nodes, counts_edges = reference_full_expansion(data, seeds, hops)
    assert batch.n_id.tolist() == nodes
    assert batch.edge_index.tolist() == [rows, cols]
    assert batch.e_id.tolist() == edges
    assert batch.num_sampled_nodes == counts_nodes and batch.num_sampled_edges == counts_edges
    assert batch.batch_size == 4 and batch.input_id.tolist() == [0, 1, 2, 3]


def test_batches_carry_pygs_fields_built_by_pygs_own_loader():
    """Our loader and PyG's NeighborLoader driving our sampler give identical batches, field for field."""
    data = node_graph()
    ours = NeighborLoader(data, num_neighbors=[3, 2], input_nodes=data.train_mask, batch_size=6,
                          generator=torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    sampler = CSRNeighborSampler(data, [3, 2], generator=generator)
    theirs = torch_geometric.loader.NeighborLoader(data, num_neighbors=[3, 2], input_nodes=data.train_mask,
                                                   batch_size=6, neighbor_sampler=sampler, generator=generator)
    for a, b in zip(ours, theirs, strict=True):
        assert set(a.keys()) == set(b.keys()) == {
            "x", "edge_index", "edge_attr", "y", "train_mask", "n_id", "e_id", "input_id", "batch_size",
            "num_sampled_nodes", "num_sampled_edges"}
        for key in a.keys():
            assert (torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key]), key
    # a mask's input_id holds the global seed ids, as in PyG
    first = next(iter(ours))
    assert torch.equal(first.input_id, first.n_id[:first.batch_size])


# ---------------------------------------------------------------------------------------------------------------
# sampled neighbourhoods: invariants on random graphs
# ---------------------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), num_nodes=st.integers(1, 30), density=st.integers(0, 6),
       fanout=st.lists(st.integers(-1, 4), min_size=1, max_size=3), replace=st.booleans(),
       batch_size=st.integers(1, 8))
def test_sampled_subgraphs_obey_the_definition(seed, num_nodes, density, fanout, replace, batch_size):
    data = node_graph(num_nodes, density * num_nodes, seed=seed)
    loader = NeighborLoader(data, num_neighbors=fanout, batch_size=batch_size, replace=replace, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
    in_degree = torch.bincount(data.edge_index[1], minlength=num_nodes)
    seen_seeds = []
    for batch in loader:
        check_sampled_edges_exist(data, batch)
        n = batch.batch_size
        seen_seeds += batch.n_id[:n].tolist()
        assert batch.n_id.unique().numel() == batch.n_id.numel()            # each node once, seeds first
        assert sum(batch.num_sampled_nodes) == batch.num_nodes and batch.num_sampled_nodes[0] == n
        assert sum(batch.num_sampled_edges) == batch.num_edges
        if not replace:
            assert batch.e_id.unique().numel() == batch.e_id.numel()       # no edge drawn twice
        node_bounds = [0, *itertools.accumulate(batch.num_sampled_nodes)]
        edge_bounds = [0, *itertools.accumulate(batch.num_sampled_edges)]
        for hop, k in enumerate(fanout):
            row, col = batch.edge_index[:, edge_bounds[hop]:edge_bounds[hop + 1]]
            # hop h expands exactly the nodes first reached in hop h - 1 ...
            assert bool(((col >= node_bounds[hop]) & (col < node_bounds[hop + 1])).all())
            # ... and reaches nothing beyond the nodes it adds
            assert bool((row < node_bounds[hop + 2]).all())
            new = torch.arange(node_bounds[hop + 1], node_bounds[hop + 2])
            assert bool(torch.isin(new, row).all())
            fan = torch.bincount(col - node_bounds[hop], minlength=node_bounds[hop + 1] - node_bounds[hop])
            degree = in_degree[batch.n_id[node_bounds[hop]:node_bounds[hop + 1]]]
            expected = degree if k < 0 else (torch.where(degree > 0, k, 0) if replace else degree.clamp(max=k))
            assert torch.equal(fan, expected)
    assert sorted(seen_seeds) == list(range(num_nodes))


def test_uniform_without_replacement_over_all_k_subsets():
    """A node with 6 in-neighbours, fan-out 2: each of the 15 pairs equally likely (chi-square)."""
    rowptr = torch.tensor([0, 6])
    draws = 6000
    _, position = sample_hop(rowptr, torch.zeros(draws, dtype=torch.long), 2, False,
                             torch.Generator().manual_seed(0))
    pairs = position.view(draws, 2)
    assert bool((pairs[:, 0] < pairs[:, 1]).all())                           # distinct, CSR order
    counts = torch.bincount(pairs[:, 0] * 6 + pairs[:, 1], minlength=36)
    observed = torch.stack([counts[a * 6 + b] for a, b in itertools.combinations(range(6), 2)])
    assert int(observed.sum()) == draws
    assert chisquare(observed.double().numpy()).pvalue > 1e-3


def test_uniform_with_replacement():
    rowptr = torch.tensor([0, 5])
    _, position = sample_hop(rowptr, torch.zeros(2000, dtype=torch.long), 3, True, torch.Generator().manual_seed(1))
    observed = torch.bincount(position, minlength=5)
    assert int(observed.sum()) == 6000
    assert chisquare(observed.double().numpy()).pvalue > 1e-3


def test_repeated_seeds_keep_their_own_neighbourhoods():
    data = node_graph()
    sampler = CSRNeighborSampler(data, [2])
    out = sampler._sample(torch.tensor([4, 4, 9]))
    assert out.node[:3].tolist() == [4, 4, 9]
    in_degree = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    assert torch.bincount(out.col, minlength=3).tolist() == in_degree[[4, 4, 9]].clamp(max=2).tolist()
    assert 1 not in out.row.tolist()                                   # edges reach a repeated node's first copy
    assert torch.equal(out.node[out.row], data.edge_index[0, sampler.perm[out.edge]])


# ---------------------------------------------------------------------------------------------------------------
# subgraph types, determinism, workers, link sampling
# ---------------------------------------------------------------------------------------------------------------
def test_induced_subgraph_holds_every_edge_between_the_sampled_nodes():
    data = node_graph()
    with pytest.warns(DeprecationWarning, match="directed=False"):
        loader = NeighborLoader(data, num_neighbors=[2, 2], batch_size=5, directed=False)
    for batch in loader:
        check_sampled_edges_exist(data, batch)
        expected, _ = subgraph(batch.n_id, data.edge_index, relabel_nodes=True, num_nodes=data.num_nodes)
        assert sorted(map(tuple, batch.edge_index.t().tolist())) == sorted(map(tuple, expected.t().tolist()))
        assert "num_sampled_nodes" not in batch and "num_sampled_edges" not in batch   # as in PyG


def test_bidirectional_adds_the_reverse_of_every_sampled_edge():
    data = node_graph()
    directional = next(iter(NeighborLoader(data, num_neighbors=[3, 2], batch_size=5)))
    torch.manual_seed(0)
    both = next(iter(NeighborLoader(data, num_neighbors=[3, 2], batch_size=5, subgraph_type="bidirectional")))
    assert torch.equal(both.n_id, directional.n_id)
    pairs = set(map(tuple, directional.edge_index.t().tolist()))
    assert set(map(tuple, both.edge_index.t().tolist())) == pairs | {(j, i) for i, j in pairs}


def batches(loader):
    return [(b.n_id.tolist(), b.edge_index.tolist(), b.e_id.tolist()) for b in loader]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_deterministic_under_a_seeded_generator(num_workers):
    data = node_graph(seed=4)

    def make(seed):
        return NeighborLoader(data, num_neighbors=[3, 3], batch_size=7, shuffle=True, num_workers=num_workers,
                              generator=torch.Generator().manual_seed(seed))
    first = batches(make(0))
    assert first == batches(make(0))
    assert first != batches(make(1))
    loader = make(0)
    assert batches(loader) != batches(loader)                                   # epochs differ


def test_workers_draw_different_streams():
    """Four batches of the same seed (a node with 30 in-neighbours, fan-out 3) over two workers all differ."""
    star = Data(edge_index=torch.stack([torch.arange(1, 31), torch.zeros(30, dtype=torch.long)]), num_nodes=31)
    loader = NeighborLoader(star, num_neighbors=[3], input_nodes=torch.zeros(4, dtype=torch.long), batch_size=1,
                            num_workers=2, generator=torch.Generator().manual_seed(0))
    samples = [tuple(sorted(b.n_id[1:].tolist())) for b in loader]
    assert len(samples) == 4 and len(set(samples)) == 4


def test_link_loader_runs_on_our_sampler():
    data = node_graph()
    loader = torch_geometric.loader.LinkNeighborLoader(
        data, num_neighbors=[2, 2], edge_label_index=data.edge_index[:, :10], batch_size=4,
        neighbor_sampler=CSRNeighborSampler(data, [2, 2]))
    for batch in loader:
        check_sampled_edges_exist(data, batch)
        assert batch.edge_label_index.size(1) == batch.input_id.numel()


# ---------------------------------------------------------------------------------------------------------------
# PyG code runs unchanged; exactness of full neighbourhoods
# ---------------------------------------------------------------------------------------------------------------
def test_pyg_graphsage_trains_and_trims_per_hop():
    from torch_geometric.nn.models import GraphSAGE
    data = node_graph(60, 300)
    model = GraphSAGE(4, 16, num_layers=2, out_channels=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loader = NeighborLoader(data, num_neighbors=[5, 5], batch_size=16, input_nodes=data.train_mask, shuffle=True)
    for batch in loader:                                                        # PyG's example, verbatim
        optimizer.zero_grad()
        out = model(batch.x, batch.edge_index)[:batch.batch_size]
        loss = torch.nn.functional.cross_entropy(out, batch.y[:batch.batch_size])
        loss.backward()
        optimizer.step()
        trimmed = model(batch.x, batch.edge_index, num_sampled_nodes_per_hop=batch.num_sampled_nodes,
                        num_sampled_edges_per_hop=batch.num_sampled_edges)
        torch.testing.assert_close(trimmed[:batch.batch_size], model(batch.x, batch.edge_index)[:batch.batch_size])


def test_full_neighbourhood_batches_reproduce_full_batch_outputs():
    from gdl_graphs.nn import SAGEConv
    data = node_graph(50, 250)
    conv1, conv2 = SAGEConv(4, 8), SAGEConv(8, 3)

    def model(x, edge_index):
        return conv2(conv1(x, edge_index).relu(), edge_index)
    full = model(data.x, data.edge_index)
    for batch in NeighborLoader(data, num_neighbors=[-1, -1], batch_size=9):
        torch.testing.assert_close(model(batch.x, batch.edge_index)[:batch.batch_size], full[batch.n_id[:batch.batch_size]])


def test_pyg_layerwise_inference_runs_on_our_loader():
    """PyG's ``BasicGNN.inference`` (which checks ``isinstance(loader, NeighborLoader)``) is exact with [-1]."""
    import copy
    from torch_geometric.nn.models import GraphSAGE
    data = node_graph(50, 250)
    model = GraphSAGE(4, 8, num_layers=2, out_channels=3).eval()
    loader = NeighborLoader(copy.copy(data), num_neighbors=[-1], batch_size=16)
    assert isinstance(loader, torch_geometric.loader.NeighborLoader)
    torch.testing.assert_close(model.inference(loader), model(data.x, data.edge_index))


# ---------------------------------------------------------------------------------------------------------------
# refusals and backend choice
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    ({"disjoint": True}, "disjoint"), ({"time_attr": "t"}, "time_attr"), ({"weight_attr": "w"}, "weight_attr"),
    ({"temporal_strategy": "last"}, "temporal_strategy"), ({"input_time": torch.zeros(3)}, "input_time"),
    ({"input_nodes": torch.tensor([0, 99])}, "input_nodes"), ({"input_nodes": torch.ones(3, dtype=torch.bool)},
                                                             "input_nodes"),
    ({"input_nodes": torch.zeros(3)}, "input_nodes"), ({"backend": "cuda"}, "backend"),
    ({"num_neighbors": {("a", "b", "c"): [2]}}, "num_neighbors"),
])
def test_refuses_unsupported_arguments_by_name(kwargs, name):
    data = node_graph()
    kwargs = {"num_neighbors": [2], **kwargs}
    with pytest.raises((ValueError, TypeError), match=name):
        NeighborLoader(data, **kwargs)


def test_refuses_heterogeneous_graphs():
    hetero = HeteroData()
    hetero["paper"].x = torch.randn(3, 2)
    with pytest.raises(TypeError, match="'data'"):
        NeighborLoader(hetero, num_neighbors=[2])


def test_backend_is_reported_and_pyg_lib_is_used_when_installed(monkeypatch):
    data = node_graph()
    assert NeighborLoader(data, num_neighbors=[2]).backend == ("pyg-lib" if torch_geometric.typing.WITH_PYG_LIB
                                                                else "torch")
    if not torch_geometric.typing.WITH_PYG_LIB:
        with pytest.raises(ImportError, match="pyg-lib"):
            NeighborLoader(data, num_neighbors=[2], backend="pyg-lib")
    monkeypatch.setattr(neighbor_loader, "pyg_lib_available", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                  # PyG warns that its sampler is deprecated without pyg-lib
        loader = NeighborLoader(data, num_neighbors=[2])
    assert loader.backend == "pyg-lib"
    assert isinstance(loader.node_sampler, torch_geometric.sampler.NeighborSampler)
    assert NeighborLoader(data, num_neighbors=[2], subgraph_type="induced").backend == "torch"  # not in pyg-lib
    assert NeighborLoader(data, num_neighbors=[2], backend="torch").backend == "torch"


# ---------------------------------------------------------------------------------------------------------------
# the runnable example
# ---------------------------------------------------------------------------------------------------------------
def load_script(relpath: str):
    path = Path(__file__).resolve().parent.parent / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.data
def test_example_trains_cora_with_sampled_minibatches(staged_root):
    require_staged(staged_root, "Cora/raw/ind.cora.graph")
    results = load_script("examples/neighbor_sampling.py").main(["--epochs", "5", "--seeds", "1"])
    assert len(results["minibatch"]) == len(results["full_batch"]) == 1
    assert results["minibatch"][0] > 0.3                                    # learning: chance is 1/7


def test_sampler_benchmark_smoke(tmp_path):
    """benchmarks/sampler.py end to end on a tiny graph (the numbers mean nothing at this size)."""
    out = tmp_path / "runs.jsonl"
    run = load_script("benchmarks/sampler.py").main(
        ["--nodes", "3000", "--edges", "30000", "--batch-size", "32", "--batches", "3", "--epoch-batches", "2",
         "--hidden", "16", "--json", str(out)])
    assert run["graph"]["edges"] == 30000 and run["graph"]["train_seeds"] == 240
    (name, throughput), = run["throughput"].items()
    assert name == "gdl_graphs (torch)" and throughput["seeds_timed"] == 96
    assert throughput["edges_per_batch"] <= 32 * 15 + 32 * 15 * 10
    assert run["epoch"]["batches"] == 2 and run["epoch"]["seeds"] == 64 and run["epoch"]["peak_rss_gib"] > 0
    assert len(out.read_text().splitlines()) == 1
