"""A run's files in the checkpoint folder (``--checkpoint-dir``, default ``<db>.ckpt``): ``<key>.pt``, the training
state after the last epoch, and ``<key>.result.json``, a finished run's result until the store has it.

Every file is written to a temporary name unique to the writer (host, process, random) and renamed into place, so
a kill during a write leaves the previous file intact and workers sharing the folder never share a temporary file.
A checkpoint that cannot be read is moved aside (``<key>.pt.corrupt-<time>``) with a warning naming it, and the run
starts from scratch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
import uuid
import warnings
from pathlib import Path

import torch

from gdl_graphs.bench.config import ConfigError
from gdl_graphs.bench.store import RunResult


def _temporary(path: Path) -> Path:
    return path.with_name(f"{path.name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: Path, write) -> None:
    """Call ``write(temporary_path)``, then rename the file to ``path`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def save_checkpoint(state: dict, path: Path) -> None:
    write_atomic(path, lambda temporary: torch.save(state, temporary))


def load_checkpoint(path: Path, key: str) -> dict | None:
    """The saved state of run ``key`` at ``path``; ``None`` when there is none, it belongs to another config, or
    it is unreadable (then moved aside with a warning)."""
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or "state" not in saved:
            raise ValueError("not a gdl-bench checkpoint")
    except Exception as error:  # torch.load raises RuntimeError, EOFError, UnpicklingError, zipfile errors...
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            os.replace(path, aside)
        except FileNotFoundError:  # another process (a DDP rank) moved it first
            return None
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        warnings.warn(f"checkpoint {path} is unreadable ({reason}); moved it to {aside} and restarting the run "
                      f"from scratch", RuntimeWarning, stacklevel=2)
        return None
    return saved if saved.get("key") == key else None


class RunFiles:
    """Where run ``key`` keeps its checkpoint and, until it is stored, its result."""

    def __init__(self, directory: Path, key: str):
        self.checkpoint = directory / f"{key}.pt"
        self.result = directory / f"{key}.result.json"

    def keep_result(self, result: RunResult) -> None:
        """Write the finished result next to the checkpoint (before the store is tried)."""
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name != "model_object"}
        write_atomic(self.result, lambda temporary: temporary.write_text(json.dumps(fields)))

    def kept_result(self) -> RunResult | None:
        """A result that was trained but not stored yet (a kill or a database error came in between)."""
        if not self.result.exists():
            return None
        try:
            return RunResult(**json.loads(self.result.read_text()))
        except (ValueError, TypeError) as error:
            warnings.warn(f"kept result {self.result} is unreadable ({error}); the run is trained again",
                          RuntimeWarning, stacklevel=2)
            self.result.unlink(missing_ok=True)
            return None

    def remove(self) -> None:
        """Delete the run's files (only once the store holds its outcome)."""
        self.checkpoint.unlink(missing_ok=True)
        self.result.unlink(missing_ok=True)


def check_writable(directory: Path, option: str = "--checkpoint-dir") -> None:
    """Raise :class:`ConfigError` unless files can be created in ``directory`` (created if missing)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = _temporary(directory / ".write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"{option}: cannot write checkpoints to {str(directory)!r} "
                          f"({error.strerror or error})") from None
