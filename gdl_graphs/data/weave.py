"""Weave pair featurisation (Kearnes et al. 2016), the input of MoleculeNet's Weave and MPNN models: a molecule as
the complete graph of its atom pairs, each pair described by its bond, its ring membership and its graph distance.

The pair features follow DeepChem's ``WeaveFeaturizer`` (``graph_distance=True``) as recalled, 14 per pair:

======  ===========================================================================================
column  feature
======  ===========================================================================================
0-3     bond type one-hot: single, double, triple, aromatic (all 0 for atoms not bonded)
4-5     the bond is conjugated; the bond is in a ring
6       the two atoms share a ring (never for an atom with itself)
7-13    graph distance one-hot: 1, 2, ..., 7 bonds (all 0 for the atom itself, beyond 7, or another fragment)
======  ===========================================================================================
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data

PAIR_FEATURES = 14
"""Features per atom pair."""

MAX_DISTANCE = 7
"""Graph distances one-hot encoded: 1 to this many bonds."""


def weave_pairs(data: Data) -> Data:
    """``data`` (a molecule with ``smiles``, atoms in RDKit's order, as PyG's ``MoleculeNet`` and
    :func:`~gdl_graphs.data.molecules.from_smiles` give) with every ordered atom pair as an edge, the atom with
    itself included (DeepChem's pairs), and the pair features of the module docstring as ``edge_attr``
    ``[N^2, 14]`` (float). Node features, targets and other attributes are kept.

    Raises:
        ValueError: if ``data`` has no ``smiles``, or RDKit's molecule for it has another number of atoms.
    """
    from rdkit import Chem

    smiles = getattr(data, "smiles", None)
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) else None
    if mol is None or mol.GetNumAtoms() != data.num_nodes:
        found = "no smiles" if not isinstance(smiles, str) else (
            "a SMILES RDKit cannot parse" if mol is None else f"{mol.GetNumAtoms()} atoms in its SMILES")
        raise ValueError(f"weave_pairs needs the molecule's SMILES with its {data.num_nodes} atoms; got {found}")
    n = mol.GetNumAtoms()
    pairs = torch.zeros(n, n, PAIR_FEATURES)
    bond_types = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC)
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        kind = bond.GetBondType()
        row = torch.tensor([kind == t for t in bond_types] + [bond.GetIsConjugated(), bond.IsInRing()],
                           dtype=torch.float)
        pairs[i, j, :6] = pairs[j, i, :6] = row
    for ring in mol.GetRingInfo().AtomRings():
        atoms = torch.tensor(ring)
        pairs[atoms.unsqueeze(1), atoms.unsqueeze(0), 6] = 1.0
    pairs[torch.arange(n), torch.arange(n), 6] = 0.0
    distance = torch.from_numpy(Chem.GetDistanceMatrix(mol)).round().long()  # 1e8 between fragments
    for d in range(1, MAX_DISTANCE + 1):
        pairs[..., 6 + d] = (distance == d).float()
    target, source = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")  # pairs[i, j]: edge j -> i
    out = data.clone()
    out.edge_index = torch.stack([source.reshape(-1), target.reshape(-1)])
    out.edge_attr = pairs.view(n * n, PAIR_FEATURES)
    return out
