"""Registry and entry point, dataset cards (one per dataset, checksums in step with the code), the Benchmark
dataclass, and the `data list` / `data prepare` commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch

from gdl_graphs.data import REGISTRY, Benchmark, get_spec, list_benchmarks, load_benchmark
from gdl_graphs.data.checksums import KNOWN_SHA256, sha256_file
from gdl_graphs.data.cli import add_data_commands
from tests.fixtures.formats import ring_graphs, write_tu
from tests.fixtures.staged import require_staged

CARDS = Path(__file__).resolve().parent.parent / "datasets" / "cards"
ISSUE_NAMES = ["MUTAG", "IMDB-BINARY", "IMDB-MULTI", "REDDIT-BINARY", "COLLAB", "PROTEINS", "Cora", "CiteSeer",
               "PubMed", "ESOL", "Lipo", "BBBP", "HIV", "FreeSolv", "molhiv", "ZINC", "QM9", "METR-LA", "PEMS-BAY",
               "PEMS04", "PEMS08", "MontevideoBus", "Chickenpox", "PedalMe", "KarateClub", "NBody"]


def test_registry_names_are_case_insensitive_with_aliases():
    assert set(ISSUE_NAMES) <= set(REGISTRY)
    for name in ISSUE_NAMES:
        assert get_spec(name.lower()) is get_spec(name.upper()) is REGISTRY[name]
    assert get_spec("ogbg-molhiv").name == "molhiv" and get_spec("Lipophilicity").name == "Lipo"
    assert {s.family for s in list_benchmarks()} == {"molecules", "social", "traffic", "synthetic"}
    assert all(s.family == "traffic" for s in list_benchmarks("traffic"))
    with pytest.raises(KeyError, match="unknown dataset 'CIFAR10'"):
        get_spec("CIFAR10")
    assert "seed" in get_spec("MUTAG").options() and "name" not in get_spec("MUTAG").options()


def test_every_dataset_has_a_card_with_the_known_checksums():
    cards = {p.stem for p in CARDS.glob("*.md")}
    assert cards == {s.name for s in list_benchmarks()}
    listed = {}
    for spec in list_benchmarks():
        text = (CARDS / spec.card).read_text()
        for field in ("Task:", "Source:", "Licence:", "Citation:", "Split:"):
            assert f"- {field}" in text, (spec.card, field)
        assert f"Task: {spec.task}; metric: {spec.metric}" in text
        listed.update(re.findall(r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", text))
    assert listed == KNOWN_SHA256


@pytest.mark.data
def test_known_checksums_match_the_staged_files(staged_root):
    require_staged(staged_root, *KNOWN_SHA256)
    assert {rel: sha256_file(staged_root / rel) for rel in KNOWN_SHA256} == KNOWN_SHA256


def test_benchmark_validates_and_folds():
    with pytest.raises(ValueError, match="task 'segmentation'"):
        Benchmark("x", "segmentation", "accuracy", [], [], [], 1, 2)
    with pytest.raises(ValueError, match="metric 'f1'"):
        Benchmark("x", "graph_classification", "f1", [], [], [], 1, 2)
    with pytest.raises(ValueError, match="ForecastSpec"):
        Benchmark("x", "forecasting", "mae", [], [], [], 1, 1)
    single = Benchmark("x", "graph_regression", "mae", [1, 2], [3], [4], 1, 1)
    assert single.num_folds == 1 and single.fold(0) is single and single.split_sizes() == (2, 1, 1)
    with pytest.raises(IndexError, match="single official split"):
        single.fold(1)
    data = list(range(10))
    folds = [(torch.tensor([0, 1]), torch.tensor([2]), torch.tensor([3, 4]))]
    cv = Benchmark("x", "graph_classification", "accuracy", None, None, None, 1, 2, folds=folds,
                   dataset=torch.tensor(data))
    assert cv.fold(0).test.tolist() == [3, 4] and cv.fold(0).info["fold"] == 0


def test_nbody_through_the_registry(tmp_path):
    pytest.importorskip("gdl_graphs.data.synthetic")
    bench = load_benchmark("nbody", root=tmp_path, num_train=6, num_valid=3, num_test=3)
    assert bench.split_sizes() == (6, 3, 3) and (bench.task, bench.metric) == ("dynamics", "mse")
    assert bench.num_features == bench.train.num_node_features and bench.num_targets == 3


# ---------------------------------------------------------------------------------------------------------- CLI


def run_cli(*argv) -> int:
    parser = argparse.ArgumentParser(prog="gdl-bench")
    parser.add_argument("--data-root", default=None)
    add_data_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.handler(args)


def test_cli_prepare_from_a_mirror_and_list(tmp_path, capsys):
    mirror, root = tmp_path / "mirror", tmp_path / "root"
    write_tu(mirror, "REDDIT-BINARY", ring_graphs(30), [-1, 1] * 15)
    for path in mirror.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)  # a read-only share
    assert run_cli("data", "prepare", "reddit-binary", "--from", str(mirror), "--data-root", str(root)) == 0
    out = capsys.readouterr().out
    assert "copied 3 files" in out and "REDDIT-BINARY: graph_classification" in out and "train/val/test 24/3/3" in out
    assert (root / "REDDIT-BINARY/processed/data.pt").is_file()
    assert run_cli("--data-root", str(root), "data", "list", "--family", "social") == 0  # top-level --data-root kept
    out = capsys.readouterr().out
    assert re.search(r"REDDIT-BINARY +social +graph_classification +accuracy +present \(3 files, 0 verified\)", out)
    assert re.search(r"MUTAG .* absent", out) and re.search(r"KarateClub .* networkx", out)
    for path in mirror.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_cli_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert run_cli("data", "prepare", "METR-LA", "--data-root", str(tmp_path)) == 2
    assert "metr-la.h5 is missing" in capsys.readouterr().err
    assert run_cli("data", "prepare", "MUTAG", "--from", str(tmp_path / "nowhere"), "--data-root", str(tmp_path)) == 2
    assert "no such directory" in capsys.readouterr().err
    assert run_cli("data", "prepare", "nosuch", "--data-root", str(tmp_path)) == 2
    assert capsys.readouterr().err.startswith("error: unknown dataset 'nosuch'")


@pytest.mark.data
def test_cli_prepare_staged_mutag_verifies(staged_root, tmp_path, capsys):
    require_staged(staged_root, "MUTAG/raw/MUTAG_A.txt")
    assert run_cli("data", "prepare", "MUTAG", "--from", str(staged_root), "--data-root", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "copied 6 files" in out and "verified 6 files" in out and "train/val/test 152/17/19" in out
    (tmp_path / "MUTAG/raw/MUTAG_graph_labels.txt").write_text("1\n")
    assert run_cli("data", "list", "--data-root", str(tmp_path)) == 0
    assert re.search(r"MUTAG .* CHECKSUM MISMATCH: .*MUTAG_graph_labels.txt", capsys.readouterr().out)


def test_from_smiles_is_exported_lazily():
    import subprocess
    import sys

    from gdl_graphs.data import from_smiles
    from gdl_graphs.data.molecules import from_smiles as original

    assert from_smiles is original and from_smiles(["CCO"])[0].x.shape == (3, 9)
    code = "import sys, gdl_graphs.data; print('gdl_graphs.data.molecules' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
