"""Spatio-temporal forecasting models: diffusion operators, shapes, S_n-equivariance in space (with the sensor graph
relabelled, via gdl_graphs.testing), causality in time, scheduled sampling, baselines, the factory, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch_geometric.data import Data

from gdl_graphs.groups import PERMUTATION_EQUIVARIANT
from gdl_graphs.models import list_models
from gdl_graphs.models.temporal import (
    DCRNN, STGCN, ChebGraphConv, DiffusionConv, GatedTCN, GraphWaveNet, HistoricalAverage, LastValue,
    TemporalGatedConv, build_temporal_model, dense_adjacency, diffusion_operators, scaled_laplacian,
    scheduled_sampling_probability,
)
from gdl_graphs.models.temporal import GraphOperator, diffusion
from gdl_graphs.testing import assert_permutation_equivariant

N, B, T_IN, T_OUT, F = 9, 2, 12, 4, 2

# Small widths keep the suite fast; the architecture is the same as with the published sizes.
SMALL = {
    "dcrnn": dict(hidden_channels=8, num_layers=2, K=2),
    "stgcn": dict(channels=(8, 4, 8), K=3),
    "stgcn_gcn": dict(channels=(8, 4, 8), spatial="gcn"),
    "graph_wavenet": dict(residual_channels=8, dilation_channels=8, skip_channels=16, end_channels=16,
                          embedding_dim=4),
}
NODE_STATE = {"graph_wavenet": ("node_emb_source", "node_emb_target")}


pytestmark = pytest.mark.usefixtures("one_thread")


def graph(num_nodes: int = N, num_edges: int = 24, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    edge_weight = torch.rand(num_edges, generator=g, dtype=dtype) + 0.1
    return edge_index, edge_weight


def window(batch: int = B, steps: int = T_IN, num_nodes: int = N, seed: int = 1, dtype=torch.float64):
    return torch.randn(batch, steps, num_nodes, F, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def build(key: str, edge_index, edge_weight, out_horizon: int = T_OUT, num_nodes: int = N):
    name = "stgcn" if key.startswith("stgcn") else key
    return build_temporal_model(name, num_nodes, F, out_horizon, edge_index, edge_weight, **SMALL[key])


# ------------------------------------------------------------------------------------------------------------------
# Diffusion operators and the diffusion convolution
# ------------------------------------------------------------------------------------------------------------------
def test_diffusion_operators_are_the_two_random_walks():
    # 0 -> 1 (w=1), 0 -> 2 (w=1+2, a duplicate edge is summed), 1 -> 2 (w=2)
    edge_index = torch.tensor([[0, 0, 0, 1], [1, 2, 2, 2]])
    edge_weight = torch.tensor([1.0, 1.0, 2.0, 2.0])
    forward_op, backward_op = diffusion_operators(dense_adjacency(edge_index, edge_weight, 3))
    # forward walk: a node receives from its in-neighbours, weighted by the sender's out-degree share
    assert torch.allclose(forward_op, torch.tensor([[0.0, 0, 0], [0.25, 0, 0], [0.75, 1, 0]]))
    # backward walk: a node receives from its out-neighbours, weighted by the receiver's in-degree share
    assert torch.allclose(backward_op, torch.tensor([[0.0, 1, 0.6], [0, 0, 0.4], [0, 0, 0]]))


def test_diffusion_conv_reaches_exactly_k_hops():
    path = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])  # 0 -> 1 -> 2 -> 3 -> 4
    supports = diffusion_operators(dense_adjacency(path, None, 5))
    layer = DiffusionConv(3, 4, num_supports=2, K=2)
    x = torch.randn(2, 5, 3)
    moved = x.clone()
    moved[:, 0] += 1.0
    changed = (layer(moved, supports) - layer(x, supports)).abs().amax(dim=(0, 2)) > 1e-6
    assert changed.tolist() == [True, True, True, False, False]


def test_diffusion_conv_is_permutation_equivariant():
    edge_index, edge_weight = graph()
    layer = DiffusionConv(F, 5, num_supports=2, K=3).double()
    data = Data(x=torch.randn(N, F, dtype=torch.float64), edge_index=edge_index, edge_weight=edge_weight)

    def call(module, d):
        return module(d.x, diffusion_operators(dense_adjacency(d.edge_index, d.edge_weight, d.num_nodes)))

    assert layer.symmetry == PERMUTATION_EQUIVARIANT
    assert_permutation_equivariant(layer, data, call=call, output_kinds="node", trials=3)


def test_graph_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="edge_index"):
        dense_adjacency(torch.tensor([[0, 5], [1, 2]]), None, 3)
    with pytest.raises(ValueError, match="edge_weight"):
        dense_adjacency(torch.tensor([[0, 1], [1, 2]]), torch.tensor([1.0, -1.0]), 3)
    with pytest.raises(ValueError, match="edge_weight"):
        dense_adjacency(torch.tensor([[0, 1], [1, 2]]), torch.tensor([1.0, float("nan")]), 3)
    with pytest.raises(ValueError, match="num_nodes"):
        dense_adjacency(torch.tensor([[0], [0]]), None, 0)
    layer = DiffusionConv(3, 4, num_supports=2, K=1)
    supports = diffusion_operators(dense_adjacency(torch.tensor([[0], [1]]), None, 2))
    with pytest.raises(ValueError, match="supports"):
        layer(torch.randn(2, 3), supports[:1])
    with pytest.raises(ValueError, match="in_channels"):
        layer(torch.randn(2, 5), supports)


def test_scaled_laplacian_spectrum_is_in_minus_one_one():
    edge_index, edge_weight = graph()
    eigenvalues = torch.linalg.eigvalsh(scaled_laplacian(edge_index, edge_weight, N))
    assert eigenvalues.max().item() == pytest.approx(1.0, abs=1e-6)
    assert eigenvalues.min().item() >= -1.0 - 1e-6


@pytest.mark.parametrize("in_channels, out_channels", [(6, 3), (4, 4), (3, 6)])  # filters first; both; terms first
@pytest.mark.parametrize("K", [1, 2, 3, 5])
@pytest.mark.parametrize("sparse", [True, False])
def test_chebyshev_conv_is_the_chebyshev_sum_in_either_order(in_channels, out_channels, K, sparse):
    """sum_k T_k(L) X Theta_k + b with T_k from the recurrence on the dense Laplacian, against both evaluation
    orders (Clenshaw on the filtered inputs when out <= in, the concatenated terms otherwise), outputs and
    gradients, float64."""
    n = 40 if sparse else N  # 40 nodes, 40 edges: sparse enough for GraphOperator's CSR form
    edge_index, edge_weight = graph(n, 40) if sparse else graph()
    laplacian = scaled_laplacian(edge_index, edge_weight, n)
    operator = GraphOperator(laplacian) if sparse else laplacian
    assert not sparse or operator.sparse
    torch.manual_seed(0)
    conv = ChebGraphConv(in_channels, out_channels, K).double()
    torch.nn.init.normal_(conv.lin.bias)
    x = torch.randn(B, 3, n, in_channels, dtype=torch.float64, requires_grad=True)
    out = conv(x, operator)
    powers = [torch.eye(n, dtype=torch.float64), laplacian]
    while len(powers) < K:
        powers.append(2 * laplacian @ powers[-1] - powers[-2])
    blocks = conv.lin.weight.split(in_channels, dim=1)  # Theta_k^T, [out, in] each
    expected = sum(powers[k] @ x @ blocks[k].T for k in range(K)) + conv.lin.bias
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    grads = torch.autograd.grad(out.square().sum(), (x, conv.lin.weight))
    expected_grads = torch.autograd.grad(expected.square().sum(), (x, conv.lin.weight))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------------------------------------
# The three graph models: shapes, equivariance, learning, bad input
# ------------------------------------------------------------------------------------------------------------------
MODELS = ["dcrnn", "stgcn", "stgcn_gcn", "graph_wavenet"]


@pytest.mark.parametrize("key", MODELS)
def test_output_shape_and_repr(key):
    edge_index, edge_weight = graph()
    model = build(key, edge_index, edge_weight).double()
    out = model(window())
    assert out.shape == (B, T_OUT, N)
    assert torch.isfinite(out).all()
    assert type(model).__name__ in repr(model) and f"num_nodes={N}" in repr(model)


def _relabelled_twin(module, key: str, data: Data):
    """The same model (same learned parameters) built on the graph held by ``data``; node-indexed parameters are
    taken from ``data``, where the symmetry kit permutes them with the nodes."""
    twin = build(key, data.edge_index, data.edge_weight, out_horizon=module.out_horizon).double()
    state = module.state_dict()
    for name in NODE_STATE.get(key, ()):
        state[name] = data[name]
    twin.load_state_dict(state)
    return twin.train(module.training)


@pytest.mark.parametrize("key", MODELS)
def test_spatial_permutation_equivariance(key):
    edge_index, edge_weight = graph()
    model = build(key, edge_index, edge_weight).double()
    data = Data(x=window().permute(2, 0, 1, 3), edge_index=edge_index, edge_weight=edge_weight)  # nodes first
    for name in NODE_STATE.get(key, ()):
        data[name] = getattr(model, name).detach().clone()

    def call(module, d):
        return _relabelled_twin(module, key, d)(d.x.permute(1, 2, 0, 3)).permute(2, 0, 1)  # [N, B, T_out]

    assert model.symmetry == PERMUTATION_EQUIVARIANT
    assert_permutation_equivariant(model, data, call=call, output_kinds="node", trials=2)


@pytest.mark.parametrize("key", MODELS)
def test_spatial_permutation_equivariance_on_sparse_operators(key, monkeypatch):
    # the test graph is dense (30% of the entries): force the CSR path of every GraphOperator
    monkeypatch.setattr(diffusion, "SPARSE_MAX_DENSITY", 1.0)
    test_spatial_permutation_equivariance(key)


@pytest.mark.parametrize("key", MODELS)
def test_only_the_declared_node_state_depends_on_the_number_of_nodes(key):
    """Parameters and buffers tied to node identities would break equivariance once trained (at initialisation a
    per-node affine norm is still the identity, so the equivariance tests alone would not see it): every state
    entry but the declared node-indexed ones has the same shape on graphs of different sizes."""
    def shapes(num_nodes):
        model = build(key, *graph(num_nodes, 3 * num_nodes), num_nodes=num_nodes)
        return {k: v.shape for k, v in model.state_dict().items() if k not in NODE_STATE.get(key, ())}

    assert shapes(N) == shapes(N + 5)


def test_graph_operator_sparse_and_dense_agree(monkeypatch):
    g = torch.Generator().manual_seed(0)
    matrix = torch.rand(N, N, generator=g, dtype=torch.float64) * (torch.rand(N, N, generator=g) < 0.3)
    matrix[3] = 0.0  # a node that receives nothing
    x = torch.randn(2, 3, N, 4, generator=g, dtype=torch.float64)
    cotangent = torch.randn(2, 3, N, 4, generator=g, dtype=torch.float64)
    results = []
    for density in (1.0, 0.0):  # sparse, then dense
        monkeypatch.setattr(diffusion, "SPARSE_MAX_DENSITY", density)
        operator = GraphOperator(matrix)
        assert operator.sparse == (density == 1.0)
        torch.testing.assert_close(operator.to_dense(), matrix, rtol=0, atol=0)
        xs = x.clone().requires_grad_()
        out = operator(xs)
        (out * cotangent).sum().backward()
        results.append((out, xs.grad))
    torch.testing.assert_close(results[0][0], torch.matmul(matrix, x), rtol=0, atol=1e-12)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    monkeypatch.undo()  # the repr checks below use the measured threshold
    assert "sparse" in repr(GraphOperator(torch.eye(50))) and "dense" in repr(GraphOperator(torch.ones(3, 3)))
    with pytest.raises(ValueError, match="matrix"):
        GraphOperator(torch.ones(2, 3))


@pytest.mark.parametrize("key", MODELS)
def test_models_on_sparse_and_dense_operators_agree(key, monkeypatch):
    edge_index, edge_weight = graph()
    outputs = []
    for density in (1.0, 0.0):
        monkeypatch.setattr(diffusion, "SPARSE_MAX_DENSITY", density)
        torch.manual_seed(0)
        model = build(key, edge_index, edge_weight).double().eval()
        x = window().requires_grad_()
        out = model(x)
        out.sum().backward()
        outputs.append((out, x.grad))
    for a, b in zip(*outputs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_graph_wavenet_needs_its_node_embeddings_permuted():
    """Fixed (unpermuted) node embeddings make the adaptive adjacency tied to node identities."""
    edge_index, edge_weight = graph()
    model = build("graph_wavenet", edge_index, edge_weight).double().eval()
    data = Data(x=window().permute(2, 0, 1, 3), edge_index=edge_index, edge_weight=edge_weight)

    def call(module, d):  # relabels the graph and the input but keeps the embeddings as they are
        twin = build("graph_wavenet", d.edge_index, d.edge_weight).double().eval()
        twin.load_state_dict(module.state_dict())
        return twin(d.x.permute(1, 2, 0, 3)).permute(2, 0, 1)

    with pytest.raises(AssertionError, match="not equivariant"):
        assert_permutation_equivariant(model, data, call=call, output_kinds="node", trials=1)
    plain = build_temporal_model("graph_wavenet", N, F, T_OUT, edge_index, edge_weight, adaptive=False,
                                 **SMALL["graph_wavenet"]).double()
    assert not any("node_emb" in name for name, _ in plain.named_parameters())


def test_graph_wavenet_matches_the_full_skip_computation():
    """Computing only the last step of the skip sum gives the reference forecast (skip summed at every step)."""
    edge_index, edge_weight = graph()
    model = build("graph_wavenet", edge_index, edge_weight).double().eval()
    x = window()
    supports = [*model.supports, model.adaptive_operator()]
    h = model.encoder(torch.nn.functional.pad(x, (0, 0, 0, 0, model.receptive_field - T_IN, 0)))
    skip = None
    for i, (tcn, to_skip) in enumerate(zip(model.tcns, model.skips)):
        z = tcn(h)
        s = to_skip(z)
        skip = s if skip is None else s + skip[:, -s.size(1):]
        if i < len(model.gconvs):
            h = model.norms[i]((model.gconvs[i](z, supports) + h[:, -z.size(1):]).permute(0, 3, 1, 2))
            h = h.permute(0, 2, 3, 1)
    reference = model.end2(torch.relu(model.end1(torch.relu(skip))))[:, -1].transpose(1, 2)
    assert torch.allclose(model(x), reference, atol=1e-12)


@pytest.mark.parametrize("key", MODELS)
def test_a_few_steps_reduce_the_loss(key):
    """Target: one diffusion step of the last observed value (a signal the graph explains)."""
    torch.manual_seed(0)
    edge_index, edge_weight = graph(dtype=torch.float32)
    forward_op, _ = diffusion_operators(dense_adjacency(edge_index, edge_weight, N))
    x = window(batch=16, dtype=torch.float32)
    last = x[:, -1, :, 0]
    y = torch.stack([last @ torch.linalg.matrix_power(forward_op, h + 1).T for h in range(T_OUT)], dim=1)
    model = build(key, edge_index, edge_weight)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)

    def loss() -> torch.Tensor:
        return torch.nn.functional.l1_loss(model(x), y)

    before = loss().item()
    for _ in range(40):
        optimiser.zero_grad()
        value = loss()
        value.backward()
        optimiser.step()
    model.eval()
    after = loss().item()
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("key", MODELS)
def test_reset_parameters_reinitialises(key):
    edge_index, edge_weight = graph()
    model = build(key, edge_index, edge_weight)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    model.reset_parameters()
    weights = [p for p in model.parameters() if p.dim() >= 2]
    assert weights and all(bool(p.abs().sum() > 0) for p in weights)


@pytest.mark.parametrize("key", MODELS)
def test_bad_windows_raise_value_errors(key):
    edge_index, edge_weight = graph()
    model = build(key, edge_index, edge_weight).double()
    with pytest.raises(ValueError, match="x must have shape"):
        model(window(num_nodes=N + 1))
    with pytest.raises(ValueError, match="x must have shape"):
        model(window()[..., :1])
    bad = window()
    bad[0, 3, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(bad)


def test_constructor_errors_name_the_argument():
    edge_index, edge_weight = graph()
    with pytest.raises(ValueError, match="in_steps"):
        STGCN(N, F, T_OUT, edge_index, edge_weight, in_steps=8)
    with pytest.raises(ValueError, match="spatial"):
        STGCN(N, F, T_OUT, edge_index, edge_weight, spatial="fourier")
    with pytest.raises(ValueError, match="out_horizon"):
        DCRNN(N, F, 0, edge_index, edge_weight)
    with pytest.raises(ValueError, match="edge_index"):
        GraphWaveNet(N, F, T_OUT, edge_index + N, edge_weight)
    with pytest.raises(ValueError, match="name must be one of"):
        build_temporal_model("gru", N, F, T_OUT, edge_index, edge_weight)


def test_stgcn_rejects_a_window_of_another_length():
    edge_index, edge_weight = graph()
    model = build("stgcn", edge_index, edge_weight).double()
    with pytest.raises(ValueError, match="in_steps"):
        model(window(steps=T_IN + 1))


# ------------------------------------------------------------------------------------------------------------------
# Time: causal temporal convolutions, receptive fields
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conv, kernel, dilation", [(TemporalGatedConv(3, 5, kernel_size=3), 3, 1),
                                                    (GatedTCN(3, 5, kernel_size=2, dilation=3), 2, 3)])
def test_temporal_convolutions_are_causal(conv, kernel, dilation):
    x = torch.randn(2, 12, 4, 3)
    t0 = 5
    moved = x.clone()
    moved[:, t0] += 1.0
    span = dilation * (kernel - 1) + 1
    changed = (conv(moved) - conv(x)).abs().amax(dim=(0, 2, 3)) > 0
    aligned = (torch.arange(changed.numel()) + span - 1).tolist()  # output j sits at input step j + span - 1
    assert changed.numel() == 12 - span + 1
    # output at step t changes only when t0 is one of its taps t, t - d, ..., t - d(k - 1): never before t0
    assert [t for t, c in zip(aligned, changed.tolist()) if c] == [t0 + dilation * i for i in range(kernel)]
    # shift-equivariance in time: dropping the first 3 input steps drops the first 3 outputs
    assert torch.allclose(conv(x[:, 3:]), conv(x)[:, 3:], atol=1e-6)


@pytest.mark.parametrize("in_channels, out_channels", [(3, 5), (4, 4)])  # projected / identity residual
def test_gated_temporal_conv_is_the_glu_with_its_residual(in_channels, out_channels):
    """(P + X_res) * sigmoid(Q) with [P, Q] the convolution's two halves and X_res the (projected) input at the
    aligned steps, written out, against the layer's folded kernel: outputs and every gradient, float64."""
    torch.manual_seed(0)
    conv = TemporalGatedConv(in_channels, out_channels, kernel_size=3).double()
    x = torch.randn(2, 7, 4, in_channels, dtype=torch.float64, requires_grad=True)
    p, q = conv.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).chunk(2, dim=-1)
    aligned = x[:, 2:]
    expected = (p + (aligned @ conv.residual.weight.T if in_channels != out_channels else aligned)) * torch.sigmoid(q)
    out = conv(x)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    inputs = (x, *conv.parameters())
    for got, want in zip(torch.autograd.grad(out.square().sum(), inputs),
                         torch.autograd.grad(expected.square().sum(), inputs)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("key", ["stgcn", "graph_wavenet"])
def test_forecast_sees_the_whole_window(key):
    edge_index, edge_weight = graph()
    model = build(key, edge_index, edge_weight).double().eval()
    x = window()
    moved = x.clone()
    moved[:, 0] += 1.0
    assert (model(moved) - model(x)).abs().max() > 1e-8
    if key == "graph_wavenet":
        assert model.receptive_field == 13


# ------------------------------------------------------------------------------------------------------------------
# DCRNN scheduled sampling
# ------------------------------------------------------------------------------------------------------------------
def test_scheduled_sampling_switch():
    edge_index, edge_weight = graph()
    model = build("dcrnn", edge_index, edge_weight).double().train()
    x = window()
    y = torch.randn(B, T_OUT, N, dtype=torch.float64)
    y_other = y.clone()
    y_other[:, 1] += 5.0  # changes the teacher input of decoder step 2 only
    free = model(x)
    # ratio 0: targets are never fed back
    assert torch.equal(model(x, y, teacher_forcing_ratio=0.0), free)
    # ratio 1: the decoder input of step t is y[t - 1]
    forced = model(x, y, teacher_forcing_ratio=1.0)
    forced_other = model(x, y_other, teacher_forcing_ratio=1.0)
    assert torch.equal(forced[:, :2], forced_other[:, :2])
    assert (forced[:, 2] - forced_other[:, 2]).abs().max() > 1e-8
    assert torch.equal(forced[:, 0], free[:, 0]) and not torch.equal(forced[:, 1:], free[:, 1:])
    # evaluation mode never uses the targets
    model.eval()
    assert torch.equal(model(x, y, teacher_forcing_ratio=1.0), model(x))
    model.train()
    with pytest.raises(ValueError, match="needs the targets y"):
        model(x, teacher_forcing_ratio=0.5)
    with pytest.raises(ValueError, match="y must have shape"):
        model(x, y[:, :1], teacher_forcing_ratio=0.5)
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        model(x, y, teacher_forcing_ratio=1.5)


def test_scheduled_sampling_probability_decays():
    values = [scheduled_sampling_probability(step, decay_steps=2000) for step in (0, 2000, 20000, 100000, 10 ** 9)]
    assert values[0] == pytest.approx(2000 / 2001)
    assert values[1] == pytest.approx(2000 / (2000 + math.e))
    assert all(a > b for a, b in zip(values, values[1:-1]))
    assert 0.0 <= values[-1] < 1e-6
    with pytest.raises(ValueError, match="decay_steps"):
        scheduled_sampling_probability(1, decay_steps=0)


# ------------------------------------------------------------------------------------------------------------------
# Baselines
# ------------------------------------------------------------------------------------------------------------------
def test_last_value_and_window_mean():
    x = window()
    assert torch.equal(LastValue(N, F, T_OUT)(x), x[:, -1:, :, 0].expand(B, T_OUT, N))
    mean = HistoricalAverage(N, F, T_OUT)(x)
    assert torch.allclose(mean, x[..., 0].mean(1, keepdim=True).expand(B, T_OUT, N))
    assert list(LastValue(N, F, T_OUT).parameters()) == []


def _daily_series(days: int, steps_per_day: int, num_nodes: int):
    steps = torch.arange(days * steps_per_day)
    time_of_day = (steps % steps_per_day).double() / steps_per_day
    profile = torch.sin(2 * math.pi * time_of_day).unsqueeze(1) * torch.arange(1, num_nodes + 1).double()
    return profile, time_of_day


def test_historical_average_uses_the_time_of_day_slot():
    spd = 24
    series, tod = _daily_series(days=5, steps_per_day=spd, num_nodes=N)
    mask = torch.ones_like(series, dtype=torch.bool)
    corrupted = series.clone()
    corrupted[7, 3], mask[7, 3] = 1e6, False  # a missing reading must not enter the average
    model = HistoricalAverage(N, F, T_OUT, steps_per_day=spd).double()
    with pytest.raises(RuntimeError, match="fitted"):
        model(window())
    model.fit(corrupted, tod, mask)
    # a window whose last step is at 22:00 -> forecast slots 23, 0, 1, 2
    x = window(batch=1)
    x[..., 1] = ((torch.arange(T_IN) + 22 - T_IN + 1) % spd).double().view(1, T_IN, 1) / spd
    expected = series[torch.tensor([23, 24, 25, 26])].unsqueeze(0)
    assert torch.allclose(model(x), expected)
    state = model.state_dict()
    restored = HistoricalAverage(N, F, T_OUT, steps_per_day=spd).double()
    restored.load_state_dict(state)
    assert restored.fitted and torch.equal(restored(x), model(x))
    with pytest.raises(ValueError, match="series"):
        model.fit(series[:, :2], tod)
    with pytest.raises(ValueError, match="steps_per_day"):
        HistoricalAverage(N, F, T_OUT).fit(series, tod)
    with pytest.raises(ValueError, match="time_feature"):
        HistoricalAverage(N, 1, T_OUT, steps_per_day=spd)


def test_baselines_are_permutation_equivariant():
    spd = 24
    series, tod = _daily_series(days=3, steps_per_day=spd, num_nodes=N)
    fitted = HistoricalAverage(N, F, T_OUT, steps_per_day=spd).double().fit(series + torch.randn_like(series), tod)
    x = window()
    x[..., 1] = (torch.arange(T_IN) % spd).double().view(1, T_IN, 1) / spd
    data = Data(x=x.permute(2, 0, 1, 3), table=fitted.table.T.clone())  # the slot table is indexed by node

    def call(module, d):
        if isinstance(module, HistoricalAverage) and module.steps_per_day:
            twin = HistoricalAverage(N, F, T_OUT, steps_per_day=spd).double()
            twin.load_state_dict({"table": d.table.T})
            module = twin
        return module(d.x.permute(1, 2, 0, 3)).permute(2, 0, 1)

    for model in (LastValue(N, F, T_OUT), HistoricalAverage(N, F, T_OUT), fitted):
        assert model.symmetry == PERMUTATION_EQUIVARIANT
        assert_permutation_equivariant(model, data, call=call, output_kinds="node", trials=2)


def test_factory_builds_every_registered_model():
    edge_index, edge_weight = graph()
    registered = {entry.name: entry.module for entry in list_models("temporal")}
    assert sorted(registered) == ["dcrnn", "graph_wavenet", "historical_average", "last_value", "stgcn"]
    model = build_temporal_model("dcrnn", N, F, T_OUT, edge_index, edge_weight, hidden_channels=8)
    assert isinstance(model, DCRNN) and model.hidden_channels == 8
    for name, cls in registered.items():
        assert isinstance(build_temporal_model(name, N, F, T_OUT, edge_index, edge_weight), cls)


# ------------------------------------------------------------------------------------------------------------------
# The real Montevideo bus graph (staged data)
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.data
def test_models_on_the_montevideo_bus_graph(staged_root):
    path = staged_root / "traffic" / "MontevideoBus" / "montevideo_bus.json"
    if not path.is_file():
        pytest.skip(f"{path} not staged")
    raw = json.loads(path.read_text())
    ids = {node["id"]: i for i, node in enumerate(raw["nodes"])}
    edge_index = torch.tensor([[ids[link["source"]] for link in raw["links"]],
                               [ids[link["target"]] for link in raw["links"]]])
    edge_weight = torch.tensor([float(link["weight"]) for link in raw["links"]])
    series = torch.tensor([node["y"] for node in raw["nodes"]], dtype=torch.float32).T  # [744, 675]
    num_nodes = len(ids)
    assert series.shape == (744, 675) and num_nodes == 675
    forward_op, backward_op = diffusion_operators(dense_adjacency(edge_index, edge_weight, num_nodes))
    has_out = torch.zeros(num_nodes, dtype=torch.bool)
    has_out[edge_index[0]] = True
    assert torch.allclose(forward_op.sum(0)[has_out], torch.ones(int(has_out.sum())))
    x = ((series[:T_IN] - series.mean()) / series.std()).view(1, T_IN, num_nodes, 1)
    small = {"dcrnn": dict(hidden_channels=4), "stgcn": dict(channels=(4, 4, 4)),
             "graph_wavenet": dict(residual_channels=4, dilation_channels=4, skip_channels=8, end_channels=8)}
    for name, kwargs in small.items():
        model = build_temporal_model(name, num_nodes, 1, 12, edge_index, edge_weight, **kwargs).eval()
        with torch.no_grad():
            out = model(x)
        assert out.shape == (1, 12, num_nodes) and torch.isfinite(out).all()
