"""Neighbour-sampled mini-batch node classification in the harness (a suite's ``sampler:`` setting)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from torch_geometric.data import Data

from gdl_graphs.bench.config import ConfigError, RunConfig
from gdl_graphs.bench.suite import parse_suite
from gdl_graphs.bench.minibatch import SamplerSettings
from gdl_graphs.bench.training import train_run
from gdl_graphs.data.benchmark import Benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


def toy_node_benchmark(num_nodes=120, seed=0) -> Benchmark:
    """Two classes a GNN can separate: labels follow a feature shared along edges within each class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (num_nodes,), generator=g)
    src = torch.randint(0, num_nodes, (8 * num_nodes,), generator=g)
    dst = torch.randint(0, num_nodes, (8 * num_nodes,), generator=g)
    keep = y[src] == y[dst]
    x = torch.randn(num_nodes, 4, generator=g) + y.unsqueeze(1).float() * 0.5
    order = torch.randperm(num_nodes, generator=g)
    masks = {name: torch.zeros(num_nodes, dtype=torch.bool) for name in ("train_mask", "val_mask", "test_mask")}
    masks["train_mask"][order[:60]] = True
    masks["val_mask"][order[60:90]] = True
    masks["test_mask"][order[90:]] = True
    data = Data(x=x, y=y, edge_index=torch.stack([src[keep], dst[keep]]), **masks)
    return Benchmark("toy", "node_classification", "accuracy", data, data, data, num_features=4, num_targets=2)


def config(**kwargs) -> RunConfig:
    settings = dict(dataset="toy", model="sage", epochs=6, lr=0.01, budget=None, hidden_channels=16, patience=50,
                    device="cpu", model_options={"num_layers": 2, "norm": None, "dropout": 0.0})
    return RunConfig(**(settings | kwargs))


def test_full_neighbourhoods_in_one_batch_train_exactly_like_full_batch():
    """[-1, -1] around all training seeds in one batch: a 2-layer GraphSAGE sees what it sees full batch, so the
    whole training curve matches."""
    bench = toy_node_benchmark()
    full = train_run(config(), bench, progress=False)
    sampled = train_run(config(sampler={"num_neighbors": [-1, -1], "batch_size": 60}), bench, progress=False)
    for a, b in zip(full.curve, sampled.curve, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["val"] == b["val"] and a["test"] == b["test"]


def test_sampled_minibatches_learn_and_are_deterministic():
    bench = toy_node_benchmark()
    run = config(epochs=15, sampler={"num_neighbors": [3, 2], "batch_size": 16})
    first, again = train_run(run, bench, progress=False), train_run(run, bench, progress=False)
    assert first.curve == again.curve
    assert first.curve[-1]["loss"] < first.curve[0]["loss"]
    assert first.val > 0.6                                    # two classes: chance is 0.5


def test_sampled_evaluation_is_exact_with_full_neighbourhoods_and_an_estimate_otherwise():
    bench = toy_node_benchmark()
    exact = train_run(config(sampler={"num_neighbors": [-1, -1], "batch_size": 16}), bench, progress=False)
    sampled_eval = train_run(config(sampler={"num_neighbors": [-1, -1], "batch_size": 16, "eval": "sampled"}),
                             bench, progress=False)
    assert [c["val"] for c in exact.curve] == [c["val"] for c in sampled_eval.curve]
    estimate = train_run(config(sampler={"num_neighbors": [1, 1], "batch_size": 16, "eval": "sampled"}), bench,
                         progress=False)
    assert 0.0 <= estimate.val <= 1.0 and len(estimate.curve) == 6


def test_runs_without_a_sampler_keep_their_identity():
    """Adding the setting must not change the hash of runs stored before it existed."""
    run = config()
    settings = dataclasses.asdict(run)
    settings.pop("device")
    for later in ("sampler", "lr_schedule", "lr_step_size", "weight_decay_scope", "select_by"):  # added later
        settings.pop(later)
    before = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert run.key == before
    assert config(sampler={"num_neighbors": [2], "batch_size": 8}).key != before


def suite(sampler, dataset="Cora"):
    return {"experiments": [{"dataset": dataset, "models": ["sage"], "sampler": sampler}]}


def test_suite_sampler_is_validated_by_key():
    _, runs = parse_suite(suite({"num_neighbors": [15, 10], "batch_size": 512}))
    assert runs[0].sampler == {"num_neighbors": [15, 10], "batch_size": 512}
    assert SamplerSettings.parse(runs[0].sampler) == SamplerSettings((15, 10), 512, "full")
    _, runs = parse_suite({"defaults": {"sampler": {"num_neighbors": [5], "batch_size": 4, "eval": "sampled"}},
                           "experiments": [{"dataset": "Cora", "models": ["gcn"]}]})
    assert runs[0].sampler["eval"] == "sampled"
    bad = [({"num_neighbors": [15, 10]}, "sampler.batch_size: missing"),
           ({"num_neighbors": [], "batch_size": 4}, "sampler.num_neighbors"),
           ({"num_neighbors": [0], "batch_size": 4}, "sampler.num_neighbors"),
           ({"num_neighbors": [5], "batch_size": 0}, "sampler.batch_size"),
           ({"num_neighbors": [5], "batch_size": 4, "eval": "layerwise"}, "sampler.eval"),
           ({"num_neighbors": [5], "batch_size": 4, "fanout": 3}, "sampler.fanout: unknown key"),
           ([15, 10], "sampler: expected")]
    for value, message in bad:
        with pytest.raises(ConfigError, match=f"experiments\\[0\\]\\.{message}"):
            parse_suite(suite(value))
    with pytest.raises(ConfigError, match=r"experiments\[0\]\.sampler: .*node tasks"):
        parse_suite(suite({"num_neighbors": [5], "batch_size": 4}, dataset="MUTAG"))
