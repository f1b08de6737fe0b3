r"""QM9 (Ramakrishnan et al. 2014) with 3D coordinates, offline from the ``qm9pack`` package, and EGNN's split.

``qm9pack`` (PyPI, by the dataset's author; ``pip install gdl_graphs[qm9]``) ships the 130,831 QM9 molecules that
pass the authors' consistency check (133,885 minus the 3,054 listed in ``uncharacterized.txt``, the same set PyG's
:class:`~torch_geometric.datasets.QM9` keeps) as CSV files: XYZ coordinates in Ångström and properties in Hartree /
atomic units. :class:`QM9Pack` turns them into PyG graphs with the 12 standard targets in the order and units of
PyG's ``QM9`` (targets 0-11):

====  ========  ===============================  ==========================
 #    name      property                         unit (conversion)
====  ========  ===============================  ==========================
 0    mu        dipole moment                    D
 1    alpha     isotropic polarizability         :math:`a_0^3`
 2    homo      HOMO energy                      eV (from Hartree)
 3    lumo      LUMO energy                      eV (from Hartree)
 4    gap       HOMO-LUMO gap                    eV (from Hartree)
 5    r2        electronic spatial extent        :math:`a_0^2`
 6    zpve      zero-point vibrational energy    eV (from Hartree)
 7    U0        internal energy at 0 K           eV (from Hartree)
 8    U         internal energy at 298.15 K      eV (from Hartree)
 9    H         enthalpy at 298.15 K             eV (from Hartree)
 10   G         free energy at 298.15 K          eV (from Hartree)
 11   cv        heat capacity at 298.15 K        cal/(mol K)
====  ========  ===============================  ==========================

with PyG's factor 1 Hartree = 27.211386246 eV. Online users can load PyG's own ``QM9`` (official download) through
:func:`load_qm9` with ``source='pyg'``; it is restricted to the same 12 targets.
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.io import fs
from torch_geometric.transforms import BaseTransform, Compose

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.root import data_root

HARTREE_TO_EV = 27.211386246
"""PyG's conversion factor (``torch_geometric.datasets.qm9.HAR2EV``)."""

TARGETS = ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "cv")
"""Names of the 12 standard targets, in PyG's order (the columns of ``y``)."""

UNITS = ("D", "a0^3", "eV", "eV", "eV", "a0^2", "eV", "eV", "eV", "eV", "eV", "cal/(mol K)")

# qm9pack column of each target and its factor to PyG's unit.
_COLUMNS = (
    ("Dipole_debye", 1.0), ("Polarizability_bohr3", 1.0), ("HOMO_au", HARTREE_TO_EV), ("LUMO_au", HARTREE_TO_EV),
    ("HOMO_LUMO_gap_au", HARTREE_TO_EV), ("R2_bohr2", 1.0), ("ZPVE_au", HARTREE_TO_EV),
    ("InternalEnergy_0K_au", HARTREE_TO_EV), ("InternalEnergy_298K_au", HARTREE_TO_EV),
    ("Enthalphy_298K_au", HARTREE_TO_EV), ("GibbsFreeEnergy_298K_au", HARTREE_TO_EV),
    ("Heatcapacity_Cv_cal_mol_K", 1.0),
)
_PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
ATOM_TYPES = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
"""Elements in QM9 and their atomic numbers; ``x`` one-hot encodes them in this order."""

NUM_MOLECULES = 130_831
"""Molecules in QM9 after removing the 3,054 uncharacterized ones (qm9pack and PyG's ``QM9`` alike)."""


def target_index(name: str) -> int:
    """Column of ``y`` holding the target ``name`` (one of :data:`TARGETS`, case-insensitive)."""
    lookup = {t.lower(): k for k, t in enumerate(TARGETS)}
    if name.lower() not in lookup:
        raise ValueError(f"unknown QM9 target {name!r}; choose from {TARGETS}")
    return lookup[name.lower()]


def qm9pack_dir() -> Path:
    """Folder of the CSV files inside the installed ``qm9pack`` (found without importing it)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("QM9Pack needs the 'qm9pack' package: pip install 'gdl_graphs[qm9]' (or pip install "
                          "qm9pack); online, load_qm9(source='pyg') downloads PyG's QM9 instead")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_qm9pack(folder: str | os.PathLike, limit: int | None = None) -> pd.DataFrame:
    """The qm9pack CSV rows (columns used here only) sorted by QM9 index; the first ``limit`` rows if given."""
    columns = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", *(c for c, _ in _COLUMNS)]
    frames, remaining = [], limit
    for name in _PARTS:
        if remaining is not None and remaining <= 0:
            break
        frame = pd.read_csv(Path(folder) / name, usecols=columns, nrows=remaining)
        frames.append(frame)
        remaining = None if remaining is None else remaining - len(frame)
    return pd.concat(frames, ignore_index=True).sort_values("Index", kind="stable").reset_index(drop=True)


def parse_qm9pack(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Vectorised parse of qm9pack rows: all atoms of all molecules at once.

    Returns:
        ``num_atoms`` ``[M]``, ``z`` ``[sum N]`` atomic numbers, ``pos`` ``[sum N, 3]`` in Ångström, ``y`` ``[M, 12]``
        in PyG's units (float64), ``index`` ``[M]`` the QM9 index (1-based, as in the file names).
    """
    num_atoms = frame["N_atoms"].to_numpy(np.int64)
    symbols = ",".join(frame["Elements"]).translate(str.maketrans("", "", "[]' ")).split(",")
    unknown = set(symbols) - set(ATOM_TYPES)
    if unknown:
        raise ValueError(f"qm9pack rows hold unknown elements {sorted(unknown)}")
    z = np.fromiter((ATOM_TYPES[s] for s in symbols), dtype=np.int64, count=len(symbols))
    coords = np.array(",".join(frame["XYZ_Ang"]).translate(str.maketrans("", "", "[] ")).split(","), dtype=np.float64)
    if z.size != num_atoms.sum() or coords.size != 3 * num_atoms.sum():
        raise ValueError(f"qm9pack rows are inconsistent: N_atoms sums to {num_atoms.sum()}, but "
                         f"{z.size} elements and {coords.size} coordinates were read")
    y = np.stack([frame[column].to_numpy(np.float64) * factor for column, factor in _COLUMNS], axis=1)
    return {"num_atoms": num_atoms, "z": z, "pos": coords.reshape(-1, 3), "y": y,
            "index": frame["Index"].to_numpy(np.int64)}


def collate_qm9pack(parsed: dict[str, np.ndarray], smiles: list[str]) -> tuple[Data, dict[str, torch.Tensor]]:
    """All molecules in :class:`~torch_geometric.data.InMemoryDataset`'s storage format, built in one go.

    Equal to ``InMemoryDataset.collate`` of one ``Data`` per molecule (a test checks it), without creating
    130,831 ``Data`` objects first: processing all of QM9 takes seconds instead of half a minute.
    """
    z = torch.from_numpy(parsed["z"])
    node_slices = torch.from_numpy(np.concatenate([[0], np.cumsum(parsed["num_atoms"])]))
    graph_slices = torch.arange(len(parsed["num_atoms"]) + 1)
    data = Data(z=z, x=(z.unsqueeze(-1) == torch.tensor(list(ATOM_TYPES.values()))).float(),
                pos=torch.from_numpy(parsed["pos"]).float(), y=torch.from_numpy(parsed["y"]).float(),
                idx=torch.from_numpy(parsed["index"] - 1), smiles=smiles)
    slices = {"z": node_slices, "x": node_slices, "pos": node_slices, "y": graph_slices, "idx": graph_slices,
              "smiles": graph_slices}
    return data, slices


class QM9Pack(InMemoryDataset):
    r"""QM9 from the ``qm9pack`` package as PyG graphs (no download; see the module docstring for the targets).

    Each molecule is a :class:`~torch_geometric.data.Data` with

    * ``z`` ``[N]``: atomic numbers (H, C, N, O, F),
    * ``x`` ``[N, 5]``: one-hot of H, C, N, O, F (the first five features of PyG's ``QM9``),
    * ``pos`` ``[N, 3]``: DFT (B3LYP/6-31G(2df,p)) coordinates in Ångström,
    * ``y`` ``[1, 12]``: the 12 standard targets in PyG's order and units,
    * ``idx``: the 0-based QM9 index (PyG's ``idx``; molecule ``dsgdb9nsd_{idx+1:06d}``),
    * ``smiles``: the SMILES of the QM9 XYZ file.

    No bonds are stored: EGNN-style models work on the complete graph of each molecule (``edge_index=None``).
    Processing all 130,831 molecules is cached under ``<root>/processed``.

    Args:
        root: dataset folder (default ``data_root() / "QM9Pack"``).
        limit: keep only the first ``limit`` molecules by QM9 index (small, fast subsets for tests and smoke
            runs; the first molecules are the smallest ones); ``None`` for all.
        transform, force_reload: as in :class:`~torch_geometric.data.InMemoryDataset`.
    """

    def __init__(self, root: str | os.PathLike | None = None, limit: int | None = None,
                 transform: Callable | None = None, force_reload: bool = False):
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {limit}")
        self.limit = limit
        root = data_root(root) / "QM9Pack" if root is None else data_root(root)
        super().__init__(str(root), transform, force_reload=force_reload)
        self.load(self.processed_paths[0])

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> str:
        return f"qm9pack_{'all' if self.limit is None else self.limit}.pt"

    def process(self) -> None:
        frame = read_qm9pack(qm9pack_dir(), self.limit)
        data, slices = collate_qm9pack(parse_qm9pack(frame), list(frame["SMILES"]))
        fs.torch_save((data.to_dict(), slices, Data), self.processed_paths[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)})"


class StandardTargets(BaseTransform):
    """Keep the 12 standard targets (columns 0-11) of PyG's 19-column QM9 ``y``."""

    def forward(self, data: Data) -> Data:
        data.y = data.y[:, :len(TARGETS)]
        return data


def load_qm9(root: str | os.PathLike | None = None, source: str = "qm9pack", transform: Callable | None = None,
             **kwargs) -> InMemoryDataset:
    """QM9 from ``qm9pack`` (offline, :class:`QM9Pack`) or from PyG's official download (``source='pyg'``).

    Both give ``z``, ``pos`` and ``y`` ``[1, 12]`` in the same order and units; PyG's version also holds bonds
    (``edge_index``, ``edge_attr``) and 11 atom features. PyG's is stored under ``root`` (default
    ``data_root() / "QM9"``) and needs internet the first time.

    Args:
        root: dataset folder.
        source: ``'qm9pack'`` or ``'pyg'``.
        transform: applied on access (after the target selection for ``'pyg'``).
        **kwargs: passed to the dataset class (``limit`` for ``'qm9pack'``, ``force_reload`` for both).
    """
    if source == "qm9pack":
        return QM9Pack(root, transform=transform, **kwargs)
    if source == "pyg":
        from torch_geometric.datasets import QM9
        root = data_root(root) / "QM9" if root is None else data_root(root)
        keep = StandardTargets()
        return QM9(str(root), transform=keep if transform is None else Compose([keep, transform]), **kwargs)
    raise ValueError(f"source must be 'qm9pack' or 'pyg', got {source!r}")


EGNN_NUM_TRAIN = 100_000
"""Training molecules of the Cormorant / EGNN split of the full QM9."""


def egnn_split(dataset, seed: int = 0, num_train: int | None = EGNN_NUM_TRAIN,
               test_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The QM9 split of Cormorant (Anderson et al. 2019), used by EGNN: 100,000 train, 10% test, the rest valid.

    Cormorant draws ``np.random.seed(0); perm = np.random.permutation(M)`` over the ``M = 130,831`` characterized
    molecules in QM9-index order and cuts it into train, valid, test in that order. On :class:`QM9Pack` (or PyG's
    ``QM9``, same molecules, same order) the default arguments reproduce those index sets: 100,000 / 17,748 / 13,083
    (the paper's "100K / 18K / 13K").

    Args:
        dataset: a dataset (its ``len`` is used) or the number of molecules.
        seed: seed of the permutation (legacy NumPy ``RandomState``, as Cormorant).
        num_train: training molecules; ``None`` keeps the full split's proportion, ``round(M * 100000 / 130831)``
            (100,000 on the full set, 2,293 of a 3,000-molecule subset).
        test_fraction: fraction of all molecules in the test set (``int(test_fraction * M)``).

    Returns:
        ``(train_idx, val_idx, test_idx)``, LongTensors of positions in ``dataset``.
    """
    size = dataset if isinstance(dataset, int) else len(dataset)
    if num_train is None:
        num_train = round(size * EGNN_NUM_TRAIN / NUM_MOLECULES)
    num_test = int(test_fraction * size)
    if not 0 <= test_fraction < 1 or num_train < 1 or num_train + num_test >= size:
        hint = " (for a subset, pass num_train=None or a smaller num_train)" if num_train >= size else ""
        raise ValueError(f"cannot split {size} molecules into num_train={num_train}, "
                         f"test_fraction={test_fraction} and a non-empty validation set{hint}")
    perm = torch.from_numpy(np.random.RandomState(seed).permutation(size))
    num_valid = size - num_train - num_test
    return perm[:num_train], perm[num_train:num_train + num_valid], perm[num_train + num_valid:]


class SelectTarget(BaseTransform):
    """Keep one column of ``y`` (``[1, 12] -> [1, 1]``)."""

    def __init__(self, target: int):
        self.target = target

    def forward(self, data: Data) -> Data:
        data = copy.copy(data)
        data.y = data.y[:, self.target:self.target + 1]
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({TARGETS[self.target]!r})"


def load_qm9_benchmark(root: Path, target: int | str | None = None, source: str = "qm9pack", seed: int = 0,
                       num_train: int | None = None, limit: int | None = None, **kwargs) -> Benchmark:
    """QM9 as a :class:`~gdl_graphs.data.benchmark.Benchmark` (``load_benchmark("QM9", ...)``): EGNN's split, MAE.

    ``source="qm9pack"`` reads the installed ``qm9pack`` package (offline, cached under ``<root>/QM9Pack``);
    ``"pyg"`` is PyG's ``QM9`` download (``<root>/QM9``, needs internet once). ``y`` holds the 12 standard targets
    in PyG's order and units; ``target`` (index or name such as ``"homo"``) keeps one column, in that unit (eV for
    the energies: multiply MAEs by 1000 for the meV of the EGNN paper).

    Args:
        root: the data root.
        target: ``None`` (all 12), a column index or a name of :data:`TARGETS`.
        source: ``"qm9pack"`` or ``"pyg"``.
        seed: seed of :func:`egnn_split` (0: Cormorant / EGNN's split).
        num_train: training molecules (default: 100,000 on the full set, the same proportion of a subset).
        limit: keep only the first ``limit`` molecules by QM9 index (small, fast subsets for tests and CPU smoke
            runs: 3,000 load in well under a second). The split is then drawn over the subset.
        **kwargs: passed to the dataset class (``force_reload``).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if source == "qm9pack":
        dataset = load_qm9(root / "QM9Pack", source=source, limit=limit, **kwargs)
    else:
        dataset = load_qm9(root / "QM9", source=source, **kwargs)
        dataset = dataset if limit is None else dataset[:limit]
    num_targets = len(TARGETS)
    if target is not None:
        index = target_index(target) if isinstance(target, str) else int(target)
        if not 0 <= index < num_targets:
            raise ValueError(f"QM9: target must be in [0, {num_targets}) or a name in {TARGETS}, got {target!r}")
        select = SelectTarget(index)
        dataset.transform = select if dataset.transform is None else Compose([dataset.transform, select])
        num_targets = 1
    train, val, test = egnn_split(dataset, seed=seed, num_train=num_train)
    first = dataset[0]
    return Benchmark(name="QM9", task="graph_regression", metric="mae", train=dataset[train], val=dataset[val],
                     test=dataset[test], num_features=first.x.size(-1), num_targets=num_targets,
                     num_edge_features=0 if first.edge_attr is None else first.edge_attr.size(-1), dataset=dataset,
                     info={"target": target if target is None else TARGETS[index], "source": source,
                           "limit": limit, "split": "EGNN / Cormorant (RandomState(seed).permutation)",
                           "seed": seed, "units": UNITS if target is None else UNITS[index]})
