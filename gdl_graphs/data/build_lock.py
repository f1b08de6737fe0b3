"""One process at a time builds (or reads) the processed caches of a data root.

Several processes load the same dataset at once: the ranks of a ``torchrun`` job, the workers of a suite sharing a
store, a notebook next to a running suite. Without coordination each one finds "no cache yet", processes the raw
files and writes ``processed/*.pt`` while another one reads the half-written file (seen: ``PytorchStreamReader
failed reading file data/2`` on rank 1 of a 2-process DDP run, which then hung rank 0 in its first collective).

:func:`building` holds an exclusive lock file (``<root>/.gdl-build.lock``, through the ``filelock`` package) around
a load: the first process builds, the others wait and then read the finished cache. A root the process cannot write
(a read-only mirror) cannot be built into either, so loading proceeds without the lock there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_NAME = ".gdl-build.lock"
"""File name of the lock, directly under the data root."""


@contextlib.contextmanager
def building(root: str | os.PathLike) -> Iterator[None]:
    """Hold the data root's build lock for the duration of the block (re-entrant within a process)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(root / LOCK_NAME, is_singleton=True)
        try:
            lock.acquire(blocking=False)
        except Timeout:
            print(f"[gdl_graphs] waiting for another process to finish loading a dataset in {root} "
                  f"(lock {root / LOCK_NAME})", file=sys.stderr, flush=True)
            lock.acquire()
    except OSError:  # read-only root: nothing can be built there, so there is nothing to serialise
        yield
        return
    try:
        yield
    finally:
        lock.release()


__all__ = ["building", "LOCK_NAME"]
