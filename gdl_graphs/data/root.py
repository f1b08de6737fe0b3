"""The one place that decides where benchmark data lives.

Resolution order: an explicit ``root`` argument (the CLI's ``--data-root``) > the ``$GDL_DATA`` environment variable
> ``./datasets`` relative to the current directory. Under the root, raw files sit where PyG's / OGB's own dataset
classes expect them (``<root>/MUTAG/raw/``, ``<root>/MoleculeNet/esol/raw/``, ``<root>/traffic/METR-LA/`` ...).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "GDL_DATA"
REQUIRE_ENV = "GDL_REQUIRE_DATA"
DEFAULT_ROOT = "datasets"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data root as an absolute path: ``root`` > ``$GDL_DATA`` > ``./datasets``.

    The folder is not created here; loaders create the sub-folders they write into.
    """
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV) or DEFAULT_ROOT
    return Path(root).expanduser().resolve()


def require_data() -> bool:
    """Whether missing staged data is an error rather than a reason to skip (``$GDL_REQUIRE_DATA=1``, set by CI)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}
