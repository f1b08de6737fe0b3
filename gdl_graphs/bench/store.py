"""Results store: one SQLite file, one row per finished run, committed as soon as the run ends.

A row holds the run's config and its hash (the primary key), the code and library versions, the device, the
parameter count, the best validation epoch, the metrics of every split at that epoch, the learning curve and the
time per epoch. Checkpoints of unfinished runs live beside the database in ``<db>.ckpt/<key>.pt``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch_geometric

import gdl_graphs
from gdl_graphs.bench.config import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    suite TEXT,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    fold INTEGER NOT NULL,
    config TEXT NOT NULL,
    code_version TEXT,
    torch_version TEXT,
    pyg_version TEXT,
    device TEXT,
    params INTEGER,
    metric TEXT,
    best_epoch INTEGER,
    epochs_run INTEGER,
    sec_per_epoch REAL,
    val REAL,
    test REAL,
    metrics TEXT,
    curve TEXT,
    finished_at TEXT
)
"""


@dataclass
class RunResult:
    """What one finished run produced (a row of the store)."""

    key: str
    dataset: str
    model: str
    seed: int
    fold: int
    config: str
    device: str
    params: int
    metric: str
    best_epoch: int
    epochs_run: int
    sec_per_epoch: float
    val: float
    test: float
    metrics: dict
    curve: list
    suite: str | None = None
    model_object: Any = field(default=None, repr=False, compare=False)  # the trained module (not stored)


def code_version() -> str:
    """Package version plus the git commit (``+dirty`` with uncommitted changes) when run from a checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return gdl_graphs.__version__
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{gdl_graphs.__version__}+{commit.stdout.strip()}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return gdl_graphs.__version__


class ResultStore:
    """The SQLite results database at ``path`` (created with its folder on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.connection = sqlite3.connect(self.path, timeout=60)
            self.connection.execute(SCHEMA)
            self.connection.commit()
        except sqlite3.DatabaseError as error:
            raise ConfigError(f"--db: {str(self.path)!r} is not a usable SQLite database ({error})") from None
        self._version = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".ckpt")

    def checkpoint_path(self, key: str) -> Path:
        return self.checkpoint_dir / f"{key}.pt"

    def finished(self, key: str) -> bool:
        return self.connection.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def add(self, result: RunResult) -> None:
        """Insert a finished run and commit at once (a later crash cannot lose it)."""
        if self._version is None:
            self._version = code_version()
        row = {
            "key": result.key, "suite": result.suite, "dataset": result.dataset, "model": result.model,
            "seed": result.seed, "fold": result.fold, "config": result.config, "code_version": self._version,
            "torch_version": torch.__version__, "pyg_version": torch_geometric.__version__, "device": result.device,
            "params": result.params, "metric": result.metric, "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run, "sec_per_epoch": result.sec_per_epoch, "val": result.val,
            "test": result.test, "metrics": json.dumps(result.metrics), "curve": json.dumps(result.curve),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.connection.execute(f"INSERT OR REPLACE INTO runs ({columns}) VALUES ({marks})", tuple(row.values()))
        self.connection.commit()

    def rows(self, suite: str | None = None, dataset: str | None = None) -> list[dict]:
        """All stored runs (optionally of one suite / dataset) as dicts, JSON columns decoded."""
        query, args = "SELECT * FROM runs", []
        conditions = []
        if suite:
            conditions.append("suite = ?")
            args.append(suite)
        if dataset:
            conditions.append("dataset = ?")
            args.append(dataset)
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        cursor = self.connection.execute(query + " ORDER BY dataset, model, seed, fold", args)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values)) for values in cursor.fetchall()]
        for row in rows:
            for column in ("metrics", "curve", "config"):
                row[column] = json.loads(row[column]) if row[column] else None
        return rows

    def close(self) -> None:
        self.connection.close()
