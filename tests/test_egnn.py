"""EGNN: E(n) x S_n equivariance of the layer and both model heads (a non-equivariant baseline failing the same
check), the equations against a per-node loop, robustness (coordinates x 1e3, coincident atoms), input errors,
agreement with the reference formulation of benchmarks/egnn.py, and the models on N-body and QM9 data."""

import importlib.util

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from benchmarks import egnn as egnn_benchmark
from gdl_graphs.data import load_benchmark, require_data
from gdl_graphs.groups import EN_EQUIVARIANT
from gdl_graphs.nn import aggregate
from gdl_graphs.nn.aggregate import deterministic, reduce_edges
from gdl_graphs.nn.equivariant import EGNN, EGNNLayer, complete_graph
from gdl_graphs.testing import assert_en_equivariant, assert_permutation_equivariant, check_symmetry
from tests.conftest import random_graph

pytestmark = pytest.mark.usefixtures("one_thread")


def molecules(sizes=(4, 1, 7, 9), channels=6, dtype=torch.float64, seed=0, velocities=False) -> Batch:
    """A batch of point clouds (no edges: the models use the complete graph of each), one of a single atom."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for n in sizes:
        data = Data(x=torch.randn(n, channels, generator=g, dtype=dtype),
                    pos=2 * torch.randn(n, 3, generator=g, dtype=dtype))
        if velocities:
            data.vel = torch.randn(n, 3, generator=g, dtype=dtype)
        graphs.append(data)
    return Batch.from_data_list(graphs)


def nbody_like(num_graphs=3, dtype=torch.float64, seed=0) -> Batch:
    """Systems of 5 charged particles with complete-graph edges and charge-product edge attributes."""
    g = torch.Generator().manual_seed(seed)
    src, dst = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
    keep = src != dst
    edge_index = torch.stack([src[keep], dst[keep]])
    graphs = []
    for _ in range(num_graphs):
        charge = torch.randint(0, 2, (5, 1), generator=g).to(dtype) * 2 - 1
        vel = torch.randn(5, 3, generator=g, dtype=dtype)
        graphs.append(Data(x=vel.norm(dim=-1, keepdim=True), pos=torch.randn(5, 3, generator=g, dtype=dtype),
                           vel=vel, edge_index=edge_index, edge_attr=charge[edge_index[0]] * charge[edge_index[1]]))
    return Batch.from_data_list(graphs)


# ---------------------------------------------------------------------------------------------------------------
# complete graph
# ---------------------------------------------------------------------------------------------------------------
def test_complete_graph_has_every_pair_within_each_graph_and_nothing_across():
    batch = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 4, 4])  # graph 1 has one node, graph 3 has none
    edge_index = complete_graph(batch.numel(), batch)
    expected = {(j, i) for i in range(10) for j in range(10) if i != j and batch[i] == batch[j]}
    assert set(map(tuple, edge_index.t().tolist())) == expected
    assert edge_index.size(1) == len(expected) == 3 * 2 + 4 * 3 + 2 * 1
    assert bool((edge_index[1, 1:] >= edge_index[1, :-1]).all()), "edges are sorted by target"
    assert complete_graph(1).shape == (2, 0) and complete_graph(0).shape == (2, 0)


def test_complete_graph_rejects_unsorted_batch():
    with pytest.raises(ValueError, match="sorted"):
        complete_graph(4, torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="batch must have shape"):
        complete_graph(3, torch.tensor([0, 0]))


# ---------------------------------------------------------------------------------------------------------------
# E(n) x S_n equivariance
# ---------------------------------------------------------------------------------------------------------------
LAYER_CONFIGS = {
    "paper": dict(normalize=False),
    "default": dict(),
    "velocity": dict(velocity=True),
    "edge_inference+sum": dict(edge_inference=True, coord_reduce="sum"),
    "bounded": dict(coord_bound=3.0, norm_constant=0.0),
    "invariant": dict(update_pos=False),
}


@pytest.mark.parametrize("name", LAYER_CONFIGS)
@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_layer_is_en_equivariant_on_complete_graphs(name, dtype, bound):
    config = LAYER_CONFIGS[name]
    data = molecules(dtype=dtype, velocities=config.get("velocity", False))
    layer = EGNNLayer(6, 16, hidden_channels=12, **config).to(dtype)
    assert layer.symmetry == EN_EQUIVARIANT
    error = assert_en_equivariant(layer, data, output_kinds=("node", "position"), trials=4)
    assert error <= bound


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_layer_is_en_equivariant_on_a_sparse_graph_with_edge_attributes(dtype, bound):
    data = random_graph(12, 40, channels=5, edge_dim=2, dtype=dtype, seed=3)
    data.pos = torch.randn(12, 3, dtype=dtype)
    layer = EGNNLayer(5, 5, edge_dim=2, edge_inference=True).to(dtype)
    assert check_symmetry(layer, data, output_kinds=("node", "position")) <= bound


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_property_model_is_invariant(dtype, bound):
    data = molecules(dtype=dtype)
    for update_pos in (False, True):
        model = EGNN(6, 16, 2, num_layers=3, update_pos=update_pos, edge_inference=True).to(dtype)
        assert model.symmetry == EN_EQUIVARIANT
        assert model(data.x, data.pos, batch=data.batch).shape == (4, 2)
        assert assert_en_equivariant(model, data, output_kinds="graph") <= bound


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-5), (torch.float32, 1e-4)])
def test_dynamics_model_is_equivariant(dtype, bound):
    data = nbody_like(dtype=dtype)
    model = EGNN(1, 16, 3, num_layers=4, edge_dim=1, task="dynamics").to(dtype)
    assert model(data.x, data.pos, data.edge_index, data.batch, data.edge_attr, data.vel).shape == data.pos.shape
    assert check_symmetry(model, data) <= bound  # output inferred as "position"; vel rotates as a vector


def test_atom_type_embedding_model_is_invariant():
    data = molecules()
    data.z = torch.randint(0, 5, (data.num_nodes,))
    model = EGNN(0, 16, 1, num_layers=2, num_atom_types=5).double()
    assert assert_en_equivariant(model, data, output_kinds="graph") <= 1e-5


class PlainGNN(nn.Module):
    """Non-equivariant baseline: raw coordinates and velocities are node features, positions predicted directly."""

    def __init__(self, hidden=16):
        super().__init__()
        self.embed = nn.Linear(7, hidden)
        self.message = nn.Sequential(nn.Linear(2 * hidden + 1, hidden), nn.SiLU())
        self.decode = nn.Linear(hidden, 3)

    def forward(self, x, pos, edge_index, edge_attr, vel):
        h = self.embed(torch.cat([x, pos, vel], dim=-1))
        src, dst = edge_index
        m = self.message(torch.cat([h[dst], h[src], edge_attr], dim=-1))
        return self.decode(h + reduce_edges(m, dst, h.size(0)))


def test_non_equivariant_baseline_fails_the_check():
    data = nbody_like()
    baseline = PlainGNN().double()
    assert_permutation_equivariant(baseline, data)  # a fine graph network ...
    with pytest.raises(AssertionError, match="E\\(n\\) x S_n symmetry violated"):
        assert_en_equivariant(baseline, data)  # ... that is not E(n)-equivariant


# ---------------------------------------------------------------------------------------------------------------
# numerical robustness
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["property", "dynamics"])
@pytest.mark.parametrize("case", ["scaled_1e3", "coincident"])
def test_finite_outputs_and_gradients(task, case):
    data = molecules(sizes=(9, 12), channels=5, dtype=torch.float32)
    pos = data.pos.clone()
    if case == "scaled_1e3":
        pos = pos * 1e3
    else:
        pos[1] = pos[0]
        pos[12:15] = pos[11]
    pos.requires_grad_(True)
    model = EGNN(5, 32, 3, num_layers=4, task=task, velocity=False, update_pos=True)
    out = model(data.x, pos, batch=data.batch)
    (out ** 2).mean().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(pos.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_unnormalised_paper_update_overflows_at_scale_1e3():
    """Why normalize=True is the default: the paper's raw-difference update blows up on large coordinates."""
    data = molecules(sizes=(9, 12), channels=5, dtype=torch.float32)
    model = EGNN(5, 32, 3, num_layers=4, task="dynamics", velocity=False, normalize=False)
    assert not torch.isfinite(model(data.x, data.pos * 1e3, batch=data.batch)).all()


# ---------------------------------------------------------------------------------------------------------------
# agreement with the reference formulation, determinism
# ---------------------------------------------------------------------------------------------------------------
def test_layer_equals_reference_formulation():
    bench = egnn_benchmark
    data = molecules(sizes=(5, 8, 3), channels=16)
    edge_index = complete_graph(data.num_nodes, data.batch)
    reference = bench.ReferenceEGCL(16).double()
    layer = EGNNLayer(16, 16).double()
    bench.copy_reference_weights(reference, layer)
    for ours, ref in zip(layer(data.x, data.pos, edge_index), reference(data.x, data.pos, edge_index)):
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-10)


def test_benchmark_runs_and_reports_both_implementations():
    results = egnn_benchmark.main(["--device", "cpu", "--batch-size", "4", "--channels", "8", "--repeats",
                                            "2", "--warmup", "1", "--layers", "2", "--data", "synthetic"])
    (row,) = results
    assert row["layers"] == 2 and row["reference_ms"] > 0 and row["ours_ms"] > 0 and row["max_abs_diff"] < 1e-4


def test_deterministic_mode_gives_bitwise_identical_gradients():
    data = molecules(dtype=torch.float32)
    model = EGNN(6, 16, 1, num_layers=2, update_pos=True)
    grads = []
    with deterministic():
        for _ in range(2):
            model.zero_grad()
            model(data.x, data.pos, batch=data.batch).sum().backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.equal(grads[0], grads[1])


# ---------------------------------------------------------------------------------------------------------------
# construction, errors, repr
# ---------------------------------------------------------------------------------------------------------------
def test_reset_parameters_and_repr():
    layer = EGNNLayer(4, 8, edge_dim=2, velocity=True, edge_inference=True)
    before = [p.clone() for p in layer.parameters()]
    layer.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    assert repr(layer) == ("EGNNLayer(4, 8, hidden_channels=8, edge_dim=2, velocity=True, edge_inference=True, "
                           "coord_reduce='mean', normalize=True)")
    model = EGNN(1, 64, 3, num_layers=4, edge_dim=1, task="dynamics")
    model.reset_parameters()
    assert repr(model) == "EGNN(1, 64, 3, num_layers=4, task='dynamics', edge_dim=1, velocity=True)"
    # a property model does not build the coordinate MLP of its last layer (its output is never read)
    assert EGNN(5, 8, 1, num_layers=2, update_pos=True).layers[-1].phi_x is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="forces"), "task must be one of"),
    (dict(readout="max"), "readout must be one of"),
    (dict(num_layers=0), "num_layers"),
    (dict(in_channels=0), "in_channels"),
    (dict(task="dynamics", update_pos=False), "update_pos"),
    (dict(coord_reduce="max"), "coord_reduce"),
])
def test_model_construction_errors(kwargs, message):
    args = dict(in_channels=4, hidden_channels=8, out_channels=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        EGNN(**args)


def test_forward_input_errors():
    data = molecules(channels=4, velocities=True)
    layer = EGNNLayer(4, 8)
    x, pos, batch = data.x.float(), data.pos.float(), data.batch
    with pytest.raises(ValueError, match="x must have shape"):
        layer(x[:, :3], pos)
    with pytest.raises(ValueError, match="pos must be"):
        layer(x, pos[:-1])
    with pytest.raises(ValueError, match="edge_index refers to nodes outside"):
        layer(x, pos, torch.tensor([[0], [x.size(0)]]))
    with pytest.raises(ValueError, match="edge_attr was given"):
        layer(x, pos, torch.tensor([[0], [1]]), edge_attr=torch.ones(1, 1))
    with pytest.raises(ValueError, match="edge_attr was given without edge_index"):
        layer(x, pos, edge_attr=torch.ones(1, 1))
    with pytest.raises(ValueError, match="vel was given"):
        layer(x, pos, batch=batch, vel=data.vel.float())
    with pytest.raises(ValueError, match="vel is required"):
        EGNNLayer(4, 8, velocity=True)(x, pos, batch=batch)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        EGNNLayer(4, 8, edge_dim=2)(x, pos, torch.tensor([[0], [1]]))
    model = EGNN(4, 8, 2, task="dynamics")
    with pytest.raises(ValueError, match="out_channels=2"):
        model(x, pos, batch=batch, vel=data.vel.float())
    with pytest.raises(ValueError, match="pos is required"):
        model(x)
    with pytest.raises(ValueError, match="z is required"):
        EGNN(0, 8, 1, num_atom_types=5)(pos=pos)
    with pytest.raises(ValueError, match="z has values outside"):
        EGNN(0, 8, 1, num_atom_types=5)(pos=pos, z=torch.full((x.size(0),), 5))


# ---------------------------------------------------------------------------------------------------------------
# the equations, written out per node
# ---------------------------------------------------------------------------------------------------------------
def loop_layer(layer: EGNNLayer, x, pos, edge_index, edge_attr=None, vel=None):
    """The E-GCL of the layer's docstring, one node and one edge at a time."""
    hidden = layer.hidden_channels
    first = [layer.lin_node.weight[:hidden], layer.lin_node.weight[hidden:], layer.lin_radial.weight]
    if layer.lin_edge is not None:
        first.append(layer.lin_edge.weight)
    weight = torch.cat(first, dim=1)                      # phi_e's first layer on [h_i | h_j | r_ij | a_ij]
    act = layer.act
    new_h, new_pos = [], []
    for i in range(x.size(0)):
        total, shift, count = torch.zeros(hidden, dtype=x.dtype), torch.zeros(pos.size(1), dtype=x.dtype), 0
        for e in range(edge_index.size(1)):
            j, target = int(edge_index[0, e]), int(edge_index[1, e])
            if target != i:
                continue
            d = pos[i] - pos[j]
            r = (d * d).sum().view(1)
            parts = [x[i], x[j], r] + ([edge_attr[e]] if edge_attr is not None else [])
            m = act(layer.lin_message(act(weight @ torch.cat(parts) + layer.bias_edge)))
            total = total + (m * torch.sigmoid(layer.gate(m)) if layer.gate is not None else m)
            if layer.phi_x is not None:
                w = layer.phi_x(m)
                if layer.coord_bound is not None:
                    w = layer.coord_bound * torch.tanh(w)
                if layer.normalize:
                    d = d / (torch.sqrt(r + layer.eps) + layer.norm_constant)
                shift, count = shift + d * w, count + 1
        scale = 1.0 / max(count, 1) if layer.coord_reduce == "mean" else 1.0
        p = pos[i] + scale * shift if layer.phi_x is not None else pos[i]
        if layer.phi_v is not None:
            p = p + layer.phi_v(x[i]) * vel[i]
        h = layer.phi_h(torch.cat([x[i], total]))
        new_h.append(x[i] + h if layer.residual else h)
        new_pos.append(p)
    return torch.stack(new_h), torch.stack(new_pos)


@pytest.mark.parametrize("config", [
    dict(), dict(normalize=False, coord_reduce="sum"), dict(velocity=True, edge_inference=True, edge_dim=2),
    dict(coord_bound=2.0, norm_constant=0.0, edge_dim=2), dict(update_pos=False, edge_inference=True),
])
def test_layer_matches_the_equations_node_by_node(config):
    """On a sparse graph with duplicate edges, a self-loop and an isolated node, in and out sizes differing."""
    data = random_graph(7, 18, channels=4, edge_dim=config.get("edge_dim"), dtype=torch.float64, seed=5)
    data.edge_index[:, 0] = torch.tensor([3, 3])                        # a self-loop (zero difference vector)
    data.edge_index[1][data.edge_index[1] == 6] = 0                     # node 6 receives nothing
    pos, vel = torch.randn(7, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    vel = vel if config.get("velocity") else None
    for out_channels in (4, 6):
        layer = EGNNLayer(4, out_channels, hidden_channels=5, **config).double()
        ours = layer(data.x, pos, data.edge_index, edge_attr=data.get("edge_attr"), vel=vel)
        expected = loop_layer(layer, data.x, pos, data.edge_index, data.get("edge_attr"), vel)
        for got, want in zip(ours, expected):
            torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


def test_model_builds_one_adjacency_per_forward_and_matches_scatter_path(monkeypatch):
    """All layers share the cached CSR structure of the batch; results equal the scatter path (used when compiled)."""
    data = molecules(dtype=torch.float64)
    model = EGNN(6, 16, 2, num_layers=3, update_pos=True).double()
    edge_index = complete_graph(data.num_nodes, data.batch)
    aggregate.clear_cache()
    csr = model(data.x, data.pos, edge_index, data.batch)
    assert len(aggregate._cache) == 1
    monkeypatch.setattr(aggregate, "use_csr_path", lambda: False)
    torch.testing.assert_close(model(data.x, data.pos, edge_index, data.batch), csr, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("config", [dict(), dict(edge_inference=True, coord_reduce="sum"),
                                    dict(coord_bound=3.0, norm_constant=0.0)])
def test_stack_of_layers_finite_for_coincident_and_far_atoms_float64(config):
    """Extreme geometry in one batch: all atoms of a molecule on one point, another molecule spread over 1e4."""
    data = molecules(sizes=(6, 8), channels=5, dtype=torch.float64)
    pos = data.pos.clone()
    pos[:6] = 3.0
    pos[6:] = pos[6:] * 1e4
    pos.requires_grad_(True)
    model = EGNN(5, 16, 3, num_layers=3, task="dynamics", velocity=False, **config).double()
    out = model(data.x, pos, batch=data.batch)
    out.pow(2).mean().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pos.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_reference_stack_matches_our_stack():
    bench = egnn_benchmark
    data = molecules(sizes=(5, 8, 3), channels=16)
    edge_index = complete_graph(data.num_nodes, data.batch)
    reference, ours = bench.ReferenceStack(16, 3).double(), bench.OurStack(16, 3).double()
    bench.copy_stack_weights(reference, ours)
    for got, want in zip(ours(data.x, data.pos, edge_index), reference(data.x, data.pos, edge_index)):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# the models on their data sets
# ---------------------------------------------------------------------------------------------------------------
def test_dynamics_model_on_nbody_batches_is_equivariant_and_learns(tmp_path):
    from torch_geometric.loader import DataLoader

    bench = load_benchmark("nbody", root=tmp_path, num_train=64, num_valid=8, num_test=8)
    batch = next(iter(DataLoader(bench.train, batch_size=16)))
    torch.manual_seed(0)
    model = EGNN(bench.num_features, 32, 3, num_layers=4, edge_dim=bench.num_edge_features, task="dynamics")

    def call(module, data):
        return module(data.x, data.pos, data.edge_index, data.batch, data.edge_attr, data.vel)

    assert assert_en_equivariant(model, batch, call=call) <= 1e-4
    double = batch.clone()
    for key in ("x", "pos", "vel", "edge_attr"):
        double[key] = double[key].double()
    assert assert_en_equivariant(model.double(), double, call=call) <= 1e-5
    model.float()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(call(model, batch), batch.y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    static = float(torch.nn.functional.mse_loss(batch.pos, batch.y))  # "particles do not move"
    assert losses[-1] < 0.5 * losses[0] and losses[-1] < static


@pytest.mark.data
def test_property_model_on_qm9_molecules_is_invariant(tmp_path):
    if importlib.util.find_spec("qm9pack") is None:
        message = "qm9pack is not installed (pip install 'gdl_graphs[qm9]')"
        if require_data():
            pytest.fail(message)
        pytest.skip(message)
    from torch_geometric.loader import DataLoader

    bench = load_benchmark("QM9", root=tmp_path, target="homo", limit=500)
    batch = next(iter(DataLoader(bench.train, batch_size=32)))
    model = EGNN(bench.num_features, 32, 1, num_layers=3, num_atom_types=10).double()
    batch.x, batch.pos = batch.x.double(), batch.pos.double()
    out = model(batch.x, batch.pos, batch=batch.batch, z=batch.z)
    assert out.shape == batch.y.shape == (32, 1)
    assert assert_en_equivariant(model, batch, output_kinds="graph", trials=2) <= 1e-5


def test_layer_inputs_are_named_and_int32_edges_accepted():
    """Issue 16: integer or float64 features name ``x``; int32 ``edge_index`` is accepted as by the conv layers."""
    layer = EGNNLayer(4, 4)
    x, pos = torch.randn(5, 4), torch.randn(5, 3)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    expected = layer(x, pos, edge_index)
    got = layer(x, pos, edge_index.int())
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        layer(torch.ones(5, 4, dtype=torch.long), pos, edge_index)
    with pytest.raises(ValueError, match="x has dtype torch.float64"):
        layer(x.double(), pos, edge_index)
    with pytest.raises(ValueError, match="pos has dtype torch.float64"):
        layer(x, pos.double(), edge_index)
