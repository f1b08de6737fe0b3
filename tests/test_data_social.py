"""TU datasets with the Errica et al. 10-fold protocol, Planetoid Cora, the karate club; staged data and fixtures
in the TU text format (REDDIT-BINARY, COLLAB), degree features, checksums."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter

import pytest
import torch

from gdl_graphs.data import ChecksumError, load_benchmark
from gdl_graphs.data.splits import random_holdouts, stratified_folds
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


# --------------------------------------------------------------------------- raw-file integrity and the cache


def test_missing_label_file_is_named_and_nothing_is_cached(tmp_path):
    write_tu(tmp_path, "MYGRAPHS", ring_graphs(20), [0, 1] * 10)
    labels = tmp_path / "MYGRAPHS/raw/MYGRAPHS_graph_labels.txt"
    saved = labels.read_text()
    labels.unlink()
    with pytest.raises(FileNotFoundError, match=r"MYGRAPHS/raw/MYGRAPHS_graph_labels.txt is missing; nothing was "):
        load_benchmark("tu:MYGRAPHS", root=tmp_path)
    assert not (tmp_path / "MYGRAPHS/processed/data.pt").exists()
    labels.write_text(saved)                                   # restored: loads, no poisoned cache in the way
    assert load_benchmark("tu:MYGRAPHS", root=tmp_path).num_targets == 2


def test_cache_is_rebuilt_when_a_raw_file_changes_or_is_truncated(tmp_path):
    write_tu(tmp_path, "MYGRAPHS", ring_graphs(40), [0, 1] * 20)
    processed = tmp_path / "MYGRAPHS/processed/data.pt"
    assert load_benchmark("tu:MYGRAPHS", root=tmp_path).num_targets == 2
    built = processed.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # a current cache loads silently ...
        load_benchmark("tu:MYGRAPHS", root=tmp_path)
    assert processed.stat().st_mtime_ns == built               # ... without processing again
    write_tu(tmp_path, "MYGRAPHS", ring_graphs(40), [0, 1, 2, 3] * 10)
    with pytest.warns(UserWarning, match="MYGRAPHS_graph_labels.txt changed since the cache was built"):
        assert load_benchmark("tu:MYGRAPHS", root=tmp_path).num_targets == 4
    processed.write_bytes(processed.read_bytes()[:-200])
    with pytest.warns(UserWarning, match=rf"{processed} has \d+ bytes, \d+ were written \(truncated\?\)"):
        assert load_benchmark("tu:MYGRAPHS", root=tmp_path).num_targets == 4
    (tmp_path / "MYGRAPHS/processed/raw_files.json").unlink()   # a cache from before hashes were recorded
    with pytest.warns(UserWarning, match="records no raw-file hashes"):
        load_benchmark("tu:MYGRAPHS", root=tmp_path)
    processed.write_bytes(b"\0" * processed.stat().st_size)    # same size, unreadable: rebuilt, the file named
    with pytest.warns(UserWarning, match=rf"{processed} cannot be read .* rebuilding it"):
        assert len(load_benchmark("tu:MYGRAPHS", root=tmp_path).dataset) == 40


@pytest.mark.parametrize("name", ["tu:../../x", "tu:a/b", "tu:..", "tu:", "tu:a\\b", "gin:../y", "tu: x"])
def test_dataset_names_are_names(tmp_path, name):
    with pytest.raises((ValueError, KeyError), match="is not a name|unknown dataset"):
        load_benchmark(name, root=tmp_path / "root")
    assert not (tmp_path / "root").exists() and not (tmp_path / "x").exists()


def test_tu_prefix_keeps_node_attributes(tmp_path):
    graphs = ring_graphs(20)
    labels = [[i % 3 for i in range(n)] for n, _ in graphs]
    attrs = [[[0.5 * i, 1.0] for i in range(n)] for n, _ in graphs]
    write_tu(tmp_path, "ATTR", graphs, [0, 1] * 10, node_labels=labels, node_attributes=attrs)
    bench = load_benchmark("tu:ATTR", root=tmp_path)
    assert bench.num_features == 2 + 3 and torch.allclose(bench.dataset[0].x[:, :2], torch.tensor(attrs[0]))
    assert load_benchmark("tu:ATTR", root=tmp_path, use_node_attr=False).num_features == 3


def test_no_weights_only_warnings_after_an_ogb_load(tmp_path):
    """Loading an OGB dataset (which needs PyG's classes allowed in torch.load) must not leave PyG's own loads
    without them: a ``safe_globals`` block would remove ``Data`` on exit and every later cache load would warn."""
    import numpy as np

    from tests.fixtures.formats import write_ogbn

    write_tu(tmp_path, "MYGRAPHS", ring_graphs(20), [0, 1] * 10, node_labels=[[0, 1] * 5] * 20)
    load_benchmark("tu:MYGRAPHS", root=tmp_path)
    write_ogbn(tmp_path, "ogbn-products", np.array([[0, 1], [1, 2]]), np.eye(3), np.array([0, 1, 0]),
               {"train": [0], "valid": [1], "test": [2]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_benchmark("ogbn-products", root=tmp_path)
        load_benchmark("ogbn-products", root=tmp_path)         # OGB's own cached load
        load_benchmark("tu:MYGRAPHS", root=tmp_path)           # PyG's cached load afterwards
    assert not [str(w.message) for w in caught if "weights only" in str(w.message).lower()]


@pytest.mark.data
def test_staged_mutag_missing_label_file_and_cached_loads(staged_root, tmp_path):
    require_staged(staged_root, "MUTAG/raw/MUTAG_A.txt", "Cora/raw/ind.cora.graph")
    for name in ("MUTAG", "Cora"):
        shutil.copytree(staged_root / name / "raw", tmp_path / name / "raw")
    labels = tmp_path / "MUTAG/raw/MUTAG_graph_labels.txt"
    labels.chmod(0o644)
    labels.unlink()
    with pytest.raises(FileNotFoundError, match="MUTAG_graph_labels.txt is missing"):
        load_benchmark("MUTAG", root=tmp_path)
    shutil.copyfile(staged_root / "MUTAG/raw/MUTAG_graph_labels.txt", labels)
    assert len(load_benchmark("MUTAG", root=tmp_path).dataset) == 188
    load_benchmark("Cora", root=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(load_benchmark("MUTAG", root=tmp_path).dataset) == 188
        assert load_benchmark("Cora", root=tmp_path).split_sizes() == (140, 500, 1000)
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message) for w in caught]


@pytest.mark.data
def test_staged_proteins_with_node_attributes(staged_root):
    require_staged(staged_root, "PROTEINS/raw/PROTEINS_node_attributes.txt")
    assert load_benchmark("tu:PROTEINS").num_features == 1 + 3   # 1 attribute + 3 node labels
    assert load_benchmark("PROTEINS").num_features == 3


def test_downloaded_tu_files_are_recorded(tmp_path, monkeypatch):
    """Nothing staged: PyG's download runs (here writing fixture files, with a README as the TU zips have), and the
    record covers every downloaded file, so the next load uses the cache without a rebuild."""
    from torch_geometric.datasets import TUDataset

    def download(self):
        write_tu(tmp_path, self.name, ring_graphs(20), [0, 1] * 10)
        (tmp_path / self.name / "raw" / "README.txt").write_text("downloaded\n")

    monkeypatch.setattr(TUDataset, "download", download)
    assert len(load_benchmark("tu:DOWNLOADED", root=tmp_path).dataset) == 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_benchmark("tu:DOWNLOADED", root=tmp_path).dataset) == 20


@pytest.mark.parametrize("stratified", [False, True])
def test_random_holdouts_are_seeded_disjoint_splits_of_the_given_sizes(stratified):
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    splits = random_holdouts(labels, count=5, fractions=[0.8, 0.1, 0.1], stratified=stratified, seed=7)
    assert len(splits) == 5
    for train, val, test in splits:
        assert torch.cat([train, val, test]).sort().values.tolist() == list(range(100))
        assert (train.numel(), val.numel(), test.numel()) == (80, 10, 10)
        if stratified:
            assert Counter(labels[test].tolist()) == {0: 6, 1: 3, 2: 1}
    assert len({tuple(test.tolist()) for _, _, test in splits}) == 5  # a new split per repeat
    again = random_holdouts(labels, count=5, fractions=[0.8, 0.1, 0.1], stratified=stratified, seed=7)
    assert all(torch.equal(a, b) for sa, sb in zip(splits, again) for a, b in zip(sa, sb))
    if not stratified:  # torch's random_split cut points, as SAGPool's code: int(0.8 n), int(0.1 n), the rest
        assert [p.numel() for p in random_holdouts(torch.zeros(1113), 1, [0.8, 0.1, 0.1], False)[0]] == [890, 111, 112]


def test_random_split_option_of_a_tu_dataset(tmp_path):
    write_tu(tmp_path, "MYGRAPHS", ring_graphs(40), [0, 1] * 20, node_labels=[[0] * n for n, _ in ring_graphs(40)])
    bench = load_benchmark("tu:MYGRAPHS", root=tmp_path, split="random", num_folds=4, fractions=[0.5, 0.25, 0.25])
    assert bench.num_folds == 4 and "4 random stratified 0.5/0.25/0.25" in bench.info["split"]
    assert [len(bench.fold(k).test) for k in range(4)] == [10] * 4
    assert len({tuple(bench.folds[k][2].tolist()) for k in range(4)}) == 4
    with pytest.raises(ValueError, match="fractions"):
        load_benchmark("tu:MYGRAPHS", root=tmp_path, fractions=[0.5, 0.25, 0.25])  # the Errica split has none
    with pytest.raises(ValueError, match="split must be one of"):
        load_benchmark("tu:MYGRAPHS", root=tmp_path, split="kfold")
    with pytest.raises(ValueError, match="sum"):
        load_benchmark("tu:MYGRAPHS", root=tmp_path, split="random", fractions=[0.5, 0.5, 0.5])
