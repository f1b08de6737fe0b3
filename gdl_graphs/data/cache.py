"""Processed caches that know which raw files they were built from.

A loader names the raw files a dataset is built from and the processed files it writes; :func:`open_cached`

1. refuses to start when an expected raw file is missing (``FileNotFoundError`` naming it), so no dataset is ever
   processed from part of its files;
2. decides whether the cache is current: the record ``processed/raw_files.json`` (written after every build) lists
   the SHA-256, size and modification time of each raw file and the size of each processed file. The cache is
   rebuilt when there is no record (no cache, or one built by an older version), when the set of raw files or any
   raw file's content changed, or when a processed file is missing or has another size (truncated);
3. before a rebuild, checks the raw files against their known hashes (:func:`~gdl_graphs.data.checksums
   .verify_files`, unless ``verify=False``);
4. loads, and when a processed file that passed the checks still cannot be read, rebuilds it with a warning naming
   the file (it is derived data) instead of PyTorch's message without a path.

Hashing happens only when a file's size or modification time changed since the record, so a current cache costs one
``stat`` per file.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gdl_graphs.data.checksums import sha256_file, verify_files

RECORD = "raw_files.json"
"""File name of the record, inside the processed folder."""

UNREADABLE = (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, ValueError,
              TypeError, AttributeError)
"""What ``torch.load`` / PyG raise on a damaged processed file."""


def allow_pyg_classes() -> None:
    """Allow PyG's data classes in ``torch.load(weights_only=True)`` for the whole process.

    OGB 1.3.6 loads its processed files with a plain ``torch.load``, which torch >= 2.6 refuses for PyG objects.
    PyG registers ``Data`` itself at import; a ``torch.serialization.safe_globals([...])`` block around OGB's load
    would *remove* ``Data`` again on exit, and every later PyG load would then warn "Weights only load failed" and
    fall back to ``weights_only=False``. Adding them for good keeps both working.
    """
    from torch_geometric.data import Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    torch.serialization.add_safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage])


def require_files(root: Path, relpaths: Sequence[str], what: str, hint: str = "") -> None:
    """Raise :class:`FileNotFoundError` naming every expected raw file that is missing under ``root``."""
    missing = [rel for rel in relpaths if not (Path(root) / rel).is_file()]
    if missing:
        listed = ", ".join(str(Path(root) / rel) for rel in missing)
        raise FileNotFoundError(f"{what}: expected raw file{'s' if len(missing) > 1 else ''} {listed} "
                                f"{'are' if len(missing) > 1 else 'is'} missing; nothing was processed. "
                                f"{hint}".rstrip())


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def stale_reason(processed_dir: Path, root: Path, raw: Sequence[str], processed: Sequence[str]) -> str | None:
    """``None`` when the cache in ``processed_dir`` was built from the raw files ``raw`` as they are now and its
    files ``processed`` are complete; otherwise why it must be (re)built."""
    processed_dir, root = Path(processed_dir), Path(root)
    record_path = processed_dir / RECORD
    if not record_path.is_file():
        if any((processed_dir / name).exists() for name in processed):
            return "the cache records no raw-file hashes (built before they were recorded)"
        return "no cache yet"
    try:
        record = json.loads(record_path.read_text())
        raw_record, processed_record = record["raw"], record["processed"]
    except (ValueError, KeyError, TypeError):
        return f"its record {record_path} is unreadable"
    if sorted(raw_record) != sorted(raw):
        return f"the raw files changed (built from {sorted(raw_record)}, now {sorted(raw)})"
    for rel in raw:
        entry = raw_record[rel]
        if list(_stat(root / rel)) != [entry["size"], entry["mtime_ns"]] and sha256_file(root / rel) != entry["sha256"]:
            return f"{root / rel} changed since the cache was built"
    for name in processed:
        path = processed_dir / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != processed_record.get(name):
            return f"{path} has {path.stat().st_size} bytes, {processed_record.get(name)} were written (truncated?)"
    return None


def write_record(processed_dir: Path, root: Path, raw: Sequence[str], processed: Sequence[str]) -> None:
    """Record the raw files' hashes and the processed files' sizes after a build."""
    processed_dir, root = Path(processed_dir), Path(root)
    raw_record = {}
    for rel in raw:
        size, mtime = _stat(root / rel)
        raw_record[rel] = {"sha256": sha256_file(root / rel), "size": size, "mtime_ns": mtime}
    record = {"raw": raw_record, "processed": {name: (processed_dir / name).stat().st_size for name in processed}}
    tmp = processed_dir / f"{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, processed_dir / RECORD)


def open_cached(what: str, root: Path, raw: Sequence[str], processed_dir: Path, processed: Sequence[str],
                build: Callable[[bool], Any], verify: bool = True, hint: str = "") -> Any:
    """Load a dataset through its processed cache, rebuilding the cache when it is stale (see the module docstring).

    Args:
        what: the dataset's name, for messages.
        root: the data root; ``raw`` are paths relative to it, all of which must exist.
        processed_dir, processed: the folder of the processed files and their names.
        build: ``build(force_reload)`` constructs the dataset (e.g. a PyG ``InMemoryDataset`` with
            ``force_reload=``), processing the raw files when ``force_reload`` is true.
        verify: check the raw files' known SHA-256 before a rebuild.
        hint: how to get a missing raw file (appended to the error).
    """
    root, processed_dir = Path(root), Path(processed_dir)
    require_files(root, raw, what, hint)
    reason = stale_reason(processed_dir, root, raw, processed)
    if reason is not None:
        if verify:
            verify_files(root, raw)
        if reason != "no cache yet":
            warnings.warn(f"{what}: rebuilding the processed cache in {processed_dir}: {reason}", stacklevel=3)
    try:
        dataset = build(reason is not None)
    except UNREADABLE as err:
        if reason is not None:
            raise
        names = ", ".join(str(processed_dir / n) for n in processed)
        warnings.warn(f"{what}: the processed cache {names} cannot be read ({type(err).__name__}: {err}); "
                      f"rebuilding it from the raw files", stacklevel=3)
        if verify:
            verify_files(root, raw)
        try:
            dataset = build(True)
        except UNREADABLE as again:
            raise RuntimeError(f"{what}: rebuilding {names} failed: {again}") from again
        reason = "unreadable cache"
    if reason is not None:
        write_record(processed_dir, root, raw, processed)
    return dataset


__all__ = ["open_cached", "require_files", "stale_reason", "write_record", "allow_pyg_classes", "RECORD"]
