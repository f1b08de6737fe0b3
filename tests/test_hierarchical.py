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
from gdl_graphs.bench.verify import hierarchical_entries, verify
from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.models import build_model, compatible
from gdl_graphs.models.hierarchical import (HIERARCHICAL_MODELS, DiffPoolNet, MinCutPoolNet, ScorePoolNet,
                                            auxiliary_loss, clusters_per_level)
from gdl_graphs.nn import TopKPooling
from tests.conftest import random_batch

pytestmark = pytest.mark.usefixtures("one_thread")

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
    aux = auxiliary_loss(model)
    if not model.auxiliary_losses:
        assert aux == 0.0
        return
    assert isinstance(aux, torch.Tensor) and aux.dim() == 0 and bool(aux != 0)
    aux.backward()  # the auxiliary objective alone trains the assignment of every level
    assignment = [p for pool in model.pools for p in pool.assign.parameters()]
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in assignment)
    assert auxiliary_loss(_Wrapped(model)) is model.auxiliary_loss


class _Wrapped(nn.Module):
    """Stands in for DistributedDataParallel: the model is under ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def test_auxiliary_loss_follows_the_last_forward_pass():
    model = MinCutPoolNet(5, 2, [3], 8)
    model(random_batch((6, 7), channels=5, seed=1))
    first = model.auxiliary_loss.detach().clone()
    model(random_batch((10, 4), channels=5, seed=2))
    assert not torch.equal(first, model.auxiliary_loss.detach())


def test_hierarchical_models_are_certified_invariant():
    rows = verify(hierarchical_entries())
    assert [row[0] for row in rows] == ["model:sagpool", "model:topkpool", "model:diffpool", "model:mincut"]
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


@pytest.mark.parametrize("name", list(HIERARCHICAL_MODELS))
def test_the_harness_builds_and_trains_every_hierarchical_model(name):
    bench = _toy_benchmark()
    assert compatible(name, "graph_classification") and not compatible(name, "node_classification")
    result = train_run(RunConfig("toy", name, epochs=2, batch_size=8, hidden_channels=16), bench, progress=False)
    assert result.epochs_run == 2 and 0.0 <= result.test <= 1.0 and result.params > 0
    assert type(build_model(name, bench, budget="20k")).__name__ == type(result.model_object).__name__


class ConstantAuxiliary(nn.Module):
    """A graph classifier that declares an auxiliary loss of exactly 100."""

    auxiliary_losses = ("constant",)

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(5, 2)

    def forward(self, data):
        self.auxiliary_loss = torch.tensor(100.0)
        return global_mean_pool(self.linear(data.x), data.batch)


def test_the_training_loop_adds_declared_auxiliary_losses():
    task = make_task(_toy_benchmark(), batch_size=8, device=torch.device("cpu"), seed=0)
    model = ConstantAuxiliary()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with_aux = task.train_epoch(model, optimizer, None, contextlib.nullcontext)
    ConstantAuxiliary.auxiliary_losses = ()  # the same model without the declaration
    try:
        without = task.train_epoch(model, optimizer, None, contextlib.nullcontext)
    finally:
        ConstantAuxiliary.auxiliary_losses = ("constant",)
    assert with_aux == pytest.approx(without + 100.0, abs=1e-4)


def test_the_pooling_suite_parses():
    import yaml

    from gdl_graphs.bench.config import parse_suite

    meta, runs = parse_suite(yaml.safe_load((Path(__file__).parent.parent / "benchmarks" / "pooling.yaml").read_text()))
    assert meta["name"] == "pooling"
    assert {run.model for run in runs} == set(HIERARCHICAL_MODELS)
