"""The traffic suite (benchmarks/traffic.yaml) parses, and one tiny harness run on the real Montevideo bus data
stores test MAE at horizons 3 / 6 / 12; plus the harness fitting a calendar historical average before evaluating it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gdl_graphs.bench.config import RunConfig
from gdl_graphs.bench.suite import load_suite, parse_suite
from gdl_graphs.bench.runner import run_all
from gdl_graphs.bench.store import ResultStore
from gdl_graphs.bench.training import train_run
from gdl_graphs.data.traffic import forecasting_benchmark
from tests.fixtures.staged import require_staged

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "traffic.yaml"
MONTEVIDEO = "traffic/MontevideoBus/montevideo_bus.json"


@pytest.mark.data
def test_traffic_suite_parses_with_and_without_the_user_data_block():
    header, runs = load_suite(SUITE)
    assert header["name"] == "traffic"
    assert {run.dataset for run in runs} == {"MontevideoBus"}
    assert {run.model for run in runs} == {"dcrnn", "stgcn", "graph_wavenet", "historical_average", "last_value"}
    assert all(run.dataset_options == {"input_len": 12, "horizon": 12} for run in runs)
    # the commented-out experiments for user-supplied data are valid once uncommented
    text = SUITE.read_text()
    block = text.split("# >>> user data")[1].split("# <<< user data")[0].split("\n", 1)[1]
    suite = yaml.safe_load(text)
    suite["experiments"] += yaml.safe_load("\n".join(line[1:] for line in block.splitlines()))
    _, all_runs = parse_suite(suite)
    assert {run.dataset for run in all_runs} == {"MontevideoBus", "METR-LA", "PEMS-BAY", "PEMS04", "PEMS08"}


@pytest.mark.data
def test_tiny_montevideo_run_stores_mae_at_horizons(staged_root, tmp_path):
    root = require_staged(staged_root, MONTEVIDEO)
    config = RunConfig(dataset="MontevideoBus", model="graph_wavenet", epochs=1, batch_size=16, train_limit=32,
                       dataset_options={"input_len": 12, "horizon": 12},
                       model_options={"residual_channels": 4, "dilation_channels": 4, "skip_channels": 8,
                                      "end_channels": 8, "blocks": 2})
    store = ResultStore(tmp_path / "traffic.sqlite")
    try:
        run_all([config], store, suite="tiny", root=root, progress=False, log=lambda message: None)
        (row,) = store.rows()
    finally:
        store.close()
    assert row["metric"] == "mse" and row["epochs_run"] == 1 and math.isfinite(row["test"])
    test = row["metrics"]["test"]
    assert test["mse"] == pytest.approx(row["test"])
    for h in (3, 6, 12):
        assert math.isfinite(test[f"mae@{h}"]) and test[f"mae@{h}"] > 0


def test_harness_fits_a_calendar_historical_average():
    steps_per_day, days, nodes = 8, 12, 3
    t = np.arange(steps_per_day * days)
    profile = 10 + np.arange(steps_per_day, dtype=float)  # the value of slot s is 10 + s at every node
    series = np.repeat(profile[t % steps_per_day][:, None], nodes, axis=1)
    series[5, 1] = 0.0  # a missing reading (null value 0) must not enter the fitted table
    tod = np.broadcast_to(((t % steps_per_day) / steps_per_day)[:, None, None], (len(t), nodes, 1))
    bench = forecasting_benchmark("toy", series, torch.tensor([[0, 1, 2], [1, 2, 0]]), torch.ones(3),
                                  extra_features=tod, input_len=4, horizon=3)
    result = train_run(RunConfig("toy", "historical_average", model_options={"steps_per_day": steps_per_day}),
                       bench, progress=False)
    assert result.params == 0 and result.model_object.fitted
    assert result.metrics["test"]["mae"] == pytest.approx(0.0, abs=1e-4)
