"""The benchmark harness: suite validation, model budgets, task metrics, CLI end to end, resume after SIGKILL, DDP."""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gdl_graphs.bench.cli import main
from gdl_graphs.bench.config import ConfigError, RunConfig, shard
from gdl_graphs.bench.report import table_rows
from gdl_graphs.bench.suite import parse_suite
from gdl_graphs.bench.store import ResultStore
from gdl_graphs.bench.tasks import GraphMultilabel, average_precision, make_task, roc_auc
from gdl_graphs.bench.training import train_run
from gdl_graphs.data import load_benchmark
from gdl_graphs.data.traffic import forecasting_benchmark
from gdl_graphs.models import build_model, count_parameters
from tests.fixtures.staged import require_staged

BIN = Path(sys.executable).parent


# ----------------------------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("suite, key", [
    ({"experiments": [{"dataset": "KarateClub", "models": ["gcn"]}], "epochz": 3}, "epochz"),
    ({"experiments": [{"dataset": "KarateClub", "models": ["gcn"], "lr_rate": 1}]}, "experiments[0].lr_rate"),
    ({"experiments": [{"dataset": "KarateClub", "models": ["gcnn"]}]}, "experiments[0].models"),
    ({"experiments": [{"dataset": "NoSuchSet", "models": ["gcn"]}]}, "experiments[0].dataset"),
    ({"defaults": {"epochs": "ten"}, "experiments": [{"dataset": "KarateClub", "models": ["gcn"]}]},
     "defaults.epochs"),
    ({"experiments": [{"dataset": "KarateClub", "models": ["dcrnn"]}]}, "experiments[0].models"),
    ({"experiments": [{"dataset": "KarateClub", "models": ["gcn"], "seeds": ["a"]}]}, "experiments[0].seeds"),
    ({"experiments": []}, "experiments"),
])
def test_bad_suites_name_the_key(suite, key):
    with pytest.raises(ConfigError, match="^" + re.escape(key)):
        parse_suite(suite)


def test_suite_expands_models_seeds_folds_and_overrides():
    suite = {"defaults": {"epochs": 7, "budget": "50k"},
             "experiments": [{"dataset": "karateclub", "models": ["gcn", "gin"], "seeds": [0, 1],
                              "model_options": {"gin": {"virtual_node": True}}}]}
    _, runs = parse_suite(suite, overrides={"epochs": 2})
    assert len(runs) == 4 and {r.dataset for r in runs} == {"KarateClub"}
    assert all(r.epochs == 2 and r.budget == "50k" for r in runs)
    assert [r.model_options for r in runs if r.model == "gin"][0] == {"virtual_node": True}
    assert len({r.key for r in runs}) == 4
    assert RunConfig("KarateClub", "gcn").key == RunConfig("KarateClub", "gcn", device="cpu").key
    assert [r.key for r in shard(runs, "1/2")] + [r.key for r in shard(runs, "2/2")] != []
    assert sorted(r.key for s in ("1/2", "2/2") for r in shard(runs, s)) == sorted(r.key for r in runs)
    with pytest.raises(ConfigError, match="--shard"):
        shard(runs, "3/2")


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    suite = tmp_path / "bad.yaml"
    suite.write_text("experiments:\n  - dataset: KarateClub\n    models: [gcn]\n    epochs: -1\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", str(suite), "--db", str(tmp_path / "r.sqlite")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "experiments[0].epochs" in err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--dataset", "KarateClub", "--models", "nope", "--db", str(tmp_path / "r.sqlite")])
    assert exc.value.code == 2 and "unknown model 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", str(tmp_path / "missing.yaml")])
    assert exc.value.code == 2 and "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- models


def test_budget_sets_the_width():
    bench = load_benchmark("KarateClub")
    small, large = build_model("gin", bench, budget="30k"), build_model("gin", bench, budget="200k")
    assert count_parameters(small) <= 30_000 < count_parameters(large) <= 200_000
    assert small.hidden_channels < large.hidden_channels
    wider = build_model("gin", bench, hidden_channels=small.hidden_channels + 8)
    assert count_parameters(wider) > 30_000  # the chosen width is the largest that fits
    with pytest.raises(ValueError, match="cannot be trained"):
        build_model("dcrnn", bench)


# ------------------------------------------------------------------------------------------------ task metrics


def test_roc_auc_ignores_nan_labels_and_single_class_tasks():
    y = np.array([[1, 0, np.nan], [0, 0, 1], [1, 0, 0], [0, 0, np.nan]], dtype=float)
    score = np.array([[0.9, 0.1, 0.3], [0.2, 0.5, 0.8], [0.6, 0.2, 0.1], [0.4, 0.3, 0.0]])
    assert roc_auc(y, score) == pytest.approx((1.0 + 1.0) / 2)  # task 1 has one class only
    with pytest.raises(ValueError, match="undefined"):
        roc_auc(np.zeros((3, 1)), np.zeros((3, 1)))


def test_multilabel_task_reports_the_benchmarks_metric():
    """Peptides-func is scored by AP, molhiv by ROC-AUC: the task reads the metric from the benchmark."""
    from types import SimpleNamespace

    from sklearn.metrics import average_precision_score

    y = torch.tensor([[1, 0], [0, 1], [1, 1], [0, float("nan")]])
    out = torch.tensor([[0.9, 0.2], [0.3, 0.7], [0.4, 0.1], [0.5, 0.0]])
    expected = np.mean([average_precision_score([1, 0, 1, 0], [0.9, 0.3, 0.4, 0.5]),
                        average_precision_score([0, 1, 1], [0.2, 0.7, 0.1])])
    assert average_precision(y.numpy(), out.numpy()) == pytest.approx(expected)
    for metric, value in [("ap", expected), ("rocauc", roc_auc(y.numpy(), out.numpy()))]:
        task = SimpleNamespace(benchmark=SimpleNamespace(evaluator=None, metric=metric))
        assert GraphMultilabel.metrics(task, out, y) == {metric: pytest.approx(value)}
    with pytest.raises(ValueError, match="metric 'rmse'"):
        GraphMultilabel.metrics(SimpleNamespace(benchmark=SimpleNamespace(evaluator=None, metric="rmse")), out, y)


class _Constant(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, data):
        return torch.full((data.num_graphs, 1), self.value)


def test_regression_metrics_are_in_the_targets_units():
    from torch_geometric.data import Data

    graphs = [Data(x=torch.ones(2, 1), edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([[float(v)]]))
              for v in (1.0, 3.0, 5.0)]
    from gdl_graphs.data.benchmark import Benchmark

    bench = Benchmark("toy", "graph_regression", "rmse", graphs, graphs, graphs, 1, 1)
    task = make_task(bench, batch_size=2, device=torch.device("cpu"), seed=0)
    # mean 3, std 2: a model predicting standardised 0.5 means 4.0 in target units
    metrics = task.evaluate(_Constant(0.5), "test")
    errors = np.array([3.0, 1.0, -1.0])
    assert metrics["mae"] == pytest.approx(np.abs(errors).mean())
    assert metrics["rmse"] == pytest.approx(np.sqrt((errors ** 2).mean()))


def _toy_forecast():
    rng = np.random.default_rng(0)
    series = rng.uniform(1, 10, size=(60, 4))
    series[10, 2] = 0.0  # a missing reading
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    return forecasting_benchmark("toy", series, edge_index, torch.ones(4), input_len=4, horizon=3), series


def test_forecast_metrics_by_hand_and_baseline_without_training():
    bench, series = _toy_forecast()
    result = train_run(RunConfig("toy", "last_value", epochs=5, batch_size=8), bench, progress=False)
    assert result.params == 0 and result.epochs_run == 0
    start = len(bench.train) + len(bench.val)
    errors = []
    for i in range(len(bench.test)):
        t = start + i
        last = series[t + 3]  # inputs t..t+3, targets t+4..t+6
        target = series[t + 4:t + 7]
        errors.append(np.where(target != 0, np.abs(target - last), np.nan))
    errors = np.stack(errors)
    assert result.test == pytest.approx(np.nanmean(errors), rel=1e-5)
    assert result.metrics["test"]["mae@3"] == pytest.approx(np.nanmean(errors[:, 2]), rel=1e-5)


def test_forecast_training_runs_for_graph_models():
    bench, _ = _toy_forecast()
    for model in ("graph_wavenet", "dcrnn"):
        result = train_run(RunConfig("toy", model, epochs=2, batch_size=8, model_options={}), bench,
                           progress=False)
        assert result.epochs_run == 2 and np.isfinite(result.test) and result.params > 0


# ---------------------------------------------------------------------------------------------- CLI end to end


def test_run_then_report_end_to_end(tmp_path, capsys):
    db = tmp_path / "results.sqlite"
    args = ["run", "--dataset", "KarateClub", "--models", "gcn,gat", "--seeds", "0,1", "--epochs", "3", "--lr",
            "0.01", "--db", str(db), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test metric at the best validation epoch" in out and "| KarateClub | gcn |" in out
    rows = ResultStore(db).rows()
    assert len(rows) == 4 and all(r["epochs_run"] == 3 and r["torch_version"] == torch.__version__ for r in rows)
    assert all(0.0 <= r["test"] <= 1.0 and len(r["curve"]) == 3 for r in rows)
    assert main(args) == 0  # everything finished: nothing is retrained
    assert "4 of 4 runs already finished" in capsys.readouterr().err
    plot, curves = tmp_path / "bars.png", tmp_path / "curves.png"
    assert main(["report", "--db", str(db), "--plot", str(plot), "--curves", str(curves)]) == 0
    report = capsys.readouterr().out
    assert "mean ± std" in report and "| KarateClub | gat |" in report
    assert plot.stat().st_size > 1000 and curves.stat().st_size > 1000
    assert main(["report", "--db", str(db), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("dataset,model,metric,test_mean") and len(lines) == 3


def test_list_commands(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("gcn", "gps", "egnn", "graph_wavenet"))
    assert main(["list", "datasets"]) == 0
    assert "molhiv" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- resume after a kill


def _rows(db: Path) -> list[tuple]:
    if not db.exists():
        return []
    try:
        return sqlite3.connect(db).execute("SELECT model, val, test, best_epoch, epochs_run, finished_at "
                                           "FROM runs WHERE state = 'done' ORDER BY model").fetchall()
    except sqlite3.OperationalError:
        return []


def test_sigkill_midway_loses_nothing_and_recomputes_nothing(tmp_path):
    command = [str(BIN / "gdl-bench"), "run", "--dataset", "KarateClub", "--models", "gcn,transformer",
               "--epochs", "150", "--lr", "0.01", "--no-progress"]
    killed_db, clean_db = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"
    process = subprocess.Popen(command + ["--db", str(killed_db)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once the first run is stored and the second has a checkpoint
        if len(_rows(killed_db)) == 1 and glob.glob(f"{killed_db}.ckpt/*.pt"):
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    first = _rows(killed_db)
    assert len(first) == 1
    rerun = subprocess.run(command + ["--db", str(killed_db)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "1 of 2 runs already finished" in rerun.stderr and "resuming from checkpoint" in rerun.stderr
    after = _rows(killed_db)
    assert len(after) == 2 and first[0] in after  # the finished run is untouched (same finished_at)
    assert not glob.glob(f"{killed_db}.ckpt/*.pt")
    subprocess.run(command + ["--db", str(clean_db)], check=True, capture_output=True)
    # the resumed run reproduces an uninterrupted one exactly (model, optimizer, scheduler, RNG restored)
    assert [r[:5] for r in after] == [r[:5] for r in _rows(clean_db)]


# --------------------------------------------------------------------------------------------------------- DDP


def _fresh_mutag_root(staged_root: Path, tmp_path: Path) -> Path:
    """A data root holding MUTAG's raw files and no processed cache (what a fresh checkout has)."""
    require_staged(staged_root, "MUTAG/raw")
    root = tmp_path / "data"
    shutil.copytree(staged_root / "MUTAG" / "raw", root / "MUTAG" / "raw")
    return root


def _torchrun(args: list[str], timeout: float, script: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTEST_CURRENT_TEST", None)  # PyG prints its "Processing..." only outside pytest
    command = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
               *(script or ["-m", "gdl_graphs.bench.cli"]), *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"torchrun hung for {timeout} s; its stderr:\n{(hung.stderr or b'').decode()[-3000:]}")


@pytest.mark.data
def test_ddp_with_two_cpu_processes(staged_root, tmp_path):
    # both ranks load MUTAG into a root with no processed cache yet: the first builds it, the second waits and reads
    # it (without the data root's build lock, rank 1 read a half-written data.pt, failed, and rank 0 hung)
    root = _fresh_mutag_root(staged_root, tmp_path)
    db = tmp_path / "ddp.sqlite"
    result = _torchrun(["run", "--dataset", "MUTAG", "--models", "gin", "--epochs", "2", "--batch-size", "16",
                        "--device", "cpu", "--db", str(db), "--data-root", str(root), "--no-progress"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("Processing...") == 1, result.stderr[-3000:]  # one rank built the cache
    rows = ResultStore(db).rows()
    assert len(rows) == 1 and rows[0]["epochs_run"] == 2 and rows[0]["device"] == "cpu"
    assert result.stdout.count("| MUTAG | gin |") == 1  # only rank 0 reports


@pytest.mark.data
def test_ddp_run_failing_on_one_rank_stops_the_job(staged_root, tmp_path):
    # rank 1 fails while rank 0 waits for it in a collective: the job must end (non-zero), not hang
    require_staged(staged_root, "MUTAG/raw")
    db = tmp_path / "ddp.sqlite"
    result = _torchrun(["run", "--dataset", "MUTAG", "--models", "gin", "--epochs", "2", "--batch-size", "16",
                        "--device", "cpu", "--db", str(db), "--no-progress"], timeout=240,
                       script=[str(Path(__file__).parent / "fixtures" / "ddp_rank_fails.py")])
    assert result.returncode != 0
    assert "injected failure on rank 1" in result.stderr, result.stderr[-3000:]
    assert ResultStore(db).rows() == []  # nothing stored as done; the run is left to the next `gdl-bench run`


def test_cpu_runs_record_their_thread_count(tmp_path):
    # results depend on torch's intra-op threads (float reduction order), so each stored CPU run says how many it had
    db = tmp_path / "r.sqlite"
    before = torch.get_num_threads()
    try:
        assert main(["run", "--dataset", "KarateClub", "--models", "gcn", "--epochs", "1", "--threads", "1",
                     "--db", str(db), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(before)
    [row] = ResultStore(db).rows()
    assert row["device"] == "cpu" and row["threads"] == 1


def test_only_selects_part_of_a_suite(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text("defaults: {epochs: 1}\nexperiments:\n  - dataset: KarateClub\n    models: [gcn, gin, sage]\n")
    db = tmp_path / "r.sqlite"
    assert main(["run", str(suite), "--only", "karateclub/gin,sage", "--db", str(db), "--no-progress"]) == 0
    assert sorted(r["model"] for r in ResultStore(db).rows()) == ["gin", "sage"]
    with pytest.raises(SystemExit) as exc:
        main(["run", str(suite), "--only", "MUTAG", "--db", str(db)])
    assert exc.value.code == 2 and "--only" in capsys.readouterr().err


def test_seeds_pick_among_a_suites_runs(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text("defaults: {epochs: 1}\nexperiments:\n  - dataset: KarateClub\n    models: [gcn]\n"
                     "    seeds: [0, 1, 2]\n")
    db = tmp_path / "r.sqlite"
    assert main(["run", str(suite), "--seeds", "2,0", "--db", str(db), "--no-progress"]) == 0
    assert sorted(r["seed"] for r in ResultStore(db).rows()) == [0, 2]
    with pytest.raises(SystemExit) as exc:
        main(["run", str(suite), "--seeds", "5", "--db", str(db)])
    assert exc.value.code == 2 and "--seeds/--folds: no run of the suite" in capsys.readouterr().err


def test_one_run_is_printed_without_a_spread():
    """A single run has no spread: the table prints its number alone, not "± 0.0000"."""
    summary = [{"dataset": "D", "model": "m", "metric": "rmse", "test_mean": 0.5, "test_std": 0.0, "val_mean": 0.4,
                "val_std": 0.0, "params": 10, "sec_per_epoch": 1.0, "runs": 1}]
    assert table_rows(summary)[0][3:5] == ("0.5000", "0.4000")
    summary[0].update(runs=2, test_std=0.1)
    assert table_rows(summary)[0][3:5] == ("0.5000 ± 0.1000", "0.4000 ± 0.0000")
