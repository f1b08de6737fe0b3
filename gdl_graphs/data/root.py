"""The one place that decides where benchmark data lives.

Resolution order: an explicit ``root`` argument (the CLI's ``--data-root``) > the ``$GDL_DATA`` environment variable
> the default root. The default does not depend on the working directory (a notebook, a worker or a subprocess
started elsewhere finds the same files): in a source checkout it is the checkout's ``datasets/`` folder (marked by
its ``README.md``), in an installed package ``$XDG_DATA_HOME/gdl_graphs`` (``~/.local/share/gdl_graphs``). Under the
root, raw files sit where PyG's / OGB's own dataset classes expect them (``<root>/MUTAG/raw/``,
``<root>/MoleculeNet/esol/raw/``, ``<root>/traffic/METR-LA/`` ...).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DATA_ENV = "GDL_DATA"
REQUIRE_ENV = "GDL_REQUIRE_DATA"
CHECKOUT_ROOT = Path(__file__).resolve().parents[2] / "datasets"


def default_root() -> Path:
    """The data root used when neither an argument nor ``$GDL_DATA`` names one (independent of the working directory)."""
    if (CHECKOUT_ROOT / "README.md").is_file():
        return CHECKOUT_ROOT
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "gdl_graphs"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Return the data root as an absolute path: ``root`` > ``$GDL_DATA`` > :func:`default_root`.

    The folder is not created here; loaders create the sub-folders they write into.
    """
    if root is None or str(root) == "":
        root = os.environ.get(DATA_ENV) or default_root()
    return Path(root).expanduser().resolve()


def export_data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root once and put it in ``$GDL_DATA``, so workers and subprocesses started from here use it."""
    resolved = data_root(root)
    os.environ[DATA_ENV] = str(resolved)
    return resolved


def require_data() -> bool:
    """Whether missing staged data is an error rather than a reason to skip (``$GDL_REQUIRE_DATA=1``)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes"}


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]*$")


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it is a plain dataset name (letters, digits, ``_ . + -``; no path separators, no ``..``),
    else raise :class:`ValueError`: names become folders under the data root and must never point outside it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"dataset name {name!r} is not a name: use letters, digits and '_', '.', '+', '-' only "
                         f"(no path separators, no '..', not empty); it becomes a folder under the data root")
    return name
