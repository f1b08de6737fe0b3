"""The one model registry and what reads it: declared capabilities checked before any run (egnn on ESOL), task
kinds as types covering every task name, metric directions in one place, declared training behaviour (teacher
forcing, auxiliary losses), recipes as data, and every public layer of gdl_graphs.nn certified or exempt."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn
from torch_geometric.data import Data

from gdl_graphs.bench.config import ConfigError, check_names
from gdl_graphs.bench.tasks import TASK_KINDS, Forecasting, make_task
from gdl_graphs.bench.verify import (EXEMPT_LAYERS, EXEMPT_TASKS, LAYER_CHECKS, MODEL_TASKS, model_entries,
                                     public_layers)
from gdl_graphs.data import METRICS, TASKS, Benchmark, list_benchmarks
from gdl_graphs.models import MODELS, GraphNet, LayerSpec, ModelEntry, Recipe, compatible, get_model
from gdl_graphs.nn import conv


def test_egnn_on_esol_is_refused_at_the_config_check():
    with pytest.raises(ConfigError, match=r"models: 'egnn' needs node coordinates \(pos\), which ESOL"):
        check_names("ESOL", ["gin", "egnn"])
    assert check_names("QM9", ["egnn", "gin"]) == "QM9"
    assert check_names("NBody", ["egnn", "gcn"]) == "NBody"
    with pytest.raises(ConfigError, match="'dcrnn' .*cannot train on MUTAG"):
        check_names("MUTAG", ["dcrnn"])


def test_compatible_reads_the_declared_tasks_and_needs():
    assert compatible("egnn", "graph_regression") and not compatible("egnn", "graph_regression", set())
    assert compatible("egnn", "graph_regression", {"pos"})
    assert not compatible("gcn", "forecasting") and compatible("stgcn", "forecasting")


def test_every_task_kind_is_a_type_and_every_metric_has_a_direction():
    assert set(TASK_KINDS) == set(TASKS)
    assert all(cls.kind == name for name, cls in TASK_KINDS.items())
    assert all(set(entry.tasks) <= set(TASKS) and entry.tasks for entry in MODELS.values())
    assert {spec.metric for spec in list_benchmarks()} <= set(METRICS)
    assert METRICS["rocauc"].higher_is_better and not METRICS["mae"].higher_is_better
    with pytest.raises(ValueError, match="unknown task kinds"):
        ModelEntry("bad", "graph", "", frozenset({"link_prediction"}), lambda *a: None)


def test_a_task_refuses_a_benchmark_of_another_kind():
    graphs = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([0]))]
    bench = Benchmark("toy", "graph_classification", "accuracy", graphs, graphs, graphs, 2, 2)
    with pytest.raises(ValueError, match="Forecasting trains 'forecasting' benchmarks"):
        Forecasting(bench, batch_size=1, device=torch.device("cpu"), seed=0)


class _WithAuxiliaryLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, data):
        return torch.zeros(data.num_graphs, 1) + 0.0 * self.linear.weight.sum()  # the same task loss in both runs

    def auxiliary_loss(self) -> dict:
        return {"link": self.linear.weight.pow(2).sum() * 0.0 + 5.0}


def test_declared_auxiliary_losses_are_added_to_the_task_loss():
    graphs = [Data(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([[y]]))
              for y in (1.0, 3.0)]
    bench = Benchmark("toy", "graph_regression", "mae", graphs, graphs, graphs, 2, 1)
    declared = ModelEntry("toy", "graph", "", frozenset({"graph_regression"}), lambda *a: None, aux_losses=("link",))
    undeclared = ModelEntry("toy", "graph", "", frozenset({"graph_regression"}), lambda *a: None)
    losses = []
    for entry in (declared, undeclared):
        model = _WithAuxiliaryLoss()
        task = make_task(bench, batch_size=2, device=torch.device("cpu"), seed=0, entry=entry)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        losses.append(task.train_epoch(model, optimizer, None, contextlib.nullcontext))
    assert losses[0] == pytest.approx(losses[1] + 5.0)


def test_teacher_forcing_and_the_fitted_baseline_are_declared():
    assert get_model("dcrnn").teacher_forcing and not get_model("graph_wavenet").teacher_forcing
    assert get_model("historical_average").fits_training_series and not get_model("last_value").fits_training_series
    assert get_model("stgcn").takes_input_len and not get_model("stgcn").sized_by_budget


def test_recipes_are_data_on_the_entry():
    recipe = Recipe("paper", "Someone et al.", "ZINC", settings={"epochs": 3}, model_options={"num_layers": 2})
    entry = ModelEntry("toy", "graph", "", frozenset({"graph_regression"}), lambda *a: None, recipes=(recipe,))
    assert entry.recipe("paper") is recipe
    with pytest.raises(KeyError, match="no recipe"):
        entry.recipe("other")
    with pytest.raises(ValueError, match="unique"):
        ModelEntry("toy", "graph", "", frozenset({"graph_regression"}), lambda *a: None, recipes=(recipe, recipe))


def test_a_layer_spec_declares_how_graph_net_calls_its_layer():
    spec = LayerSpec(lambda c: conv.GCNConv(c, c))
    model = GraphNet(spec, 2, 1, hidden_channels=8, num_layers=2)
    data = Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]))
    assert model(data).shape == (1, 1)
    assert get_model("transformer").layer.takes_batch and not get_model("transformer").layer.takes_edge_index
    assert get_model("pna").layer.needs_degree and get_model("gps").layer.takes_edge_attr


def test_every_public_layer_is_certified_or_exempt_with_a_reason():
    layers = public_layers()
    assert {"NNConv", "GCNConv", "EGNNLayer", "GPSLayer"} <= set(layers)
    missing = sorted(set(layers) - set(LAYER_CHECKS) - set(EXEMPT_LAYERS))
    assert not missing, f"public layers neither certified (verify.LAYER_CHECKS) nor exempt: {missing}"
    assert not set(LAYER_CHECKS) & set(EXEMPT_LAYERS)
    assert not (set(LAYER_CHECKS) | set(EXEMPT_LAYERS)) - set(layers), "checks for layers that do not exist"
    assert all(len(reason) > 20 for reason in EXEMPT_LAYERS.values())


def test_every_registered_model_is_certified_or_its_task_kinds_exempt():
    certified = {entry.name.split(":")[1].split(" ")[0] for entry in model_entries()}
    for entry in MODELS.values():
        assert entry.name in certified or set(entry.tasks) <= set(EXEMPT_TASKS), entry.name
    assert set(MODEL_TASKS) | set(EXEMPT_TASKS) <= set(TASKS)
