"""Hierarchical models: shapes, declared auxiliary losses that reach the assignment weights, invariance."""

import contextlib
from pathlib import Path

import pytest
import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import global_mean_pool

from gdl_graphs.bench.config import RunConfig
from gdl_graphs.bench.tasks import make_task
from gdl_graphs.bench.training import train_run
from gdl_graphs.bench.verify import model_entries, verify
from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.models import build_model, compatible, get_model, list_models
from gdl_graphs.models.hierarchical import DiffPoolNet, MinCutPoolNet, ScorePoolNet, clusters_per_level
from gdl_graphs.nn import TopKPooling
from tests.conftest import random_batch

pytestmark = pytest.mark.usefixtures("one_thread")

HIERARCHICAL = [entry.name for entry in list_models("hierarchical")]

MODELS = {"sagpool": lambda: ScorePoolNet(5, 3, 16),
          "topkpool": lambda: ScorePoolNet(5, 3, 16, pool=TopKPooling, ratio=0.8),
          "diffpool": lambda: DiffPoolNet(5, 3, [4, 2], 16),
          "mincut": lambda: MinCutPoolNet(5, 3, [4, 2], 16)}


@pytest.mark.parametrize("name", MODELS)
def test_hierarchical_model_trains_with_its_auxiliary_losses(name):
    model = MODELS[name]()
    data = random_batch((4, 9, 13), channels=5)
    out = model(data)
    assert out.shape == (3, 3)
    declared = get_model(name).aux_losses
    if not declared:
        assert not hasattr(model, "auxiliary_loss")
        return
    aux = model.auxiliary_loss()
    assert tuple(aux) == declared  # the registry entry declares exactly the losses the model returns
    assert all(value.dim() == 0 and bool(value != 0) for value in aux.values())
    sum(aux.values()).backward()  # the auxiliary objectives alone train the assignment of every level
    assignment = [p for pool in model.pools for p in pool.assign.parameters()]
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in assignment)


def test_auxiliary_loss_follows_the_last_forward_pass():
    model = MinCutPoolNet(5, 2, [3], 8)
    with pytest.raises(RuntimeError, match="after a forward pass"):
        model.auxiliary_loss()
    model(random_batch((6, 7), channels=5, seed=1))
    first = {k: v.detach().clone() for k, v in model.auxiliary_loss().items()}
    model(random_batch((10, 4), channels=5, seed=2))
    assert not torch.equal(first["mincut"], model.auxiliary_loss()["mincut"].detach())


def test_hierarchical_models_are_certified_invariant():
    rows = verify([entry for entry in model_entries() if entry.name.split()[0][len("model:"):] in HIERARCHICAL])
    assert [row[0] for row in rows] == [f"model:{name} (property)" for name in HIERARCHICAL]
    assert all(status == "ok" and group == "S_n-invariant" for _, group, _, status in rows), rows


def test_cluster_counts_and_errors():
    assert clusters_per_level(150, 0.25, 2) == [38, 10]
    assert clusters_per_level(3, 0.1, 3) == [1, 1, 1]
    with pytest.raises(ValueError, match="num_clusters"):
        DiffPoolNet(5, 2, [])
    with pytest.raises(ValueError, match="num_clusters"):
        MinCutPoolNet(5, 2, [0])
    with pytest.raises(ValueError, match="pool must be"):
        ScorePoolNet(5, 2, pool=nn.Identity)


# ----------------------------------------------------------------------------------------------------------------
# In the harness
# ----------------------------------------------------------------------------------------------------------------
def _toy_benchmark():
    """Two classes of random graphs: rings (label 0) and stars (label 1), 5 constant-plus-noise features."""
    generator = torch.Generator().manual_seed(0)
    graphs = []
    for i in range(24):
        n = 6 + i % 5
        nodes = torch.arange(n)
        if i % 2 == 0:
            edges = torch.stack([nodes, (nodes + 1) % n])
        else:
            edges = torch.stack([torch.zeros(n - 1, dtype=torch.long), nodes[1:]])
        graphs.append(Data(x=torch.randn(n, 5, generator=generator), edge_index=torch.cat([edges, edges.flip(0)], 1),
                           y=torch.tensor([i % 2])))
    return Benchmark("toy", "graph_classification", "accuracy", graphs[:16], graphs[16:20], graphs[20:], 5, 2)


@pytest.mark.parametrize("name", HIERARCHICAL)
def test_the_harness_builds_and_trains_every_hierarchical_model(name):
    bench = _toy_benchmark()
    assert compatible(name, "graph_classification") and not compatible(name, "node_classification")
    result = train_run(RunConfig("toy", name, epochs=2, batch_size=8, hidden_channels=16), bench, progress=False)
    assert result.epochs_run == 2 and 0.0 <= result.test <= 1.0 and result.params > 0
    assert type(build_model(name, bench, budget="20k")).__name__ == type(result.model_object).__name__


@pytest.mark.parametrize("name", ["diffpool", "mincut"])
def test_the_task_adds_the_declared_auxiliary_losses_of_a_registered_model(name):
    bench = _toy_benchmark()
    losses = []
    for entry in (get_model(name), None):  # the same run, with and without the entry's declarations
        torch.manual_seed(0)
        model = build_model(name, bench, hidden_channels=8)
        task = make_task(bench, batch_size=8, device=torch.device("cpu"), seed=0, entry=entry)
        losses.append(task.train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0), None,
                                       contextlib.nullcontext))
    assert losses[0] != pytest.approx(losses[1], abs=1e-6)


def test_the_pooling_suite_parses():
    import yaml

    from gdl_graphs.bench.suite import parse_suite

    meta, runs = parse_suite(yaml.safe_load((Path(__file__).parent.parent / "benchmarks" / "reproduce" / "pooling.yaml").read_text()))
    assert meta["name"] == "reproduce_pooling"
    assert {run.model.split("@")[0] for run in runs} == set(HIERARCHICAL)
