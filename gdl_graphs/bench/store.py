"""Results store: one row per run in SQLite or PostgreSQL (through SQLAlchemy Core, one code path for both).

A row holds the run's identity (config and its hash, the primary key) and its state: ``pending`` -> ``running``
(claimed by one worker, with a lease that the worker renews) -> ``done`` / ``diverged`` / ``failed``. Done rows hold
the code and library versions, the device (and CPU threads), the parameter count, the best validation epoch, the
metrics of every split at that epoch, the learning curve (every epoch's metrics, as zlib-compressed JSON) and the
time per epoch; diverged and failed rows the epoch and a message.

Workers that share a database claim runs with an atomic conditional ``UPDATE`` (after ``SELECT ... FOR UPDATE
SKIP LOCKED`` on PostgreSQL), so each run is trained by one worker; a run whose lease expired (its worker died) is
claimed again and resumes from its checkpoint. The schema carries a version number (table ``gdl_schema``); an older
database is migrated before any training, a newer one refused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.parse
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import torch
import torch_geometric
from sqlalchemy.exc import SQLAlchemyError

import gdl_graphs
from gdl_graphs.bench.config import ConfigError

SCHEMA_VERSION = 4  # 1: the unversioned table of finished runs; 2: run states, leases, messages; 3: threads;
# 4: the learning curve compressed (`curve_zlib` replaces the JSON text column `curve`)
FINAL_STATES = ("done", "diverged")  # a failed run is tried again by the next `gdl-bench run`

metadata = sa.MetaData()
RUNS = sa.Table(
    "runs", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("suite", sa.Text),
    sa.Column("dataset", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("fold", sa.Integer, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("code_version", sa.Text),
    sa.Column("torch_version", sa.Text),
    sa.Column("pyg_version", sa.Text),
    sa.Column("device", sa.Text),
    sa.Column("threads", sa.Integer),  # torch intra-op threads on CPU: float sums, and so results, depend on it
    sa.Column("params", sa.Integer),
    sa.Column("metric", sa.Text),
    sa.Column("best_epoch", sa.Integer),
    sa.Column("epochs_run", sa.Integer),
    sa.Column("sec_per_epoch", sa.Float),
    sa.Column("val", sa.Float),
    sa.Column("test", sa.Float),
    sa.Column("metrics", sa.Text),
    sa.Column("curve_zlib", sa.LargeBinary),  # zlib(JSON of the curve): a 5000-epoch curve is 430 kB as text
    sa.Column("finished_at", sa.Text),
    sa.Column("state", sa.String(16), nullable=False, server_default="done"),
    sa.Column("message", sa.Text),
    sa.Column("owner", sa.Text),
    sa.Column("lease_until", sa.Float),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
)
SCHEMA_INFO = sa.Table("gdl_schema", metadata, sa.Column("name", sa.String(64), primary_key=True),
                       sa.Column("value", sa.Text, nullable=False))
_JSON_COLUMNS = ("metrics", "config")
_TEXT_CURVE = "curve"  # the column that held the curve as JSON text up to schema 3
_SCHEMA_LOCK = 0x6764_6C62  # PostgreSQL advisory lock held while one worker creates or migrates the schema


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
    threads: int | None = None  # torch intra-op threads of a CPU run (its float reduction order depends on them)
    model_object: Any = field(default=None, repr=False, compare=False)  # the trained module (not stored)


def code_version() -> str:
    """Package version plus the git commit when run from a checkout, ``.dirty`` when the package's own files have
    uncommitted changes (a suite's stored runs or other files of the checkout changing do not count)."""
    package = Path(gdl_graphs.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return gdl_graphs.__version__
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--untracked-files=no", "--",
                                "."], capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{gdl_graphs.__version__}+{commit.stdout.strip()}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return gdl_graphs.__version__


def worker_id() -> str:
    """``host:pid:random``: who holds a claim (unique per process and per call)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str) -> bool:
    """Whether claim ``owner`` is a process of this machine that no longer runs (its lease need not expire): gone,
    or a zombie (killed, not yet reaped by the process that started it)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    try:  # Linux: the state letter follows the parenthesised command name
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def database_url(db: str | os.PathLike) -> sa.URL:
    """``--db`` as an SQLAlchemy URL: a file path is SQLite; ``postgresql://...`` uses psycopg (version 3)."""
    text = str(db)
    if "://" not in text:
        return sa.URL.create("sqlite", database=text)
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError as error:
        raise ConfigError(f"--db: {error}") from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"--db: only SQLite files and postgresql:// URLs are supported, got {text!r}")
    return url


def _sqlite_engine(url: sa.URL, read_only: bool) -> sa.Engine:
    path = url.database
    if read_only:  # open without creating anything: file:...?mode=ro
        url = sa.URL.create("sqlite", database=f"file:{urllib.parse.quote(path)}?mode=ro", query={"uri": "true"})
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        # a write lock from the first statement, so a read-then-update (a claim) is atomic across processes
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class ResultStore:
    """The results database ``db``: a SQLite file (created with its folder on first use) or a PostgreSQL URL.

    The schema is checked and migrated when the store opens (``read_only=True``, for reports, neither creates nor
    migrates anything and refuses a database without the ``runs`` table).
    """

    def __init__(self, db: str | os.PathLike, read_only: bool = False):
        self.url = database_url(db)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.path = Path(self.url.database) if self.is_sqlite else None
        self.label = str(self.path) if self.is_sqlite else self.url.render_as_string(hide_password=True)
        self.read_only = read_only
        self._version = None
        self._compressed_curves = False  # set when a migration compressed text curves (SQLite then vacuums)
        try:
            if self.is_sqlite:
                if read_only and not self.path.is_file():
                    raise ConfigError(f"--db: no results database at {self.label!r} (run `gdl-bench run` first)")
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                self.engine = _sqlite_engine(self.url, read_only)
            else:
                self.engine = sa.create_engine(self.url, pool_pre_ping=True)
            self.columns = self._check_schema()
        except OSError as error:
            raise ConfigError(f"--db: cannot create {self.label!r} ({error.strerror or error})") from None
        except SQLAlchemyError as error:
            raise ConfigError(f"--db: {self.label!r} is not a usable results database "
                              f"({_reason(error)})") from None

    # ------------------------------------------------------------------------------------------------ schema

    def _check_schema(self) -> set[str]:
        """Create, check or migrate the schema (one worker at a time); returns the columns of ``runs``."""
        if self.read_only:
            with self.engine.connect() as connection:
                return self._checked_columns(connection)
        with self.engine.begin() as connection:
            if not self.is_sqlite:  # SQLite's BEGIN IMMEDIATE already serialises this transaction
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK})
            columns = self._checked_columns(connection)
        if self._compressed_curves and self.is_sqlite:
            raw = self.engine.raw_connection()  # no BEGIN (see `_sqlite_engine`): VACUUM returns the text pages
            try:
                raw.cursor().execute("VACUUM")
            finally:
                raw.close()
        return columns

    def _checked_columns(self, connection) -> set[str]:
        inspector = sa.inspect(connection)
        tables = set(inspector.get_table_names())
        if "runs" not in tables:
            if self.read_only:
                raise ConfigError(f"--db: {self.label!r} holds no gdl-bench results (no table 'runs')")
            metadata.create_all(connection)
            self._set_version(connection)
            return {column.name for column in RUNS.columns}
        columns = {column["name"] for column in inspector.get_columns("runs")}
        if "key" not in columns:
            raise ConfigError(f"--db: {self.label!r} has a table 'runs' that gdl-bench did not write (no 'key')")
        version = _stored_version(connection, tables)
        if version > SCHEMA_VERSION:
            raise ConfigError(f"--db: {self.label!r} has schema version {version}, newer than this gdl_graphs "
                              f"({SCHEMA_VERSION}); upgrade gdl_graphs")
        if version < SCHEMA_VERSION and not self.read_only:
            self._migrate(connection, columns)
            columns = (columns - {_TEXT_CURVE}) | {column.name for column in RUNS.columns}
        return columns

    def _migrate(self, connection, columns: set[str]) -> None:
        """Add the columns an older schema lacks (its rows are finished runs: state ``done``), compress the curves
        of a text ``curve`` column into ``curve_zlib`` and drop that column, then set the version."""
        for column in RUNS.columns:
            if column.name in columns:
                continue
            kind = column.type.compile(dialect=connection.dialect)
            default = f" NOT NULL DEFAULT {column.server_default.arg!r}" if column.server_default is not None \
                else ""
            connection.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {column.name} {kind}{default}")
        if _TEXT_CURVE in columns:
            text_curve = sa.column(_TEXT_CURVE, sa.Text)
            keys = connection.execute(sa.select(RUNS.c.key).select_from(RUNS).where(text_curve.is_not(None)))
            for key in keys.scalars().all():  # one curve in memory at a time: a store's curves can be large
                text = connection.execute(sa.select(text_curve).select_from(RUNS).where(RUNS.c.key == key)).scalar()
                connection.execute(RUNS.update().where(RUNS.c.key == key)
                                   .values(curve_zlib=zlib.compress(text.encode())))
            connection.exec_driver_sql(f"ALTER TABLE runs DROP COLUMN {_TEXT_CURVE}")
            self._compressed_curves = True
        SCHEMA_INFO.create(connection, checkfirst=True)
        self._set_version(connection)

    def _set_version(self, connection) -> None:
        connection.execute(SCHEMA_INFO.delete().where(SCHEMA_INFO.c.name == "version"))
        connection.execute(SCHEMA_INFO.insert().values(name="version", value=str(SCHEMA_VERSION)))

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as connection:
            return _stored_version(connection, set(sa.inspect(connection).get_table_names()))

    # ------------------------------------------------------------------------------------------------ claims

    def register(self, runs, suite: str | None) -> None:
        """Add a ``pending`` row for every run not in the store yet; ``failed`` runs become ``pending`` again."""
        rows = [{"key": run.key, "suite": suite, "dataset": run.dataset, "model": run.model, "seed": run.seed,
                 "fold": run.fold, "config": run.to_json(), "state": "pending", "attempts": 0} for run in runs]
        keys = [row["key"] for row in rows]
        try:
            with self.engine.begin() as connection:
                present = set()
                for chunk in _chunks(keys):
                    present |= set(connection.execute(sa.select(RUNS.c.key).where(RUNS.c.key.in_(chunk))).scalars())
                missing = [row for row in rows if row["key"] not in present]
                if missing:
                    connection.execute(self._insert_ignoring_duplicates(), missing)
                for chunk in _chunks(keys):
                    connection.execute(RUNS.update().where(RUNS.c.key.in_(chunk), RUNS.c.state == "failed")
                                       .values(state="pending", owner=None, lease_until=None))
        except SQLAlchemyError as error:
            raise ConfigError(f"--db: cannot write to {self.label!r} ({_reason(error)})") from None

    def _insert_ignoring_duplicates(self):
        """``INSERT ... ON CONFLICT DO NOTHING`` (a concurrent worker may register the same runs)."""
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(RUNS).on_conflict_do_nothing(index_elements=["key"])

    @staticmethod
    def _claimable(now: float, dead: list[str]):
        """Pending, or running with an expired lease or a dead owner on this machine."""
        return sa.or_(RUNS.c.state == "pending",
                      sa.and_(RUNS.c.state == "running", sa.or_(RUNS.c.lease_until.is_(None),
                                                                RUNS.c.lease_until < now, RUNS.c.owner.in_(dead))))

    def claim(self, keys: list[str], owner: str, lease: float) -> tuple[str, bool] | None:
        """Atomically take the first claimable run of ``keys`` (pending, or running with an expired lease or whose
        worker on this machine is gone) for ``owner`` for ``lease`` seconds; returns ``(key, taken_over)`` or
        ``None`` when none is claimable."""
        order = {key: i for i, key in enumerate(keys)}
        for _ in range(len(keys) + 1):
            now = time.time()
            with self.engine.begin() as connection:
                owners = set()
                for chunk in _chunks(keys):
                    owners |= set(connection.execute(sa.select(RUNS.c.owner).distinct().where(
                        RUNS.c.key.in_(chunk), RUNS.c.state == "running")).scalars())
                dead = [other for other in owners if other and _dead_here(other)]
                candidates = set()
                for chunk in _chunks(keys):
                    candidates |= set(connection.execute(sa.select(RUNS.c.key).where(
                        RUNS.c.key.in_(chunk), self._claimable(now, dead))).scalars())
            if not candidates:
                return None
            for key in sorted(candidates, key=order.__getitem__):
                with self.engine.begin() as connection:
                    row = connection.execute(
                        sa.select(RUNS.c.state).where(RUNS.c.key == key, self._claimable(now, dead))
                        .with_for_update(skip_locked=True)).first()  # PostgreSQL: skip rows another worker holds
                    if row is None:
                        continue
                    updated = connection.execute(
                        RUNS.update().where(RUNS.c.key == key, self._claimable(now, dead))
                        .values(state="running", owner=owner, lease_until=now + lease, attempts=RUNS.c.attempts + 1))
                    if updated.rowcount == 1:
                        return key, row.state == "running"
        return None

    def renew(self, key: str, owner: str, lease: float) -> bool:
        """Extend ``owner``'s lease on ``key``; ``False`` when the run is no longer held by ``owner``."""
        with self.engine.begin() as connection:
            updated = connection.execute(RUNS.update().where(
                RUNS.c.key == key, RUNS.c.owner == owner, RUNS.c.state == "running")
                .values(lease_until=time.time() + lease))
        return updated.rowcount == 1

    def release(self, key: str, owner: str) -> None:
        """Give an unfinished claim back (``pending``) so that another worker can take it at once."""
        with self.engine.begin() as connection:
            connection.execute(RUNS.update().where(RUNS.c.key == key, RUNS.c.owner == owner,
                                                   RUNS.c.state == "running")
                               .values(state="pending", owner=None, lease_until=None))

    def states(self, keys: list[str]) -> dict[str, str]:
        """``key -> state`` of the runs of ``keys`` that are in the store."""
        result = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(keys):
                result.update((key, state) for key, state in connection.execute(
                    sa.select(RUNS.c.key, RUNS.c.state).where(RUNS.c.key.in_(chunk))))
        return result

    # ---------------------------------------------------------------------------------------------- outcomes

    def add(self, result: RunResult) -> None:
        """Store a finished run (state ``done``) and commit at once; inserts the row if it was never claimed."""
        if self._version is None:
            self._version = code_version()
        row = {
            "suite": result.suite, "dataset": result.dataset, "model": result.model,
            "seed": result.seed, "fold": result.fold, "config": result.config, "code_version": self._version,
            "torch_version": torch.__version__, "pyg_version": torch_geometric.__version__, "device": result.device,
            "threads": result.threads,
            "params": result.params, "metric": result.metric, "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run, "sec_per_epoch": result.sec_per_epoch, "val": result.val,
            "test": result.test, "metrics": json.dumps(result.metrics), "curve_zlib": _packed(result.curve),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "state": "done", "message": None,
            "owner": None, "lease_until": None,
        }
        self._upsert(result.key, row)

    def mark(self, run, state: str, message: str, epoch: int | None = None, suite: str | None = None) -> None:
        """Store the outcome of a run that did not finish normally (``diverged`` or ``failed``)."""
        if state not in ("diverged", "failed"):
            raise ValueError(f"state must be 'diverged' or 'failed', got {state!r}")
        self._upsert(run.key, {"suite": suite, "dataset": run.dataset, "model": run.model, "seed": run.seed,
                               "fold": run.fold, "config": run.to_json(), "state": state, "message": message,
                               "epochs_run": epoch, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                               "owner": None, "lease_until": None})

    def _upsert(self, key: str, row: dict) -> None:
        with self.engine.begin() as connection:
            updated = connection.execute(RUNS.update().where(RUNS.c.key == key).values(**row))
            if updated.rowcount == 0:
                connection.execute(RUNS.insert().values(key=key, **row))

    def rows(self, suite: str | None = None, dataset: str | None = None, states=("done",)) -> list[dict]:
        """Stored runs in ``states`` (optionally of one suite / dataset) as dicts, JSON columns decoded. A database
        of an older schema reads as well (its rows are finished runs; columns it lacks read as ``None``)."""
        present = [column for column in RUNS.columns if column.name in self.columns]
        if _TEXT_CURVE in self.columns:  # a schema-3 store opened read-only
            present.append(sa.column(_TEXT_CURVE, sa.Text))
        query = sa.select(*present).select_from(RUNS)
        if "state" in self.columns:
            query = query.where(RUNS.c.state.in_(states))
        elif "done" not in states:
            return []
        if suite:
            query = query.where(RUNS.c.suite == suite)
        if dataset:
            query = query.where(RUNS.c.dataset == dataset)
        query = query.order_by(RUNS.c.dataset, RUNS.c.model, RUNS.c.seed, RUNS.c.fold)
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(query).mappings()]
        for row in rows:
            for column in RUNS.columns:
                row.setdefault(column.name, "done" if column.name == "state" else None)
            for column in _JSON_COLUMNS:
                row[column] = json.loads(row[column]) if row[column] else None
            packed, text = row.pop("curve_zlib"), row.pop(_TEXT_CURVE, None)
            row["curve"] = _unpacked(packed) if packed is not None else json.loads(text) if text else None
        return rows

    def close(self) -> None:
        self.engine.dispose()


def _packed(curve: list[dict]) -> bytes:
    return zlib.compress(json.dumps(curve).encode())


def _unpacked(packed: bytes) -> list[dict]:
    return json.loads(zlib.decompress(packed))


def _stored_version(connection, tables: set[str]) -> int:
    if "gdl_schema" not in tables:
        return 1
    value = connection.execute(sa.select(SCHEMA_INFO.c.value).where(SCHEMA_INFO.c.name == "version")).scalar()
    return int(value) if value is not None else 1


def _chunks(keys: list[str], size: int = 500):
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def _reason(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).splitlines()[0]
