"""The data root does not depend on the working directory: the README's two commands, a notebook, a worker or a
subprocess started anywhere find the same staged files; loading our processed files is warning-free."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from gdl_graphs.data import DATA_ENV, data_root, default_root, export_data_root, load_benchmark
from gdl_graphs.data.build_lock import building
from gdl_graphs.data.root import CHECKOUT_ROOT
from tests.fixtures.staged import require_staged

REPO = Path(__file__).resolve().parent.parent
MUTAG_RAW = "MUTAG/raw/MUTAG_A.txt"


def _env_without_data_root() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != DATA_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def test_default_root_is_the_checkouts_datasets_folder_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_root() == CHECKOUT_ROOT == REPO / "datasets"
    assert data_root() == CHECKOUT_ROOT
    monkeypatch.chdir(REPO / "notebooks")
    assert data_root() == CHECKOUT_ROOT


def test_order_is_argument_then_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert data_root() == (tmp_path / "env").resolve()
    monkeypatch.setenv(DATA_ENV, "")
    assert data_root() == default_root()


def test_installed_package_defaults_to_the_user_data_folder(tmp_path, monkeypatch):
    """Outside a checkout (no datasets/README.md beside the package) the root is $XDG_DATA_HOME/gdl_graphs."""
    monkeypatch.setattr("gdl_graphs.data.root.CHECKOUT_ROOT", tmp_path / "site-packages" / "datasets")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert default_root() == tmp_path / "share" / "gdl_graphs"


def test_export_hands_the_resolved_root_to_subprocesses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, "relative/root")
    resolved = export_data_root()
    assert resolved == (tmp_path / "relative/root").resolve() and os.environ[DATA_ENV] == str(resolved)
    printed = subprocess.run([sys.executable, "-c", "from gdl_graphs.data import data_root; print(data_root())"],
                             cwd=REPO / "notebooks", env={**_env_without_data_root(), DATA_ENV: os.environ[DATA_ENV]},
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == str(resolved)


@pytest.mark.data
def test_readme_commands_code_paths_from_another_directory(tmp_path):
    """`gdl-bench run` (the main job) and a loader (what the tests and notebooks call) started outside the checkout,
    with no $GDL_DATA, read the checkout's staged files and write nothing into the working directory."""
    require_staged(CHECKOUT_ROOT, MUTAG_RAW, "MoleculeNet/esol/raw/delaney-processed.csv")
    env = _env_without_data_root()
    loaded = subprocess.run(
        [sys.executable, "-c", "from gdl_graphs.data import load_benchmark; b = load_benchmark('ESOL'); "
                               "print(len(b.train) + len(b.val) + len(b.test))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().splitlines()[-1] == "1128"
    suite = tmp_path / "tiny.yaml"
    suite.write_text("name: tiny\ndefaults: {epochs: 1, budget: 5k, batch_size: 64}\n"
                     "experiments:\n  - {dataset: MUTAG, models: [gin], folds: [0]}\n")
    result = subprocess.run([sys.executable, "-m", "gdl_graphs.bench.cli", "run", str(suite), "--db",
                             str(tmp_path / "tiny.sqlite"), "--no-progress"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "MUTAG" in result.stdout and "gin" in result.stdout
    assert not (tmp_path / "datasets").exists()


@pytest.mark.data
@pytest.mark.parametrize("name, raw", [("MUTAG", MUTAG_RAW), ("Cora", "Cora/raw/ind.cora.x")])
def test_loading_processed_files_emits_no_weights_only_warning(staged_root, name, raw):
    require_staged(staged_root, raw)
    load_benchmark(name)  # processes on first use
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_benchmark(name)  # loads the processed file
    messages = [str(w.message) for w in caught if "weights only" in str(w.message).lower()]
    assert not messages, messages


def test_loading_ogb_files_keeps_pyg_classes_allowlisted(tmp_path):
    """Regression: a ``safe_globals`` context around OGB's loader removed PyG's own allowlisted classes on exit, so
    every later load of a processed PyG dataset warned "Weights only load failed"."""
    import torch
    from torch_geometric.data import Data

    from gdl_graphs.data.molecules import _ogb_dataset

    seen = _ogb_dataset(lambda name, root: Data in torch.serialization.get_safe_globals(), tmp_path)
    assert seen and Data in torch.serialization.get_safe_globals()


def test_build_lock_makes_another_process_wait(tmp_path):
    # a second process loading into the same root waits until the first one has finished (see build_lock.py)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom gdl_graphs.data.build_lock import building\n"
                               "with building(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(2)\n"
                               "print('released', flush=True)", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with building(tmp_path):
        waited = time.monotonic() - started
        assert holder.stdout.readline().strip() == "released"  # it let go before this process got in
    assert holder.wait(timeout=60) == 0 and waited > 0.5
    with building(tmp_path), building(tmp_path):  # re-entrant within one process (a load inside a load)
        pass
