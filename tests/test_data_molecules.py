"""Molecule loaders: from_smiles, OGB featurisation, scaffold split, MoleculeNet / molhiv on the staged CSVs,
ZINC and FreeSolv on fixtures in the official formats, QM9 through the registry, and bad input."""

from __future__ import annotations

import importlib.util
import math
import shutil
import time

import pytest
import torch

from gdl_graphs.data import ChecksumError, load_benchmark
from gdl_graphs.data.molecules import MolHIVFromCSV, from_smiles, mol_to_graph, smiles_to_data
from gdl_graphs.data.splits import murcko_scaffold, scaffold_split
from gdl_graphs.data.weave import PAIR_FEATURES, weave_pairs
from tests.fixtures.formats import write_csv, write_ogb_molhiv, write_zinc
from tests.fixtures.staged import require_staged

ESOL_HEADER = ["Compound ID", "ESOL predicted log solubility in mols per litre", "Minimum Degree",
               "Molecular Weight", "Number of H-Bond Donors", "Number of Rings", "Number of Rotatable Bonds",
               "Polar Surface Area", "measured log solubility in mols per litre", "smiles"]
SMILES = ["CCO", "CCN", "CCCC", "CC(=O)O",                 # acyclic: empty scaffold
          "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1",           # benzene
          "CC1CCCCC1", "OC1CCCCC1",                        # cyclohexane
          "Cc1ccncc1"]                                     # pyridine


# ----------------------------------------------------------------------------------------------- from_smiles


def test_mol_to_graph_equals_ogb_smiles2graph():
    from ogb.utils import smiles2graph
    from rdkit import Chem

    for s in ["CC(=O)Oc1ccccc1C(=O)O", "C[C@H](N)C(=O)O", "[Na+].[Cl-]", "c1ccc2[nH]ccc2c1"]:
        ours, theirs = mol_to_graph(Chem.MolFromSmiles(s)), smiles2graph(s)
        for key in ("node_feat", "edge_index", "edge_feat"):
            assert (ours[key] == theirs[key]).all() and ours[key].shape == theirs[key].shape, (s, key)
        assert ours["num_nodes"] == theirs["num_nodes"]


@pytest.mark.data
def test_mol_to_graph_equals_smiles2graph_on_staged_hiv(staged_root):
    import pandas as pd
    from ogb.utils import smiles2graph

    from gdl_graphs.data.molecules import parse_smiles

    require_staged(staged_root, "MoleculeNet/hiv/raw/HIV.csv")
    smiles = pd.read_csv(staged_root / "MoleculeNet/hiv/raw/HIV.csv")["smiles"].iloc[::100].tolist()  # 412 rows
    checked = 0
    for s in smiles:
        mol = parse_smiles(s)
        if mol is None:
            continue
        ours, theirs = mol_to_graph(mol), smiles2graph(s)
        assert all((ours[k] == theirs[k]).all() and ours[k].shape == theirs[k].shape
                   for k in ("node_feat", "edge_index", "edge_feat")), s
        checked += 1
    assert checked >= 400


def test_from_smiles_features_and_targets():
    graphs = from_smiles(["CCO", "c1ccccc1"], targets=[1.5, -2.0])
    assert [g.num_nodes for g in graphs] == [3, 6]
    assert graphs[1].x.shape == (6, 9) and graphs[1].x.dtype == torch.long
    assert graphs[1].edge_index.shape == (2, 12) and graphs[1].edge_attr.shape == (12, 3)
    assert graphs[0].y.tolist() == [[1.5]] and graphs[1].row == 1 and graphs[1].smiles == "c1ccccc1"


def test_from_smiles_skips_invalid_rows_with_a_counted_warning():
    with pytest.warns(UserWarning, match=r"2 invalid or empty SMILES at rows \[1, 3\] and 1 NaN targets at rows "
                                         r"\[4\].*skipped 3, kept 2"):
        graphs = from_smiles(["CCO", "C1CC", "CCN", "", "CCC"], targets=[0, 1, 2, 3, float("nan")])
    assert [g.row for g in graphs] == [0, 2]


def test_from_smiles_raise_mode_names_the_rows():
    with pytest.raises(ValueError, match=r"1 invalid or empty SMILES at rows \[1\]"):
        from_smiles(["CCO", "not a smiles"], on_invalid="raise")
    with pytest.raises(ValueError, match="2 SMILES but 3 target rows"):
        from_smiles(["CCO", "CCN"], targets=[1, 2, 3])
    with pytest.raises(ValueError, match="on_invalid"):
        from_smiles(["CCO"], on_invalid="ignore")


def test_lenient_parse_keeps_hiv_metal_complexes():
    s = "O=C1O[Al]23(OC1=O)(OC(=O)C(=O)O2)OC(=O)C(=O)O3"  # HIV.csv row 137; rejected by current RDKit (valence)
    assert smiles_to_data(s) is None
    data = smiles_to_data(s, lenient=True)
    assert data.num_nodes == 19 and data.x.shape == (19, 9)
    assert murcko_scaffold(s)  # a scaffold, not an error


# ------------------------------------------------------------------------------------------------ scaffold split


def test_scaffold_split_by_hand():
    assert murcko_scaffold("Cc1ccccc1") == "c1ccccc1" and murcko_scaffold("CCO") == ""
    # groups: acyclic (4) > benzene (3) > cyclohexane (2) > pyridine (1); cut-offs 6 and 8 of 10
    train, valid, test = scaffold_split(SMILES, (0.6, 0.2, 0.2))
    assert train.tolist() == [0, 1, 2, 3, 7, 8]
    assert valid.tolist() == [4, 5, 6]
    assert test.tolist() == [9]


def test_scaffold_split_breaks_ties_by_first_index_descending(tmp_path):
    # two scaffold sets of size 2: pretrain-gnns sorts (size, first index) in reverse, so the later set goes first
    smiles = ["Cc1ccccc1", "Oc1ccccc1", "CC1CCCCC1", "OC1CCCCC1"]
    cache = tmp_path / "scaffolds.json"
    train, valid, test = scaffold_split(smiles, (0.5, 0.5, 0.0), cache_file=cache)
    assert train.tolist() == [2, 3] and valid.tolist() == [0, 1] and test.numel() == 0
    assert cache.is_file() and scaffold_split(smiles, (0.5, 0.5, 0.0), cache_file=cache)[0].tolist() == [2, 3]
    with pytest.raises(ValueError, match="sum"):
        scaffold_split(smiles, (0.5, 0.2, 0.2))


# --------------------------------------------------------------------------------------- MoleculeNet fixtures


def _esol_rows():
    rows = [[f"mol{i}", 0.0, 1, 100.0, 0, 1, 0, 10.0, -1.0 - i, s] for i, s in enumerate(SMILES)]
    rows[3][8] = None            # NaN target
    rows[6][9] = "C1CC"          # invalid SMILES (unclosed ring)
    return rows


def test_moleculenet_fixture_counts_invalid_smiles_and_nan_targets(tmp_path):
    write_csv(tmp_path / "MoleculeNet/esol/raw/delaney-processed.csv", ESOL_HEADER, _esol_rows())
    with pytest.warns(UserWarning) as record:
        bench = load_benchmark("esol", root=tmp_path, verify=False)
    messages = " | ".join(str(w.message) for w in record)
    assert "1 of 10 rows" in messages and "1 molecules with a NaN target" in messages
    assert len(bench.dataset) == 9 and bench.info["skipped_unparseable"] == 1 and bench.info["nan_targets"] == 1
    assert sum(bench.split_sizes()) == 8
    assert not any(torch.isnan(g.y).any() for part in (bench.train, bench.val, bench.test) for g in part)
    assert bench.task == "graph_regression" and bench.metric == "rmse" and bench.num_features == 9


def test_weave_pairs_by_hand():
    """Phenol, c1ccccc1O: 7 atoms (ring atoms 0-5, O 6 bonded to atom 5), every ordered pair an edge."""
    data = weave_pairs(smiles_to_data("c1ccccc1O"))
    assert data.edge_index.shape == (2, 49) and data.edge_attr.shape == (49, PAIR_FEATURES)
    assert data.x.shape == (7, 9) and data.smiles == "c1ccccc1O"
    pair = {(int(j), int(i)): row for (j, i), row in zip(data.edge_index.t(), data.edge_attr)}  # (source, target)
    expected = {
        (0, 1): [0, 0, 0, 1, 1, 1, 1] + [1, 0, 0, 0, 0, 0, 0],  # aromatic, conjugated, in ring; same ring; 1 bond
        (0, 3): [0, 0, 0, 0, 0, 0, 1] + [0, 0, 1, 0, 0, 0, 0],  # across the ring: 3 bonds, not bonded
        (5, 6): [1, 0, 0, 0, 1, 0, 0] + [1, 0, 0, 0, 0, 0, 0],  # the C-O bond: single, conjugated, not in a ring
        (6, 2): [0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 1, 0, 0, 0],  # O to the para carbon: 4 bonds, no ring shared
        (4, 4): [0] * PAIR_FEATURES,                               # an atom with itself
    }
    for (j, i), row in expected.items():
        assert pair[(j, i)].tolist() == row and pair[(i, j)].tolist() == row, (j, i)
    assert weave_pairs(smiles_to_data("C.C")).edge_attr.sum() == 0  # two fragments: no bond, ring or distance


def test_weave_pairs_needs_the_molecules_smiles():
    data = smiles_to_data("CCO")
    with pytest.raises(ValueError, match="3 atoms; got 2 atoms in its SMILES"):
        weave_pairs(data.clone().update({"smiles": "CC"}))
    del data.smiles
    with pytest.raises(ValueError, match="got no smiles"):
        weave_pairs(data)


def test_moleculenet_weave_pairs_option(tmp_path):
    write_csv(tmp_path / "MoleculeNet/esol/raw/delaney-processed.csv", ESOL_HEADER, _esol_rows())
    with pytest.warns(UserWarning):
        bonds = load_benchmark("ESOL", root=tmp_path, verify=False)
        weave = load_benchmark("ESOL", root=tmp_path, verify=False, pairs="weave")
    assert weave.num_edge_features == PAIR_FEATURES and weave.edge_vocab is None and weave.info["pairs"] == "weave"
    assert weave.split_sizes() == bonds.split_sizes() and bonds.edge_vocab
    for a, b in zip(bonds.train, weave.train):
        assert a.smiles == b.smiles and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        assert b.num_edges == b.num_nodes ** 2 and int(b.edge_attr[:, 7].sum()) == a.num_edges  # 1 bond = a bond
    with pytest.raises(ValueError, match="pairs must be one of"):
        load_benchmark("ESOL", root=tmp_path, verify=False, pairs="complete")


def test_moleculenet_random_splits_as_folds(tmp_path):
    """``num_folds=k``: k random splits drawn with seeds seed..seed+k-1; fold 0 is the one-split benchmark."""
    write_csv(tmp_path / "MoleculeNet/esol/raw/delaney-processed.csv", ESOL_HEADER, _esol_rows())
    with pytest.warns(UserWarning):
        one = load_benchmark("ESOL", root=tmp_path, verify=False)
        three = load_benchmark("ESOL", root=tmp_path, verify=False, num_folds=3, seed=4)
        weave = load_benchmark("ESOL", root=tmp_path, verify=False, num_folds=3, seed=4, pairs="weave")
        shifted = load_benchmark("ESOL", root=tmp_path, verify=False, seed=6)
    assert one.num_folds == 1 and one.folds is None and three.num_folds == 3 and three.info["num_folds"] == 3
    kept = sorted(i for i in range(len(three.dataset)) if not torch.isnan(three.dataset[i].y).any())
    for train, val, test in three.folds:
        assert sorted(torch.cat([train, val, test]).tolist()) == kept  # each fold partitions the labelled rows
    assert len({tuple(test.tolist()) for _, _, test in three.folds}) > 1
    assert [g.smiles for g in three.fold(2).test] == [g.smiles for g in shifted.test]  # fold k: seed + k
    assert [g.smiles for g in load_benchmark("ESOL", root=tmp_path, verify=False, seed=4).train] == \
        [g.smiles for g in three.fold(0).train]
    for part in ("train", "val", "test"):  # the benchmark itself holds fold 0
        assert [g.smiles for g in getattr(three, part)] == [g.smiles for g in getattr(three.fold(0), part)]
    assert three.info["split_seeds"] == [4, 5, 6] and len(weave.fold(1).train) == len(three.fold(1).train)
    for bonds, pairs in zip(three.fold(1).train, weave.fold(1).train):
        assert bonds.smiles == pairs.smiles and pairs.num_edges == pairs.num_nodes ** 2
    with pytest.raises(ValueError, match="the scaffold split is deterministic"):
        load_benchmark("ESOL", root=tmp_path, verify=False, split="scaffold", num_folds=2)
    with pytest.raises(ValueError, match="num_folds must be a positive int"):
        load_benchmark("ESOL", root=tmp_path, verify=False, num_folds=0)
    with pytest.raises(ValueError, match="split must be 'random' or 'scaffold'"):
        load_benchmark("ESOL", root=tmp_path, verify=False, split="stratified", num_folds=3)


def test_moleculenet_checksum_mismatch_names_file_and_expected_hash(tmp_path):
    path = write_csv(tmp_path / "MoleculeNet/esol/raw/delaney-processed.csv", ESOL_HEADER, _esol_rows())
    with pytest.raises(ChecksumError, match=rf"{path}: sha256 [0-9a-f]{{64}} does not match the expected 8c06a76f"):
        load_benchmark("ESOL", root=tmp_path)


def test_moleculenet_wrong_column_names(tmp_path):
    header = ESOL_HEADER[:-2] + ["solubility", "smiles"]
    path = write_csv(tmp_path / "MoleculeNet/esol/raw/delaney-processed.csv", header, _esol_rows())
    with pytest.raises(ValueError, match=rf"{path}: the SMILES and target columns should be"):
        load_benchmark("ESOL", root=tmp_path, verify=False)


def test_freesolv_fixture_in_official_format(tmp_path):
    rows = [[f"name {i}", s, -float(i), 0.0] for i, s in enumerate(SMILES)]
    write_csv(tmp_path / "MoleculeNet/freesolv/raw/SAMPL.csv", ["iupac", "smiles", "expt", "calc"], rows)
    bench = load_benchmark("FreeSolv", root=tmp_path)
    assert len(bench.dataset) == 10 and bench.split_sizes() == (8, 1, 1)
    assert sorted(bench.dataset._data.y.view(-1).tolist()) == sorted(-float(i) for i in range(10))


# -------------------------------------------------------------------------------------------------------- ZINC


def test_zinc_fixture_in_official_format(tmp_path):
    subset = {"train": [0, 2, 4, 5], "val": [1, 3], "test": [0, 1, 2]}
    raw = write_zinc(tmp_path, {"train": 6, "val": 4, "test": 4}, subset)
    bench = load_benchmark("ZINC", root=tmp_path)
    assert bench.split_sizes() == (4, 2, 3) and bench.metric == "mae" and bench.node_vocab == (28,)
    import pickle

    with open(raw / "train.pickle", "rb") as f:
        mols = pickle.load(f)
    first = bench.train[1]  # subset index 2 of the train pickle
    assert first.x.view(-1).tolist() == mols[2]["atom_type"].tolist()
    assert torch.allclose(first.y, mols[2]["logP_SA_cycle_normalized"])
    assert set(first.edge_attr.tolist()) <= {1, 2, 3} and first.edge_index.size(1) == 2 * (mols[2]["num_atom"] - 1)


def test_zinc_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    import urllib.error

    import torch_geometric.datasets.zinc as zinc

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(zinc, "download_url", offline)
    with pytest.raises(FileNotFoundError, match=r"ZINC: raw files are missing .* data prepare ZINC --from DIR"):
        load_benchmark("ZINC", root=tmp_path)


# ------------------------------------------------------------------------------------------- official molhiv


def test_official_ogb_molhiv_files_load_offline(tmp_path):
    """OGB's own PygGraphPropPredDataset on files in the official layout (as downloaded) under the data root."""
    labels = [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]
    split = {"train": [0, 1, 2, 3, 7, 8], "valid": [4, 5, 6], "test": [9]}
    write_ogb_molhiv(tmp_path, SMILES, labels, split)
    bench = load_benchmark("ogbg-molhiv", root=tmp_path)  # "auto" picks the official files
    assert bench.info["source"] == "ogb" and len(bench.dataset) == 10 and bench.split_sizes() == (6, 3, 1)
    ours = from_smiles(SMILES)
    for official, mine in zip(bench.dataset, ours):  # the offline CSV build featurises identically
        assert torch.equal(official.x, mine.x) and torch.equal(official.edge_attr, mine.edge_attr)
        assert official.edge_index.size(1) == mine.edge_index.size(1)
    assert bench.dataset._data.y.view(-1).tolist() == labels
    assert bench.evaluator.eval({"y_true": bench.dataset._data.y, "y_pred": bench.dataset._data.y.float()})[
        "rocauc"] == 1.0


# ------------------------------------------------------------------------------------------------ staged data


@pytest.mark.data
@pytest.mark.parametrize("name, csv, count, sizes", [
    ("ESOL", "MoleculeNet/esol/raw/delaney-processed.csv", 1128, (902, 113, 113)),
    ("Lipo", "MoleculeNet/lipo/raw/Lipophilicity.csv", 4200, (3360, 420, 420)),
])
def test_staged_moleculenet_regression(staged_root, name, csv, count, sizes):
    require_staged(staged_root, csv)
    bench = load_benchmark(name)
    assert len(bench.dataset) == count and bench.split_sizes() == sizes
    assert (bench.task, bench.metric, bench.num_targets, bench.num_features, bench.num_edge_features) == \
        ("graph_regression", "rmse", 1, 9, 3)
    parts = torch.tensor([i for part in (bench.train, bench.val, bench.test) for i in part.indices()])
    assert parts.unique().numel() == count  # disjoint and complete


@pytest.mark.data
def test_staged_bbbp(staged_root):
    require_staged(staged_root, "MoleculeNet/bbbp/raw/BBBP.csv")
    with pytest.warns(UserWarning, match="BBBP: 11 of 2050 rows"):
        bench = load_benchmark("bbbp")
    assert len(bench.dataset) == 2039 and sum(bench.split_sizes()) == 2039
    assert bench.split_sizes() == (1631, 204, 204)
    assert (bench.task, bench.metric) == ("graph_multilabel", "rocauc")


@pytest.fixture(scope="module")
def molhiv_two_loads():
    from gdl_graphs.data import data_root, require_data

    root = data_root()
    if not (root / "MoleculeNet/hiv/raw/HIV.csv").is_file():
        if require_data():
            pytest.fail(f"HIV.csv not staged under {root}")
        pytest.skip(f"HIV.csv not staged under {root}")
    cache = root / "molhiv" / "processed" / "data.pt"
    processed_before = cache.is_file()
    times, benches = [], []
    for _ in range(2):
        start = time.perf_counter()
        benches.append(load_benchmark("molhiv"))
        times.append(time.perf_counter() - start)
    return benches, times, processed_before, cache


@pytest.mark.data
@pytest.mark.slow
def test_staged_molhiv_official_counts(molhiv_two_loads):
    (bench, _), _, _, _ = molhiv_two_loads
    assert len(bench.dataset) == 41127
    assert bench.split_sizes() == (32901, 4113, 4113)
    split = bench.dataset.get_idx_split()
    assert torch.cat(list(split.values())).unique().numel() == 41127
    y = bench.dataset._data.y
    assert y.shape == (41127, 1) and y.dtype == torch.long and int(y.sum()) == 1443
    assert bench.dataset._data.x.size(1) == 9 and bench.dataset._data.edge_attr.size(1) == 3
    assert bench.info["lenient_parsed"] == 7
    assert bench.evaluator.name == "ogbg-molhiv"
    assert bench.evaluator.eval({"y_true": y, "y_pred": y.float()})["rocauc"] == 1.0
    assert bench.evaluator.eval({"y_true": y, "y_pred": -y.float()})["rocauc"] == 0.0


@pytest.mark.data
@pytest.mark.slow
def test_staged_molhiv_is_cached(molhiv_two_loads, capsys):
    (first, second), (t_first, t_second), processed_before, cache = molhiv_two_loads
    with capsys.disabled():
        print(f"\nmolhiv load times: first {t_first:.2f} s ({'cached' if processed_before else 'processed'}), "
              f"second {t_second:.2f} s")
    mtime = cache.stat().st_mtime
    MolHIVFromCSV(cache.parent.parent.parent)  # a third load must not rewrite the cache
    assert cache.stat().st_mtime == mtime
    assert list(first.test.indices()) == list(second.test.indices())
    if not processed_before:
        assert t_second < 0.2 * t_first


@pytest.mark.data
@pytest.mark.slow
def test_staged_moleculenet_hiv(staged_root):
    require_staged(staged_root, "MoleculeNet/hiv/raw/HIV.csv")
    with pytest.warns(UserWarning, match="HIV: 7 of 41127 rows"):
        bench = load_benchmark("HIV")
    assert len(bench.dataset) == 41120 and int(bench.dataset._data.y.sum()) == 1443
    assert bench.split_sizes() == (32896, 4112, 4112)


# --------------------------------------------------------------------------------------------------------- QM9


def test_qm9_through_the_registry(tmp_path):
    pytest.importorskip("gdl_graphs.data.qm9")
    if importlib.util.find_spec("qm9pack") is None:
        pytest.skip("qm9pack is not installed (pip install 'gdl_graphs[qm9]')")
    bench = load_benchmark("QM9", root=tmp_path, limit=300, num_train=200)
    assert bench.split_sizes() == (200, 70, 30) and bench.num_targets == 12 and bench.num_features == 5
    one = load_benchmark("qm9", root=tmp_path, limit=300, num_train=200, target="homo")
    assert one.num_targets == 1 and one.train[0].y.shape == (1, 1)
    assert math.isclose(float(one.train[0].y), float(bench.train[0].y[0, 2]))
    with pytest.raises(ValueError, match="target"):
        load_benchmark("QM9", root=tmp_path, limit=300, num_train=200, target=12)


@pytest.mark.data
def test_staged_hiv_csv_copy_is_verified(staged_root, tmp_path):
    """A truncated HIV.csv is refused before the (slow) processing starts."""
    require_staged(staged_root, "MoleculeNet/hiv/raw/HIV.csv")
    target = tmp_path / "MoleculeNet/hiv/raw/HIV.csv"
    target.parent.mkdir(parents=True)
    shutil.copyfile(staged_root / "MoleculeNet/hiv/raw/HIV.csv", target)
    with open(target, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ChecksumError, match=r"HIV.csv: sha256 .* expected 9ffa7fe5"):
        load_benchmark("molhiv", root=tmp_path)
