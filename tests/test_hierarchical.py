"""Hierarchical models: shapes, declared auxiliary losses that reach the assignment weights, invariance."""

import pytest
import torch
from torch import nn

from gdl_graphs.bench.verify import hierarchical_entries, verify
from gdl_graphs.models.hierarchical import (DiffPoolNet, MinCutPoolNet, ScorePoolNet, auxiliary_loss,
                                            clusters_per_level)
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
