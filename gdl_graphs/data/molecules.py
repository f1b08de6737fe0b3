"""Molecule benchmarks: ogbg-molhiv, MoleculeNet (PyG ``MoleculeNet``), ZINC (PyG ``ZINC``), QM9, and
:func:`from_smiles` for your own molecules.

Featurisation: OGB's (``smiles2graph``'s features: 9 integer atom features, 3 integer bond features) for molhiv
and :func:`from_smiles`; PyG's own ``from_smiles`` (also 9 + 3 integer features, other vocabularies) inside
``MoleculeNet``, as that class defines the format.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data, InMemoryDataset

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.checksums import build_dataset, known_files, verify_files
from gdl_graphs.data.smiles import lenient_mol, parse_smiles
from gdl_graphs.data.splits import murcko_scaffold, random_split, scaffold_split
from gdl_graphs.data.weave import PAIR_FEATURES, weave_pairs

HIV_CSV = "MoleculeNet/hiv/raw/HIV.csv"
MOLHIV_OFFICIAL_DIR = "ogbg_molhiv"
MOLHIV_CSV_DIR = "molhiv"


# --------------------------------------------------------------------------------------------------------- SMILES


def mol_to_graph(mol) -> dict:
    """OGB's graph dict (``node_feat``, ``edge_index``, ``edge_feat``, ``num_nodes``) for an RDKit molecule.

    The loop of ``ogb.utils.smiles2graph`` with OGB's own feature functions, taking a parsed molecule instead of a
    SMILES string: each molecule is parsed once for its features and its scaffold (``smiles2graph`` would parse it
    again), and leniently parsed molecules work too. A test checks it equals ``smiles2graph``.
    """
    from ogb.utils.features import atom_to_feature_vector, bond_to_feature_vector

    x = np.array([atom_to_feature_vector(atom) for atom in mol.GetAtoms()], dtype=np.int64)
    edges, feats = [], []
    for bond in mol.GetBonds():
        i, j, f = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond_to_feature_vector(bond)
        edges += [(i, j), (j, i)]
        feats += [f, f]
    edge_index = np.array(edges, dtype=np.int64).T.reshape(2, -1)
    edge_feat = np.array(feats, dtype=np.int64).reshape(-1, 3)
    return {"node_feat": x, "edge_index": edge_index, "edge_feat": edge_feat, "num_nodes": len(x)}


def _graph_to_data(graph: dict, smiles: str) -> Data:
    return Data(x=torch.from_numpy(graph["node_feat"]).long(),
                edge_index=torch.from_numpy(graph["edge_index"]).long(),
                edge_attr=torch.from_numpy(graph["edge_feat"]).long(), num_nodes=int(graph["num_nodes"]),
                smiles=smiles)


def smiles_to_data(smiles: str, lenient: bool = False) -> Data | None:
    """One SMILES -> :class:`Data` with OGB features (see :func:`mol_to_graph`); ``None`` if it cannot be parsed
    or has no atoms (``lenient`` as in :func:`parse_smiles`)."""
    mol = parse_smiles(smiles, lenient)
    return None if mol is None else _graph_to_data(mol_to_graph(mol), smiles)


def from_smiles(smiles: Sequence[str], targets=None, on_invalid: str = "skip") -> list[Data]:
    """Your own molecules as PyG graphs with OGB's featurisation (``x`` ``[n, 9]``, ``edge_attr`` ``[e, 3]``, both
    integer-coded; vocabularies in :data:`OGB_ATOM_VOCAB` / :data:`OGB_BOND_VOCAB`).

    Args:
        smiles: SMILES strings, one per molecule.
        targets: optional ``[n]`` or ``[n, k]`` array-like; stored as ``y`` ``[1, k]`` float.
        on_invalid: ``"skip"`` (default) drops rows with an unparseable or empty SMILES or a NaN target, with one
            warning naming the rows and the count; ``"raise"`` raises :class:`ValueError` naming them instead.

    Every graph keeps its input row number as ``row`` and its SMILES as ``smiles``.
    """
    if on_invalid not in ("skip", "raise"):
        raise ValueError(f"from_smiles: on_invalid must be 'skip' or 'raise', got {on_invalid!r}")
    if isinstance(smiles, str):
        raise TypeError("from_smiles: pass a list of SMILES strings, not a single string")
    smiles = list(smiles)
    y = None
    if targets is not None:
        y = torch.as_tensor(np.asarray(targets, dtype=np.float64), dtype=torch.float)
        y = y.view(len(y), -1) if y.dim() > 0 else y.view(1, 1)
        if y.size(0) != len(smiles):
            raise ValueError(f"from_smiles: {len(smiles)} SMILES but {y.size(0)} target rows")

    graphs, bad_smiles, bad_target = [], [], []
    for row, s in enumerate(smiles):
        if y is not None and torch.isnan(y[row]).any():
            bad_target.append(row)
            continue
        data = smiles_to_data(s)
        if data is None:
            bad_smiles.append(row)
            continue
        data.row = row
        if y is not None:
            data.y = y[row].view(1, -1)
        graphs.append(data)

    if bad_smiles or bad_target:
        parts = []
        if bad_smiles:
            parts.append(f"{len(bad_smiles)} invalid or empty SMILES at rows {_rows(bad_smiles)}")
        if bad_target:
            parts.append(f"{len(bad_target)} NaN targets at rows {_rows(bad_target)}")
        message = f"from_smiles: {' and '.join(parts)} (of {len(smiles)} rows)"
        if on_invalid == "raise":
            raise ValueError(message)
        warnings.warn(f"{message}; skipped {len(bad_smiles) + len(bad_target)}, kept {len(graphs)}", stacklevel=2)
    return graphs


def _rows(rows: list[int], limit: int = 20) -> str:
    shown = ", ".join(map(str, rows[:limit]))
    return f"[{shown}{', ...' if len(rows) > limit else ''}]"


def _ogb_vocab():
    from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

    return tuple(get_atom_feature_dims()), tuple(get_bond_feature_dims())


OGB_ATOM_VOCAB, OGB_BOND_VOCAB = _ogb_vocab()
"""Number of values of each OGB atom / bond feature column (for embedding tables)."""


# --------------------------------------------------------------------------------------------------------- molhiv


class MolHIVFromCSV(InMemoryDataset):
    """ogbg-molhiv rebuilt offline from MoleculeNet's ``HIV.csv``: the same 41,127 molecules and labels, OGB's
    featurisation (:func:`mol_to_graph`, equal to ``smiles2graph``) and OGB's scaffold split
    (:func:`~gdl_graphs.data.splits.scaffold_split`).

    Raw file: ``<root>/MoleculeNet/hiv/raw/HIV.csv``; cache: ``<root>/molhiv/processed/``. Molecules that current
    RDKit rejects on valence alone are read without the valence check (counted in :attr:`num_lenient`), so the
    dataset keeps OGB's size. ``y`` is ``long`` ``[1, 1]`` as in OGB.
    """

    def __init__(self, root: str | Path, verify: bool = True, transform=None):
        self.data_root = Path(root)
        self.verify = verify
        super().__init__(str(self.data_root / MOLHIV_CSV_DIR), transform)
        self.load(self.processed_paths[0])
        extra = torch.load(self.processed_paths[1])
        self.split_idx = extra["split"]
        self.num_lenient = int(extra["num_lenient"])

    @property
    def raw_dir(self) -> str:
        return str(self.data_root / Path(HIV_CSV).parent)

    @property
    def raw_file_names(self) -> list[str]:
        return [Path(HIV_CSV).name]

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "split.pt"]

    def download(self):
        raise FileNotFoundError(
            f"molhiv (CSV build): {self.data_root / HIV_CSV} is missing. Stage MoleculeNet's HIV.csv there "
            f"(`gdl-bench data prepare HIV --from DIR`), or load with source='ogb' to download the official files.")

    def process(self):
        if self.verify:
            verify_files(self.data_root, [HIV_CSV])
        frame = _read_csv_columns(Path(self.raw_paths[0]), ["smiles", "HIV_active"])
        labels = frame["HIV_active"].to_numpy(dtype=float)
        if np.isnan(labels).any():
            rows = np.flatnonzero(np.isnan(labels)).tolist()
            raise ValueError(f"{self.raw_paths[0]}: {len(rows)} rows have no HIV_active label: rows {_rows(rows)}")
        data_list, scaffolds, lenient, bad = [], [], 0, []
        for row, (s, label) in enumerate(zip(frame["smiles"], labels)):
            mol = parse_smiles(s)
            if mol is None:
                mol = parse_smiles(s, lenient=True)
                lenient += mol is not None
            if mol is None:
                bad.append(row)
                continue
            data = _graph_to_data(mol_to_graph(mol), s)
            data.y = torch.tensor([[int(label)]], dtype=torch.long)
            data_list.append(data)
            scaffolds.append(murcko_scaffold(mol))
        if bad:
            raise ValueError(f"{self.raw_paths[0]}: {len(bad)} SMILES cannot be read even without valence checks: "
                             f"rows {_rows(bad)}")
        split = scaffold_split(frame["smiles"].tolist(), cache_file=_scaffold_cache(self.data_root, HIV_CSV),
                               scaffolds=scaffolds)
        self.save(data_list, self.processed_paths[0])
        torch.save({"split": dict(zip(("train", "valid", "test"), split)), "num_lenient": lenient},
                   self.processed_paths[1])

    def get_idx_split(self) -> dict[str, torch.Tensor]:
        """``{'train', 'valid', 'test'}`` index tensors, as OGB's ``get_idx_split``."""
        return self.split_idx


def _scaffold_cache(root: Path, csv_rel: str) -> Path:
    """Where scaffolds of a raw CSV's molecules are cached (shared by all datasets built from that CSV)."""
    return root / Path(csv_rel).parent.parent / "processed" / "scaffolds.json"


def _read_csv_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path, skip_blank_lines=True)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: expected columns {columns}, missing {missing}; found {list(frame.columns)}")
    return frame


def load_molhiv(root: Path, source: str = "auto", verify: bool = True) -> Benchmark:
    """ogbg-molhiv: binary HIV activity, OGB scaffold split 80/10/10, ROC-AUC with ``Evaluator('ogbg-molhiv')``.

    ``source``: ``"ogb"`` uses OGB's ``PygGraphPropPredDataset`` (downloads into ``<root>/ogbg_molhiv`` when
    online); ``"csv"`` builds it from the staged ``HIV.csv`` (:class:`MolHIVFromCSV`); ``"auto"`` prefers official
    files already under the root, then the CSV, then the download.
    """
    from ogb.graphproppred import Evaluator

    if source not in ("auto", "ogb", "csv"):
        raise ValueError(f"molhiv: source must be 'auto', 'ogb' or 'csv', got {source!r}")
    if source == "auto":
        if any((root / MOLHIV_OFFICIAL_DIR).glob("RELEASE_v*.txt")):  # a complete official download
            source = "ogb"
        else:
            source = "csv" if (root / HIV_CSV).is_file() else "ogb"
    info = {"source": source, "split": "scaffold (OGB)"}
    if source == "ogb":
        from ogb.graphproppred import PygGraphPropPredDataset

        dataset = build_dataset("molhiv", lambda: _ogb_dataset(PygGraphPropPredDataset, root))
    else:
        dataset = MolHIVFromCSV(root, verify=verify)
        info["lenient_parsed"] = dataset.num_lenient
    split = dataset.get_idx_split()
    return Benchmark(
        name="molhiv", task="graph_multilabel", metric="rocauc",
        train=dataset[split["train"]], val=dataset[split["valid"]], test=dataset[split["test"]],
        num_features=len(OGB_ATOM_VOCAB), num_targets=1, num_edge_features=len(OGB_BOND_VOCAB),
        node_vocab=OGB_ATOM_VOCAB, edge_vocab=OGB_BOND_VOCAB, dataset=dataset,
        evaluator=Evaluator("ogbg-molhiv"), info=info)


def _ogb_dataset(cls, root: Path):
    """OGB's dataset class, with PyG's data classes allowed in its ``torch.load`` of the processed file
    (:func:`~gdl_graphs.data.cache.allow_pyg_classes`)."""
    from gdl_graphs.data.cache import allow_pyg_classes

    allow_pyg_classes()
    return cls("ogbg-molhiv", root=str(root))


# ---------------------------------------------------------------------------------------------------- MoleculeNet

# name -> (expected (smiles column, target column) header names, task, metric, split) following Wu et al. (2018)'s
# recommended split and metric for each dataset.
MOLECULENET = {
    "esol": (("smiles", "measured log solubility in mols per litre"), "graph_regression", "rmse", "random"),
    "freesolv": (("smiles", "expt"), "graph_regression", "rmse", "random"),
    "lipo": (("smiles", "exp"), "graph_regression", "rmse", "random"),
    "bbbp": (("smiles", "p_np"), "graph_multilabel", "rocauc", "scaffold"),
    "hiv": (("smiles", "HIV_active"), "graph_multilabel", "rocauc", "scaffold"),
}


PAIRS = ("bonds", "weave")
"""The edges :func:`load_moleculenet` can build: the bond graph, or every atom pair with Weave pair features."""


def _moleculenet_header_check(path: Path, key: str) -> None:
    """Check the CSV columns PyG's ``MoleculeNet`` reads by position carry the official names."""
    from torch_geometric.datasets import MoleculeNet

    _, _, _, smiles_idx, y_idx = MoleculeNet.names[key]
    with open(path, newline="") as f:
        header = f.readline().strip().split(",")
    expected = MOLECULENET[key][0]
    try:
        found = (header[smiles_idx], header[y_idx])
    except IndexError:
        found = None
    if found is None or tuple(h.strip().lower() for h in found) != tuple(e.lower() for e in expected):
        raise ValueError(f"{path}: the SMILES and target columns should be {list(expected)} (columns {smiles_idx} "
                         f"and {y_idx}); the header is {header}")


def _count_rows(path: Path) -> int:
    """Data rows of a CSV (non-empty lines after the header)."""
    with open(path, newline="") as f:
        return sum(1 for line in f.read().splitlines()[1:] if line.strip())


def load_moleculenet(root: Path, name: str, split: str | None = None, seed: int = 0, verify: bool = True,
                     pairs: str = "bonds", num_folds: int = 1) -> Benchmark:
    """A MoleculeNet dataset through PyG's ``MoleculeNet`` class at ``<root>/MoleculeNet/<name>/raw/``.

    Split (``split=None``: MoleculeNet's recommendation): ``"random"`` 80/10/10 with ``seed``, or ``"scaffold"``
    80/10/10 (OGB's rule). ``num_folds > 1`` (random split only) gives that many random splits, the ``k``-th drawn
    with seed ``seed + k``, as the benchmark's ``folds`` (MoleculeNet reports the mean over random splits); fold 0
    is the ``num_folds=1`` split. Rows RDKit cannot parse are dropped by PyG and counted in a warning; rows with a
    NaN target are kept in the dataset but left out of the splits, also with a warning.

    Edges (``pairs``): ``"bonds"``, PyG's bond graph with its 3 integer-coded bond features; or ``"weave"``, every
    atom pair with the 14 float pair features of MoleculeNet's Weave and MPNN models
    (:func:`~gdl_graphs.data.weave.weave_pairs`, computed once per molecule at load time).
    """
    from torch_geometric.datasets import MoleculeNet
    from torch_geometric.utils.smiles import e_map, x_map

    key = name.lower()
    if pairs not in PAIRS:
        raise ValueError(f"pairs must be one of {PAIRS}, got {pairs!r}")
    if key not in MOLECULENET:
        raise KeyError(f"MoleculeNet dataset {name!r} is not registered; known: {sorted(MOLECULENET)}")
    _, task, metric, default_split = MOLECULENET[key]
    split = split or default_split
    if isinstance(num_folds, bool) or not isinstance(num_folds, int) or num_folds < 1:
        raise ValueError(f"num_folds must be a positive int, got {num_folds!r}")
    if split not in ("random", "scaffold"):
        raise ValueError(f"{name}: split must be 'random' or 'scaffold', got {split!r}")
    if num_folds > 1 and split != "random":
        raise ValueError(f"num_folds={num_folds}: only the random split can be redrawn; the {split} split is "
                         "deterministic")
    display = MoleculeNet.names[key][0]
    csv_rel = f"MoleculeNet/{key}/raw/{MoleculeNet.names[key][2]}.csv"
    processed = root / "MoleculeNet" / key / "processed" / "data.pt"
    if not processed.is_file() and (root / csv_rel).is_file():
        if verify:
            verify_files(root, known_files(f"MoleculeNet/{key}/raw"))
        _moleculenet_header_check(root / csv_rel, key)
    dataset = build_dataset(display, lambda: MoleculeNet(str(root / "MoleculeNet"), key))

    info = {"split": split, "seed": seed if split == "random" else None, "num_folds": num_folds}
    if split == "random" and num_folds > 1:
        info["split_seeds"] = list(range(seed, seed + num_folds))  # fold k: seed + k
    if (root / csv_rel).is_file():
        rows = _count_rows(root / csv_rel)
        info["rows"], info["skipped_unparseable"] = rows, rows - len(dataset)
        if rows > len(dataset):
            warnings.warn(f"{display}: {rows - len(dataset)} of {rows} rows of {root / csv_rel} were skipped "
                          f"(SMILES that RDKit cannot parse); {len(dataset)} molecules remain", stacklevel=2)
    y = dataset._data.y
    valid = ~torch.isnan(y).any(dim=1) if y.size(1) == 1 else ~torch.isnan(y).all(dim=1)
    keep = valid.nonzero().view(-1)
    if len(keep) < len(dataset):
        dropped = (~valid).nonzero().view(-1).tolist()
        info["nan_targets"] = len(dropped)
        warnings.warn(f"{display}: {len(dropped)} molecules with a NaN target are left out of the splits "
                      f"(dataset indices {_rows(dropped)})", stacklevel=2)
    if split == "random":
        splits = [random_split(len(keep), seed=seed + k) for k in range(num_folds)]
    else:
        smiles = dataset._data.smiles
        splits = [scaffold_split([smiles[i] for i in keep.tolist()], cache_file=_scaffold_cache(root, csv_rel))]
    folds = [tuple(keep[part] for part in parts) for parts in splits]
    edge_features, edge_vocab = dataset.num_edge_features, tuple(len(v) for v in e_map.values())
    graphs = dataset
    if pairs == "weave":
        graphs = [weave_pairs(data) for data in dataset]
        edge_features, edge_vocab, info["pairs"] = PAIR_FEATURES, None, "weave"
    bench = Benchmark(
        name=display, task=task, metric=metric, train=None, val=None, test=None,
        num_features=dataset.num_features, num_targets=y.size(1), num_edge_features=edge_features,
        node_vocab=tuple(len(v) for v in x_map.values()), edge_vocab=edge_vocab, dataset=graphs, info=info,
        folds=folds if num_folds > 1 else None)
    return bench.with_split(*folds[0])


# ----------------------------------------------------------------------------------------------------------- ZINC

ZINC_ATOM_TYPES, ZINC_BOND_TYPES = 28, 4  # benchmarking-gnns atom_dict / bond_dict sizes (bond type 0 = none)


def load_zinc(root: Path, subset: bool = True) -> Benchmark:
    """ZINC (Dwivedi et al.): constrained solubility regression, MAE; the 12k subset (10,000 / 1,000 / 1,000) by
    default, ``subset=False`` for the full 250k. Raw pickles at ``<root>/ZINC/raw/`` (PyG ``ZINC``)."""
    from torch_geometric.datasets import ZINC

    base = root / "ZINC"
    train, val, test = (build_dataset("ZINC", lambda s=s: ZINC(str(base), subset=subset, split=s))
                        for s in ("train", "val", "test"))
    return Benchmark(name="ZINC", task="graph_regression", metric="mae", train=train, val=val, test=test,
                     num_features=1, num_targets=1, num_edge_features=1, node_vocab=(ZINC_ATOM_TYPES,),
                     edge_vocab=(ZINC_BOND_TYPES,), info={"subset": subset, "split": "official (benchmarking-gnns)"})


__all__ = ["from_smiles", "smiles_to_data", "parse_smiles", "mol_to_graph", "lenient_mol", "MolHIVFromCSV",
           "load_molhiv", "load_moleculenet", "load_zinc", "OGB_ATOM_VOCAB", "OGB_BOND_VOCAB",
           "MOLECULENET"]
