"""The GIN repository's text format (``TU_gin_format/NAME.zip``): the same Data as PyG's TUDataset on the same graphs,
the repository's 10 folds, clutter skipped, errors naming file and line; the staged REDDIT-BINARY and COLLAB."""

from __future__ import annotations

import zipfile
from collections import Counter

import numpy as np
import pytest
import torch
from torch_geometric.datasets import TUDataset

from gdl_graphs.data import ChecksumError, load_benchmark
from gdl_graphs.data.gin_format import GINFormatTUDataset
from tests.fixtures.formats import ring_graphs, write_gin_zip, write_tu
from tests.fixtures.staged import require_staged


def gin_folds(num_graphs: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    perm = np.random.default_rng(seed).permutation(num_graphs)
    tests = np.array_split(perm, 10)
    return [(sorted(set(range(num_graphs)) - set(t.tolist())), sorted(t.tolist())) for t in tests]


def assert_same_graphs(ours, theirs):
    assert len(ours) == len(theirs)
    assert (ours.num_node_labels, ours.num_node_attributes) == (theirs.num_node_labels, theirs.num_node_attributes)
    for a, b in zip(ours, theirs):
        assert sorted(a.keys()) == sorted(b.keys())
        assert a.num_nodes == b.num_nodes and torch.equal(a.edge_index, b.edge_index) and torch.equal(a.y, b.y)
        if b.x is not None:
            assert a.x.dtype == b.x.dtype and torch.allclose(a.x, b.x)


@pytest.mark.parametrize("listing, self_loops", [("both", False), ("mixed", True)])
def test_featureless_gin_equals_tudataset(tmp_path, listing, self_loops):
    graphs = ring_graphs(30, seed=1)
    labels = [0, 2] * 15                                    # REDDIT-BINARY's GIN codes; TU has -1 / 1
    write_tu(tmp_path / "tu", "SOC", graphs, [-1, 1] * 15)
    write_gin_zip(tmp_path / "gin", "SOC", graphs, labels, folds=gin_folds(30), listing=listing,
                  self_loops=self_loops)
    theirs = TUDataset(str(tmp_path / "tu"), "SOC")
    ours = GINFormatTUDataset(tmp_path / "gin", "SOC", progress=False)
    assert ours.num_node_features == theirs.num_node_features == 0
    assert_same_graphs(ours, theirs)


@pytest.mark.parametrize("use_node_attr", [False, True])
def test_tags_and_attributes_equal_tudataset(tmp_path, use_node_attr):
    graphs = ring_graphs(20, seed=2)
    rng = np.random.default_rng(0)
    tags = [[int(t) for t in rng.integers(3, 7, n)] for n, _ in graphs]          # node labels 3..6
    attrs = [[[float(v) for v in rng.integers(0, 9, 2)] for _ in range(n)] for n, _ in graphs]
    write_tu(tmp_path / "tu", "BIO", graphs, [1, 2] * 10, node_labels=tags, node_attributes=attrs)
    write_gin_zip(tmp_path / "gin", "BIO", graphs, [1, 2] * 10, tags=tags, attributes=attrs, folds=gin_folds(20))
    theirs = TUDataset(str(tmp_path / "tu"), "BIO", use_node_attr=use_node_attr)
    ours = GINFormatTUDataset(tmp_path / "gin", "BIO", use_node_attr=use_node_attr, progress=False)
    assert ours.num_node_features == theirs.num_node_features == (6 if use_node_attr else 4)
    assert_same_graphs(ours, theirs)


def test_gin_folds_and_benchmark(tmp_path):
    graphs, labels = ring_graphs(40, seed=3), [0, 1, 2, 1] * 10
    folds = gin_folds(40)
    write_gin_zip(tmp_path, "MYGIN", graphs, labels, folds=folds)
    bench = load_benchmark("gin:MYGIN", root=tmp_path, val_fraction=0)
    assert bench.num_folds == 10 and bench.info["node_features"] == "onehot" and bench.num_targets == 3
    for (train, test), (b_train, b_val, b_test) in zip(folds, bench.folds):
        assert b_train.tolist() == train and b_test.tolist() == test and b_val.numel() == 0
    held = load_benchmark("gin:MYGIN", root=tmp_path, val_fraction=0.25, seed=1)
    for (train, test), (b_train, b_val, b_test) in zip(folds, held.folds):
        assert sorted(b_train.tolist() + b_val.tolist()) == train and b_test.tolist() == test
        assert b_val.numel() == round(0.25 * len(train)) and not set(b_val.tolist()) & set(b_train.tolist())
    errica = load_benchmark("gin:MYGIN", root=tmp_path, split="errica")
    assert errica.folds[0][1].numel() > 0 and torch.cat([f[2] for f in errica.folds]).unique().numel() == 40
    # a registered name without TU files falls back to a GIN-format copy, keeping its Errica protocol
    write_gin_zip(tmp_path, "COLLAB", graphs, labels, folds=folds)
    with pytest.raises(ChecksumError, match="COLLAB.zip: sha256"):      # not the staged file
        load_benchmark("COLLAB", root=tmp_path)
    collab = load_benchmark("COLLAB", root=tmp_path, verify=False)
    assert collab.info["source"].startswith("GIN text format") and "Errica" in collab.info["split"]
    assert load_benchmark("COLLAB", root=tmp_path, split="gin", verify=False).folds[0][2].tolist() == folds[0][1]
    with pytest.raises(ValueError, match="GIN repository's fold files"):
        load_benchmark("COLLAB", root=tmp_path, source="tu", split="gin")


def test_zip_clutter_is_skipped_and_folds_are_optional(tmp_path):
    path = write_gin_zip(tmp_path, "NOFOLDS", ring_graphs(30), [0, 1] * 15)
    assert any(".DS_Store" in m or "__MACOSX" in m for m in zipfile.ZipFile(path).namelist())
    bench = load_benchmark("gin:NOFOLDS", root=tmp_path, split="errica", num_folds=3)
    assert len(bench.dataset) == 30 and bench.num_folds == 3
    with pytest.raises(ValueError, match="no 10fold_idx split files; use split='errica'"):
        load_benchmark("gin:NOFOLDS", root=tmp_path)


@pytest.mark.parametrize("text, message", [
    ("2\n3 0\n0 1 1\n0 2 0 2\n0 1 1\n", r"NAME.txt.*ends early, expected graph 1"),
    ("1\n2 0\n0 1 5\n0 1 0\n", r"NAME.txt:3: node 0 of graph 0 \(with 2 nodes\)"),
    ("1\n2 x\n", r"NAME.txt:2: expected 'num_nodes label'"),
    ("1\n1 0\n0 z\n", r"NAME.txt:3: expected 'tag degree neighbours"),
    ("1\n1 0\n0 0\n1 0\n", r"NAME.txt:4: unexpected content after the 1 graphs"),
])
def test_malformed_text_names_file_and_line(tmp_path, text, message):
    folder = tmp_path / "TU_gin_format"
    folder.mkdir()
    with zipfile.ZipFile(folder / "NAME.zip", "w") as archive:
        archive.writestr("NAME/NAME.txt", text)
    with pytest.raises(ValueError, match=message):
        load_benchmark("gin:NAME", root=tmp_path, split="errica", num_folds=2)


def test_missing_zip_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"TU_gin_format/ABSENT.zip is missing; nothing was processed"):
        load_benchmark("gin:ABSENT", root=tmp_path)


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name, graphs, nodes, edges, classes, features", [
    ("REDDIT-BINARY", 2_000, 859_254, 1_991_016, {0: 1000, 1: 1000}, 1),      # constant feature (GIN)
    ("COLLAB", 5_000, 372_474, 24_572_158, {0: 2600, 1: 775, 2: 1625}, 492),  # one-hot degree, max degree 491
])
def test_staged_gin_format(staged_root, name, graphs, nodes, edges, classes, features):
    require_staged(staged_root, f"TU_gin_format/{name}.zip")
    bench = load_benchmark(name, split="gin", val_fraction=0)
    data = bench.dataset._data
    assert len(bench.dataset) == graphs and data.num_nodes == nodes and data.edge_index.size(1) == edges
    assert dict(Counter(data.y.tolist())) == classes and bench.num_features == features
    assert bench.dataset[0].x.size(1) == features
    assert torch.cat([f[2] for f in bench.folds]).sort().values.equal(torch.arange(graphs))
    assert all(f[0].numel() + f[2].numel() == graphs for f in bench.folds)
    row, col = data.edge_index[:, : data.edge_index.size(1) // 50]
    assert not (row == col).any()
