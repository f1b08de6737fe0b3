"""LRGB Peptides-func (Dwivedi et al. 2022, Long Range Graph Benchmark) in the LRGB paper's own layout.

``<root>/peptides-functional/raw/peptide_multi_class_dataset.csv.gz`` (columns ``smiles``, ``peptide_seq``,
``labels`` as a list of 10 binary values, ``identifier``) and ``<root>/peptides-functional/
splits_random_stratified_peptide.pickle`` (a dict of ``train`` / ``val`` / ``test`` NumPy index arrays), as the
``PeptidesFunctionalDataset`` of the LRGB / GraphGPS code lays them out. Features are OGB's ``smiles2graph``
(9 integer atom and 3 integer bond features), labels ``y`` ``[1, 10]`` float, the split 10,873 / 2,331 / 2,331, the
metric average precision over the 10 tasks (macro; OGB's ``ap``, which LRGB uses).

The split pickle is code as much as data: it is unpickled only after its SHA-256 (and the LRGB loader's MD5
constant) matched, and even then only NumPy arrays may be rebuilt from it (:class:`SplitUnpickler`).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ogb.graphproppred import Evaluator
from torch_geometric.data import InMemoryDataset

from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.cache import open_cached
from gdl_graphs.data.checksums import ChecksumError, file_digest, verify_files

PEPTIDES_DIR = "peptides-functional"
CSV = f"{PEPTIDES_DIR}/raw/peptide_multi_class_dataset.csv.gz"
SPLIT = f"{PEPTIDES_DIR}/splits_random_stratified_peptide.pickle"
LRGB_MD5 = {CSV: "701eb743e899f4d793f0e13c8fa5a1b4", SPLIT: "5a0114bdadc80b94fc7ae974f13ef061"}
"""The MD5 constants of the LRGB loader (``self.version`` and ``self.md5sum_stratified_split``)."""
NUM_TASKS = 10
OFFICIAL_SPLIT_SIZES = (10_873, 2_331, 2_331)
HINT = ("Stage the LRGB files there (`gdl-bench data prepare peptides-func --from DIR`); the LRGB loader downloads "
        "them from https://www.dropbox.com/s/ol2v01usvaxbsr8/peptide_multi_class_dataset.csv.gz and "
        "https://www.dropbox.com/s/j4zcnx2eipuo0xz/splits_random_stratified_peptide.pickle.")


def md5_file(path: str | Path) -> str:
    """Hex MD5 of a file (what the LRGB loader checks)."""
    return file_digest(path, "md5")


def verify_lrgb_files(root: Path, relpaths=(CSV, SPLIT)) -> None:
    """Check the SHA-256 (known hashes) and the LRGB loader's MD5 of the Peptides-func raw files; raise
    :class:`ChecksumError` naming the file on a mismatch."""
    verify_files(root, relpaths)
    for rel in relpaths:
        actual = md5_file(root / rel)
        if actual != LRGB_MD5[rel]:
            raise ChecksumError(f"{root / rel}: md5 {actual} is not the LRGB loader's {LRGB_MD5[rel]}; the file is "
                                f"corrupt or from another release (pass verify=False only if you trust this copy)")


class SplitUnpickler(pickle.Unpickler):
    """Unpickles only what a dict of NumPy arrays needs; any other global (a function, a class to call) is refused,
    so a tampered pickle cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the split pickle refers to {module}.{name}; only NumPy arrays are allowed")
        return super().find_class(module, name)


def read_split(path: Path, num_graphs: int) -> dict[str, torch.Tensor]:
    """The official ``train`` / ``val`` / ``test`` indices from the split pickle (hash it first: see
    :func:`verify_lrgb_files`); checked to be disjoint index arrays into ``num_graphs`` graphs."""
    with open(path, "rb") as f:
        try:
            split = SplitUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, ValueError) as err:
            raise ValueError(f"{path}: not a readable split pickle ({err})") from err
    if not isinstance(split, dict) or sorted(split) != ["test", "train", "val"]:
        raise ValueError(f"{path}: expected a dict with keys train / val / test, got "
                         f"{sorted(split) if isinstance(split, dict) else type(split).__name__}")
    out = {}
    for key in ("train", "val", "test"):
        idx = np.asarray(split[key])
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{path}: split[{key!r}] must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= num_graphs):
            raise ValueError(f"{path}: split[{key!r}] holds indices outside 0..{num_graphs - 1}")
        out[key] = torch.from_numpy(idx.astype(np.int64))
    joined = torch.cat(list(out.values()))
    if joined.unique().numel() != joined.numel():
        raise ValueError(f"{path}: the train / val / test indices overlap")
    return out


def _labels(text: str, row: int, path: Path) -> list[float]:
    try:
        values = json.loads(text)
    except (TypeError, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != NUM_TASKS or any(v not in (0, 1) for v in values):
        raise ValueError(f"{path}: row {row}: labels must be a list of {NUM_TASKS} values 0/1, found {text!r}")
    return [float(v) for v in values]


class PeptidesFunctional(InMemoryDataset):
    """The 15,535 peptides of LRGB Peptides-func as PyG graphs: ``x`` ``[n, 9]`` and ``edge_attr`` ``[e, 3]`` (OGB
    ``smiles2graph`` integer features), ``y`` ``[1, 10]`` float (as the LRGB loader), ``smiles``.

    Raw files and cache under ``<root>/peptides-functional/`` (``processed/data.pt``, ``processed/split.pt``). The
    first build parses every SMILES with RDKit (a progress bar shows it); later loads read the cache.
    Use :func:`load_peptides_func` for the checked, cached load.
    """

    def __init__(self, root: str | Path, transform=None, force_reload: bool = False, progress: bool = True):
        self.data_root, self.progress = Path(root), progress
        super().__init__(str(self.data_root / PEPTIDES_DIR), transform, force_reload=force_reload)
        self.load(self.processed_paths[0])
        self.split_idx = torch.load(self.processed_paths[1], weights_only=True)

    @property
    def raw_file_names(self) -> list[str]:
        return [Path(CSV).name]

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "split.pt"]

    def download(self):
        raise FileNotFoundError(f"peptides-func: {self.data_root / CSV} is missing. {HINT}")

    def process(self):
        from tqdm import tqdm

        from gdl_graphs.data.molecules import _graph_to_data, mol_to_graph, parse_smiles

        path = Path(self.raw_paths[0])
        frame = pd.read_csv(path)
        missing = [c for c in ("smiles", "labels") if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: expected columns smiles and labels, missing {missing}; found "
                             f"{list(frame.columns)}")
        data_list, bad = [], []
        for row, (smiles, labels) in enumerate(tqdm(zip(frame["smiles"], frame["labels"]), total=len(frame),
                                                    desc="peptides-func: RDKit + smiles2graph", unit="mol",
                                                    disable=not self.progress, mininterval=1.0)):
            mol = parse_smiles(smiles)
            if mol is None:
                bad.append(row)
                continue
            data = _graph_to_data(mol_to_graph(mol), smiles)
            data.y = torch.tensor([_labels(labels, row, path)])
            data_list.append(data)
        if bad:
            raise ValueError(f"{path}: RDKit cannot parse the SMILES of rows {bad[:20]}{' ...' if len(bad) > 20 else ''}"
                             f" ({len(bad)} of {len(frame)})")
        split = read_split(self.data_root / SPLIT, len(data_list))
        self.save(data_list, self.processed_paths[0])
        torch.save(split, self.processed_paths[1])

    def get_idx_split(self) -> dict[str, torch.Tensor]:
        """``{'train', 'val', 'test'}`` index tensors, as the LRGB loader's ``get_idx_split``."""
        return self.split_idx


class AveragePrecisionEvaluator(Evaluator):
    """LRGB's metric for Peptides-func: average precision per task, averaged over the tasks that have both a
    positive and a negative label (NaN labels ignored). This is OGB's ``Evaluator`` with ``eval_metric='ap'`` (whose
    code LRGB's ``eval_ap`` copies) for ``num_tasks`` tasks; ``eval({'y_true', 'y_pred'})`` returns
    ``{'ap': value}``, inputs ``[num_graphs, num_tasks]`` arrays or tensors."""

    def __init__(self, num_tasks: int = NUM_TASKS, name: str = "peptides-func"):  # OGB's __init__ reads its table
        self.name, self.num_tasks, self.eval_metric = name, num_tasks, "ap"

    def __repr__(self) -> str:
        return f"AveragePrecisionEvaluator(name={self.name!r}, num_tasks={self.num_tasks})"


def load_peptides_func(root: Path, verify: bool = True, progress: bool = True) -> Benchmark:
    """LRGB Peptides-func: 10-task multi-label binary classification of peptides, the official split, AP over the
    tasks (:class:`AveragePrecisionEvaluator`). ``verify=False`` skips the hash checks of the raw files (the split
    pickle is still read with :class:`SplitUnpickler`)."""
    from gdl_graphs.data.molecules import OGB_ATOM_VOCAB, OGB_BOND_VOCAB

    def build(force: bool) -> PeptidesFunctional:
        if force and verify:
            verify_lrgb_files(root)
        return PeptidesFunctional(root, force_reload=force, progress=progress)

    dataset = open_cached("peptides-func", root, [CSV, SPLIT], root / PEPTIDES_DIR / "processed",
                          ["data.pt", "split.pt"], build, verify=False, hint=HINT)  # build() verifies
    split = dataset.get_idx_split()
    return Benchmark(
        name="peptides-func", task="graph_multilabel", metric="ap",
        train=dataset[split["train"]], val=dataset[split["val"]], test=dataset[split["test"]],
        num_features=len(OGB_ATOM_VOCAB), num_targets=NUM_TASKS, num_edge_features=len(OGB_BOND_VOCAB),
        node_vocab=OGB_ATOM_VOCAB, edge_vocab=OGB_BOND_VOCAB, dataset=dataset,
        evaluator=AveragePrecisionEvaluator(NUM_TASKS),
        info={"split": "official LRGB random stratified split", "source": str(root / PEPTIDES_DIR),
              "official_split_sizes": OFFICIAL_SPLIT_SIZES})


__all__ = ["PeptidesFunctional", "load_peptides_func", "AveragePrecisionEvaluator", "SplitUnpickler",
           "read_split", "verify_lrgb_files", "LRGB_MD5"]
