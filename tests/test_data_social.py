"""TU datasets with the Errica et al. 10-fold protocol, Planetoid Cora, the karate club; staged data and fixtures
in the TU text format (REDDIT-BINARY, COLLAB), degree features, checksums."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
import torch

from gdl_graphs.data import ChecksumError, load_benchmark
from gdl_graphs.data.splits import stratified_folds
from tests.fixtures.formats import ring_graphs, write_tu
from tests.fixtures.staged import require_staged


def check_folds(folds, labels, num_graphs):
    """Errica et al.: test folds partition the data; train / val / test disjoint; stratified."""
    tests = torch.cat([f[2] for f in folds])
    assert tests.numel() == num_graphs and tests.unique().numel() == num_graphs
    overall = Counter(labels.tolist())
    for train, val, test in folds:
        assert train.numel() + val.numel() + test.numel() == num_graphs
        assert torch.cat([train, val, test]).unique().numel() == num_graphs
        assert abs(val.numel() - 0.1 * (train.numel() + val.numel())) <= 1
        for label, count in Counter(labels[test].tolist()).items():
            assert abs(count - overall[label] / len(folds)) <= 1  # stratified


def test_stratified_folds_are_deterministic_and_stratified():
    labels = torch.tensor([0] * 30 + [1] * 20 + [2] * 10)
    folds = stratified_folds(labels, num_folds=10, seed=3)
    check_folds(folds, labels, 60)
    again = stratified_folds(labels, num_folds=10, seed=3)
    assert all(torch.equal(a, b) for fa, fb in zip(folds, again) for a, b in zip(fa, fb))
    other = stratified_folds(labels, num_folds=10, seed=4)
    assert not all(torch.equal(fa[2], fb[2]) for fa, fb in zip(folds, other))


@pytest.mark.parametrize("name, mode", [("REDDIT-BINARY", "constant"), ("COLLAB", "onehot")])
def test_featureless_tu_fixture(tmp_path, name, mode):
    graphs = ring_graphs(40)
    labels = [-1, 1] * 20 if name == "REDDIT-BINARY" else [1, 2, 3, 1] * 10  # official label codes
    write_tu(tmp_path, name, graphs, labels)
    bench = load_benchmark(name.lower(), root=tmp_path)
    assert len(bench.dataset) == 40 and bench.num_targets == len(set(labels))
    assert bench.info["node_features"] == mode and bench.num_folds == 10
    x = bench.dataset[1].x  # ring + chord: degrees 2 and 3
    if mode == "constant":
        assert bench.num_features == 1 and torch.all(x == 1)
    else:
        assert bench.num_features == 4  # one-hot of degrees 0..3 (max degree 3)
        assert x.sum(1).eq(1).all() and x.argmax(1).tolist() == [3, 2, 3] + [2] * (graphs[1][0] - 3)
    check_folds(bench.folds, bench.dataset._data.y, 40)
    fold3 = bench.fold(3)
    assert fold3.info["fold"] == 3 and len(fold3.test) == bench.folds[3][2].numel()
    assert torch.equal(torch.tensor(list(fold3.test.indices())), bench.folds[3][2])
    with pytest.raises(IndexError):
        bench.fold(10)


def test_tu_prefix_loads_any_tu_name_and_degree_option(tmp_path):
    write_tu(tmp_path, "MYGRAPHS", ring_graphs(20), [0, 1] * 10, node_labels=[[0] * n for n, _ in ring_graphs(20)])
    bench = load_benchmark("tu:MYGRAPHS", root=tmp_path, num_folds=5)
    assert bench.num_folds == 5 and bench.num_features == 1  # one node label value
    with pytest.raises(ValueError, match="has node features"):
        load_benchmark("tu:MYGRAPHS", root=tmp_path, degree_features="onehot")
    with pytest.raises(KeyError, match="tu:NAME"):
        load_benchmark("NOT-A-DATASET", root=tmp_path)


def test_karate_club():
    bench = load_benchmark("karate")
    data = bench.train
    assert data.num_nodes == 34 and data.edge_index.size(1) == 2 * 78 and bench.num_targets == 2
    assert bench.split_sizes() == (2, 8, 24)
    assert data.train_mask[[0, 33]].all() and data.y[0] != data.y[33]
    assert not (data.train_mask & data.val_mask).any() and not (data.val_mask & data.test_mask).any()


@pytest.mark.data
@pytest.mark.parametrize("name, graphs, classes, features, edge_features", [
    ("MUTAG", 188, 2, 7, 4),
    ("PROTEINS", 1113, 2, 3, 0),
    ("IMDB-BINARY", 1000, 2, 136, 0),   # one-hot degree, max degree 135
    ("IMDB-MULTI", 1500, 3, 89, 0),     # one-hot degree, max degree 88
])
def test_staged_tu(staged_root, name, graphs, classes, features, edge_features):
    require_staged(staged_root, f"{name}/raw/{name}_A.txt")
    bench = load_benchmark(name)
    assert len(bench.dataset) == graphs and bench.num_targets == classes
    assert (bench.num_features, bench.num_edge_features) == (features, edge_features)
    assert bench.dataset[0].x.size(1) == features
    check_folds(bench.folds, bench.dataset._data.y, graphs)
    assert sum(bench.split_sizes()) == graphs


@pytest.mark.data
def test_staged_cora_public_split(staged_root):
    require_staged(staged_root, "Cora/raw/ind.cora.graph")
    bench = load_benchmark("cora")
    data = bench.train
    assert (data.num_nodes, data.edge_index.size(1), bench.num_features, bench.num_targets) == (2708, 10556, 1433, 7)
    assert bench.split_sizes() == (140, 500, 1000)
    assert torch.allclose(data.x.sum(1)[data.x.sum(1) > 0], torch.ones(1))  # row-normalised


@pytest.mark.data
def test_corrupt_tu_file_is_refused(staged_root, tmp_path):
    require_staged(staged_root, "MUTAG/raw/MUTAG_A.txt")
    shutil.copytree(staged_root / "MUTAG" / "raw", tmp_path / "MUTAG" / "raw")
    for path in (tmp_path / "MUTAG/raw").iterdir():
        path.chmod(0o644)
    target = tmp_path / "MUTAG/raw/MUTAG_A.txt"
    original = target.read_bytes()
    target.write_bytes(original[:-100])  # truncated: PyG itself would fail deep inside with an IndexError
    with pytest.raises(ChecksumError, match=r"MUTAG_A.txt: sha256 .* expected d9656ca7"):
        load_benchmark("MUTAG", root=tmp_path)
    target.write_bytes(original)
    readme = tmp_path / "MUTAG/raw/README.txt"
    readme.write_text(readme.read_text() + "local note\n")  # a harmless edit is still a mismatch ...
    with pytest.raises(ChecksumError, match="README.txt"):
        load_benchmark("MUTAG", root=tmp_path)
    assert len(load_benchmark("MUTAG", root=tmp_path, verify=False).dataset) == 188  # ... unless opted out
