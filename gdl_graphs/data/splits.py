"""Official split rules: OGB's scaffold split, seeded random splits (one, or repeated hold-outs), and the
stratified 10-fold protocol of Errica et al. (2020).

Hand-written where no library exposes the exact rule: the scaffold split follows the pretrain-gnns / OGB code
(Hu et al. 2020) step by step on top of RDKit's :mod:`~rdkit.Chem.Scaffolds.MurckoScaffold`; the CV folds use
scikit-learn's ``StratifiedKFold`` and ``train_test_split`` as Errica et al. do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gdl_graphs.data.smiles import parse_smiles


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    return tuple(float(f) for f in fractions)


def murcko_scaffold(molecule) -> str:
    """Bemis-Murcko scaffold SMILES with chirality (``MurckoScaffoldSmiles(includeChirality=True)``) of a SMILES
    string or an RDKit molecule.

    A molecule that current RDKit rejects on valence rules (a few HIV metal complexes that older RDKit releases,
    which OGB used, accepted) is read without the valence check and keeps a scaffold rather than being dropped.
    """
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    mol = parse_smiles(molecule, lenient=True) if isinstance(molecule, str) else molecule
    if mol is None:
        raise ValueError(f"cannot compute a scaffold: RDKit cannot parse SMILES {molecule!r}")
    try:
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=True)
    except Chem.rdchem.MolSanitizeException:  # a leniently parsed molecule: same steps, no valence check
        scaffold = Chem.MurckoDecompose(mol)
        scaffold.UpdatePropertyCache(strict=False)
        Chem.GetSymmSSSR(scaffold)
        return Chem.MolToSmiles(scaffold, isomericSmiles=True)


def scaffold_split(smiles: Sequence[str], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                   cache_file: str | Path | None = None, scaffolds: Sequence[str] | None = None
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """OGB / pretrain-gnns scaffold split: group molecules by Murcko scaffold, sort the groups by
    ``(size, first index)`` descending, and fill train, then valid, then test greedily.

    ``scaffolds`` may pass precomputed scaffolds (one per SMILES); ``cache_file`` (JSON, SMILES -> scaffold) keeps
    them between runs and may be shared by datasets built from the same raw file. Returns three sorted ``long``
    index tensors.
    """
    frac_train, frac_valid, _ = _check_fractions(fractions)
    cache: dict[str, str] = {}
    if cache_file is not None and Path(cache_file).is_file():
        cache = json.loads(Path(cache_file).read_text())
    if scaffolds is not None:
        if len(scaffolds) != len(smiles):
            raise ValueError(f"scaffold_split: {len(smiles)} SMILES but {len(scaffolds)} scaffolds")
        known = dict(zip(smiles, scaffolds))
        missing = [s for s in known if s not in cache]
        cache.update(known)
    else:
        missing = [s for s in dict.fromkeys(smiles) if s not in cache]
        cache.update((s, murcko_scaffold(s)) for s in missing)
    if cache_file is not None and missing:
        Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
        Path(cache_file).write_text(json.dumps(cache))

    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        groups.setdefault(cache[s], []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)

    n = len(smiles)
    train_cutoff, valid_cutoff = frac_train * n, (frac_train + frac_valid) * n
    train, valid, test = [], [], []
    for group in ordered:
        if len(train) + len(group) > train_cutoff:
            if len(train) + len(valid) + len(group) > valid_cutoff:
                test += group
            else:
                valid += group
        else:
            train += group
    return tuple(torch.tensor(sorted(part), dtype=torch.long) for part in (train, valid, test))


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded random split of ``range(n)`` with DeepChem's cut points ``int(f_train n)``, ``int((f_train + f_valid) n)``
    (MoleculeNet's 'random' splitter)."""
    frac_train, frac_valid, _ = _check_fractions(fractions)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut1, cut2 = int(frac_train * n), int((frac_train + frac_valid) * n)
    parts = perm[:cut1], perm[cut1:cut2], perm[cut2:]
    return tuple(p.sort().values for p in parts)


def stratified_folds(labels: Tensor | np.ndarray, num_folds: int = 10, val_fraction: float = 0.1, seed: int = 0
                     ) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Errica et al. (2020) protocol: stratified ``num_folds``-fold outer CV; inside each outer training part a
    stratified hold-out of ``val_fraction`` for model selection. Returns ``(train, val, test)`` per fold.

    ``val_fraction=0`` is Xu et al.'s (2019) protocol: no hold-out, the model trains on the whole outer training
    part and ``val`` is the test fold itself (their code reports the test folds' accuracy per epoch)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels).reshape(-1)
    outer = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    folds = []
    for trainval, test in outer.split(np.zeros(len(y)), y):
        if val_fraction == 0:
            folds.append(tuple(torch.from_numpy(np.sort(p)).long() for p in (trainval, test, test)))
            continue
        train, val = holdout(torch.from_numpy(trainval), y, val_fraction, seed)
        folds.append((train, val, torch.from_numpy(np.sort(test)).long()))
    return folds


def random_holdouts(labels: Tensor | np.ndarray, count: int = 10, fractions: Sequence[float] = (0.8, 0.1, 0.1),
                    stratified: bool = True, seed: int = 0) -> list[tuple[Tensor, Tensor, Tensor]]:
    """``count`` independent random ``(train, val, test)`` splits, the ``k``-th drawn with seed ``seed + k``: the
    repeated hold-out of papers that report the mean over random splits rather than over CV folds.

    ``stratified=False`` cuts a random permutation at ``int(f_train n)`` and ``int((f_train + f_val) n)`` (as
    ``torch.utils.data.random_split`` with those lengths, SAGPool's code); ``stratified=True`` takes a stratified
    ``f_test`` test part, then a stratified ``f_val / (1 - f_test)`` of the rest for validation (scikit-learn's
    ``train_test_split`` twice, Bianchi et al.'s code)."""
    from sklearn.model_selection import train_test_split

    frac_train, frac_valid, frac_test = _check_fractions(fractions)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    if min(frac_train, frac_test) == 0:
        raise ValueError(f"fractions: the training and test parts must be non-empty, got {tuple(fractions)}")
    y = np.asarray(labels).reshape(-1)
    splits = []
    for k in range(count):
        if not stratified:
            splits.append(random_split(len(y), fractions, seed + k))
            continue
        rest, test = train_test_split(np.arange(len(y)), test_size=frac_test, stratify=y, random_state=seed + k)
        train, val = holdout(torch.from_numpy(rest), y, frac_valid / (1 - frac_test), seed + k)
        splits.append((train, val, torch.from_numpy(np.sort(test)).long()))
    return splits


def holdout(train: Tensor, labels: Tensor | np.ndarray, val_fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split the indices ``train`` into ``(train, val)`` with a stratified hold-out of ``val_fraction`` (scikit-learn's
    ``train_test_split``, ``seed``), both sorted; ``val_fraction=0`` returns ``train`` and an empty ``val``."""
    from sklearn.model_selection import train_test_split

    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    train = torch.as_tensor(train, dtype=torch.long)
    if val_fraction == 0:
        return train.sort().values, torch.empty(0, dtype=torch.long)
    y = np.asarray(labels).reshape(-1)[train.numpy()]
    kept, val = train_test_split(train.numpy(), test_size=val_fraction, stratify=y, random_state=seed)
    return torch.from_numpy(np.sort(kept)).long(), torch.from_numpy(np.sort(val)).long()
