"""SMILES -> RDKit molecule, strict or lenient: the one parser of the molecule loaders and the scaffold split."""

from __future__ import annotations


def lenient_mol(smiles: str):
    """Parse ``smiles`` skipping RDKit's valence check (partial sanitisation); ``None`` if even that fails.

    Used only where an official dataset contains molecules that older RDKit releases accepted (7 of HIV's 41,127
    metal complexes), so the dataset keeps its official size.
    """
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    mol.UpdatePropertyCache(strict=False)
    flags = Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES
    if Chem.SanitizeMol(mol, flags, catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE:
        return None
    return mol


def parse_smiles(smiles: str, lenient: bool = False):
    """RDKit molecule of ``smiles``; ``None`` if RDKit cannot parse it or it has no atoms. With ``lenient=True`` a
    SMILES failing only RDKit's valence check is read by :func:`lenient_mol`."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None and lenient:
        mol = lenient_mol(smiles)
    return mol if mol is not None and mol.GetNumAtoms() > 0 else None
