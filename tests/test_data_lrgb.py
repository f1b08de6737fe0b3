"""LRGB Peptides-func in the LRGB layout: OGB features, official split, AP metric, the split pickle hashed before it
is unpickled and unpickled without code, the checked cache; a subset of the real file and, when its cache is built,
the whole staged dataset."""

from __future__ import annotations

import gzip
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from ogb.utils import smiles2graph
from sklearn.metrics import average_precision_score

from gdl_graphs.data import ChecksumError, load_benchmark
from gdl_graphs.data.cache import stale_reason
from gdl_graphs.data.lrgb import (CSV, LRGB_MD5, OFFICIAL_SPLIT_SIZES, SPLIT, AveragePrecisionEvaluator,
                                  SplitUnpickler, md5_file, read_split)
from tests.fixtures.formats import write_peptides
from tests.fixtures.staged import require_staged

# Small real peptides (Gly-Gly, Ala-Gly, Lys-Tyr, a cyclic Pro), enough to exercise OGB's features.
SMILES = ["NCC(=O)NCC(=O)O", "C[C@H](N)C(=O)NCC(=O)O", "NCCCC[C@H](N)C(=O)N[C@@H](Cc1ccc(O)cc1)C(=O)O",
          "O=C(O)[C@@H]1CCCN1", "NCC(=O)N[C@@H](CS)C(=O)O", "CC(C)[C@H](N)C(=O)O"]
LABELS = [[1, 0, 0, 0, 1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 1, 0, 0, 1, 0, 0],
          [1, 0, 0, 1, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 1, 0, 1, 0], [0, 1, 1, 0, 0, 0, 0, 0, 0, 0]]
SPLIT_IDX = {"train": [0, 2, 3, 5], "val": [1], "test": [4]}


class _Marker:
    """Unpickling this runs code: it creates the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_fixture_loads_with_ogb_features_split_and_ap(tmp_path):
    write_peptides(tmp_path, SMILES, LABELS, SPLIT_IDX)
    bench = load_benchmark("Peptides-func", root=tmp_path, verify=False, progress=False)
    assert (bench.task, bench.metric, bench.num_targets) == ("graph_multilabel", "ap", 10)
    assert bench.split_sizes() == (4, 1, 1) and len(bench.dataset) == len(SMILES)
    assert (bench.num_features, bench.num_edge_features) == (9, 3) and len(bench.node_vocab) == 9
    for i, s in enumerate(SMILES):
        data, graph = bench.dataset[i], smiles2graph(s)
        assert data.x.dtype == torch.long and torch.equal(data.x, torch.from_numpy(graph["node_feat"]))
        assert torch.equal(data.edge_index, torch.from_numpy(graph["edge_index"]))
        assert torch.equal(data.edge_attr, torch.from_numpy(graph["edge_feat"]))
        assert data.y.shape == (1, 10) and data.y.dtype == torch.float and data.y.tolist() == [LABELS[i]]
    assert [int(d.y[0, 0]) for d in bench.train] == [LABELS[i][0] for i in SPLIT_IDX["train"]]
    y = torch.cat([d.y for d in bench.dataset]).numpy()
    score = np.random.default_rng(0).random(y.shape)
    expected = np.mean([average_precision_score(y[:, t], score[:, t]) for t in range(10)
                        if 0 < y[:, t].sum() < len(y)])
    assert bench.evaluator.eval({"y_true": y, "y_pred": score})["ap"] == pytest.approx(expected)
    assert bench.evaluator.eval({"y_true": torch.from_numpy(y), "y_pred": torch.from_numpy(y)})["ap"] == 1.0
    with pytest.raises(RuntimeError, match="Number of tasks"):
        AveragePrecisionEvaluator().eval({"y_true": y[:, :3], "y_pred": score[:, :3]})


def test_split_pickle_is_hashed_before_unpickling_and_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    hostile = pickle.dumps({"train": _Marker(marker), "val": np.arange(1), "test": np.arange(1)})
    write_peptides(tmp_path, SMILES, LABELS, SPLIT_IDX, split_pickle=hostile)
    with pytest.raises(ChecksumError, match="peptide_multi_class_dataset.csv.gz: sha256 .* expected e314f7df"):
        load_benchmark("peptides-func", root=tmp_path, progress=False)   # verify=True: hashes first
    assert not marker.exists() and not (tmp_path / "peptides-functional/processed/data.pt").exists()
    with pytest.raises(ValueError, match=r"refers to (io|builtins).open; only NumPy arrays"):
        load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)
    assert not marker.exists()
    with pytest.raises(ValueError, match="overlap"):
        write_peptides(tmp_path, SMILES, LABELS, {"train": [0, 1], "val": [1], "test": [2]})
        read_split(tmp_path / SPLIT, len(SMILES))


def test_cache_is_reused_and_rebuilt_when_the_raw_files_change(tmp_path):
    write_peptides(tmp_path, SMILES, LABELS, SPLIT_IDX)
    processed = tmp_path / "peptides-functional/processed"
    load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)
    assert stale_reason(processed, tmp_path, [CSV, SPLIT], ["data.pt", "split.pt"]) is None
    built = (processed / "data.pt").stat().st_mtime_ns
    load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)
    assert (processed / "data.pt").stat().st_mtime_ns == built                      # read from the cache
    write_peptides(tmp_path, SMILES, LABELS, {"train": [0, 1, 2], "val": [3], "test": [4, 5]})
    with pytest.warns(UserWarning, match="rebuilding .*splits_random_stratified_peptide.pickle changed"):
        bench = load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)
    assert bench.split_sizes() == (3, 1, 2)
    data = processed / "data.pt"
    data.write_bytes(data.read_bytes()[:-64])                                        # truncated
    with pytest.warns(UserWarning, match=rf"{data}.* \(truncated\?\)"):
        assert len(load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False).dataset) == 6
    (tmp_path / SPLIT).unlink()
    with pytest.raises(FileNotFoundError, match="splits_random_stratified_peptide.pickle is missing"):
        load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)


def test_bad_labels_and_smiles_name_the_row(tmp_path):
    write_peptides(tmp_path, SMILES[:2] + ["not-a-smiles"], LABELS[:3], {"train": [0], "val": [1], "test": [2]})
    with pytest.raises(ValueError, match=r"rows \[2\]"):
        load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)
    write_peptides(tmp_path, SMILES[:2], [[0, 1], LABELS[1]], {"train": [0], "val": [1], "test": []})
    with pytest.raises(ValueError, match="row 0: labels must be a list of 10"):
        load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)


@pytest.mark.data
def test_staged_peptides_files_hashes_split_and_a_real_subset(staged_root, tmp_path):
    """The real files: both hashes (our SHA-256, the LRGB loader's MD5), the official split sizes, every label row;
    and the first 300 real peptides, written back in the same format, loaded and compared with smiles2graph."""
    require_staged(staged_root, CSV, SPLIT)
    for rel, md5 in LRGB_MD5.items():
        assert md5_file(staged_root / rel) == md5
    from gdl_graphs.data.lrgb import verify_lrgb_files

    verify_lrgb_files(staged_root)
    frame = pd.read_csv(staged_root / CSV)
    assert len(frame) == 15_535 and list(frame.columns[1:]) == ["smiles", "peptide_seq", "labels", "identifier"]
    split = read_split(staged_root / SPLIT, len(frame))
    assert tuple(len(split[k]) for k in ("train", "val", "test")) == OFFICIAL_SPLIT_SIZES
    assert torch.cat(list(split.values())).sort().values.equal(torch.arange(15_535))
    labels = np.array([eval_labels(t) for t in frame["labels"]])
    assert labels.shape == (15_535, 10) and set(np.unique(labels)) == {0, 1}

    subset = frame.iloc[:300]
    write_peptides(tmp_path, subset["smiles"].tolist(), labels[:300].tolist(),
                   {"train": list(range(200)), "val": list(range(200, 250)), "test": list(range(250, 300))})
    bench = load_benchmark("peptides-func", root=tmp_path, verify=False, progress=False)
    assert bench.split_sizes() == (200, 50, 50)
    for i in range(0, 300, 37):
        graph = smiles2graph(subset["smiles"].iloc[i])
        assert torch.equal(bench.dataset[i].x, torch.from_numpy(graph["node_feat"]))
        assert torch.equal(bench.dataset[i].edge_attr, torch.from_numpy(graph["edge_feat"]))
    with gzip.open(tmp_path / CSV, "rt") as f:
        assert f.readline().strip() == ",smiles,peptide_seq,labels,identifier"


def eval_labels(text: str) -> list[int]:
    import json

    return json.loads(text)


@pytest.mark.data
def test_staged_peptides_full_dataset_when_its_cache_is_built(staged_root):
    """The whole dataset through load_benchmark. Processing 15,535 peptides takes minutes on two shared cores, so
    this runs once `gdl-bench data prepare peptides-func` (or any load) has built the cache."""
    require_staged(staged_root, CSV, SPLIT)
    if stale_reason(staged_root / "peptides-functional/processed", staged_root, [CSV, SPLIT],
                    ["data.pt", "split.pt"]) is not None:
        pytest.skip("peptides-func cache not built; run `gdl-bench data prepare peptides-func` once")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        bench = load_benchmark("peptides-func")
    data = bench.dataset._data
    assert len(bench.dataset) == 15_535 and bench.split_sizes() == OFFICIAL_SPLIT_SIZES
    assert (data.x.size(0), data.edge_index.size(1)) == (2_344_859, 4_773_974)
    assert data.y.shape == (15_535, 10) and data.y.sum(0).tolist()[:3] == [1378.0, 545.0, 995.0]
