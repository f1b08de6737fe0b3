"""Run a list of :class:`RunConfig` as one worker among any number sharing a results store.

The worker registers the runs, then repeatedly claims one (atomically, in the store), trains it while a heartbeat
renews its lease, keeps the result on disk, stores it, and only then removes the run's checkpoint and kept result.
A run whose worker died (lease expired) is claimed again and resumes from its checkpoint; a run that diverges is
stored as ``diverged`` and the suite goes on. When nothing is left to claim, the worker waits for the runs other
workers hold, so that it can take over any whose worker dies, and returns once every run has an outcome.
Protocol experiments (:mod:`~gdl_graphs.bench.protocols`) run fold by fold: a fold's known runs, then the runs
those results make due (:func:`run_experiments`).

Threads: torch's intra-op thread count is set once per process (:func:`configure_threads`), so that processes
sharing a machine do not oversubscribe its cores.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import torch
from sqlalchemy.exc import SQLAlchemyError

from gdl_graphs.bench.checkpoint import RunFiles, check_writable
from gdl_graphs.bench.config import ConfigError, RunConfig, StoreError
from gdl_graphs.bench.distributed import DistributedContext
from gdl_graphs.bench.store import FINAL_STATES, ResultStore, RunResult, worker_id
from gdl_graphs.bench.training import Diverged, train_run
from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.checksums import ChecksumError
from gdl_graphs.data.registry import load_benchmark

DEFAULT_LEASE = 60.0
STORE_TRIES = 5


class BenchmarkCache:
    """Loads each (dataset, options) once per process."""

    def __init__(self, root=None):
        self.root, self.loaded = root, {}

    def get(self, config: RunConfig) -> Benchmark:
        key = (config.dataset, repr(sorted(config.dataset_options.items())))
        if key not in self.loaded:
            try:
                self.loaded[key] = load_benchmark(config.dataset, self.root, **config.dataset_options)
            except (ChecksumError, FileNotFoundError) as error:  # one line, exit 2 (as `data prepare`)
                message = str(error)
                raise ConfigError(message if config.dataset in message else f"{config.dataset}: {message}") \
                    from None
        return self.loaded[key].fold(config.fold)


class Heartbeat:
    """Renews ``owner``'s lease on ``key`` from a background thread every third of the lease."""

    def __init__(self, store: ResultStore, key: str, owner: str, lease: float, log: Callable[[str], None]):
        self.store, self.key, self.owner, self.lease, self.log = store, key, owner, lease, log
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{key}")

    def _beat(self) -> None:
        while not self.stop.wait(self.lease / 3):
            try:
                if not self.store.renew(self.key, self.owner, self.lease):
                    self.log(f"[gdl-bench]   warning: the claim on run {self.key} was taken over by another worker")
                    return
            except SQLAlchemyError as error:
                self.log(f"[gdl-bench]   warning: could not renew the lease on run {self.key} ({error})")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def store_result(store: ResultStore, result: RunResult, files: RunFiles, log: Callable[[str], None],
                 tries: int = STORE_TRIES, wait: float = 1.0) -> None:
    """Store ``result`` (kept on disk first), retrying with backoff; remove the run's files once it is stored."""
    files.keep_result(result)
    for attempt in range(1, tries + 1):
        try:
            store.add(result)
            break
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", error)).splitlines()[0]
            if attempt == tries:
                raise StoreError(f"could not store {result.dataset}/{result.model} seed={result.seed} "
                                 f"fold={result.fold} in {store.label} after {tries} tries ({reason}); its result "
                                 f"is kept in {files.result} and the next `gdl-bench run` stores it") from None
            log(f"[gdl-bench]   storing failed ({reason}); retrying in {wait * 2 ** (attempt - 1):.0f} s")
            time.sleep(wait * 2 ** (attempt - 1))
    files.remove()


def default_threads(environ=os.environ) -> int:
    """Intra-op threads when none are asked for: ``$OMP_NUM_THREADS`` if set, else the cores this process may use
    divided by the processes of this machine's job (``$LOCAL_WORLD_SIZE`` under torchrun, else 1)."""
    if environ.get("OMP_NUM_THREADS", "").isdigit() and int(environ["OMP_NUM_THREADS"]) > 0:
        return int(environ["OMP_NUM_THREADS"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = int(environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(workers, 1))


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default :func:`default_threads`); returns the number set."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive int, got {threads!r}")
    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


def run_experiments(experiments, store: ResultStore, **kwargs) -> list[RunResult]:
    """Train the runs of protocol experiments: those without model selection, then the model selections fold by
    fold (a fold's selection runs, then the restarts its stored results make due), so that an interrupted protocol
    leaves finished folds behind, not selection runs of every fold and no restart; ``kwargs`` go to
    :func:`run_all`."""
    results = run_all([run for e in experiments if e.selection is None for run in e.runs], store, **kwargs)
    selecting = [experiment for experiment in experiments if experiment.selection is not None]
    for fold in sorted({run.fold for experiment in selecting for run in experiment.runs}):
        results += run_all([run for e in selecting for run in e.runs if run.fold == fold], store, **kwargs)
        rows = {row["key"]: row for row in store.rows()}
        results += run_all([run for e in selecting for run in e.selection.final_runs(rows) if run.fold == fold],
                           store, **kwargs)
    return results


def run_all(runs: list[RunConfig], store: ResultStore, suite: str | None = None, root=None, progress: bool = True,
            log: Callable[[str], None] | None = None, context: DistributedContext | None = None,
            checkpoint_dir: str | Path | None = None, lease: float = DEFAULT_LEASE,
            threads: int | None = None) -> list[RunResult]:
    """Execute ``runs`` (with any other workers on the same store); returns the results this worker trained.

    Checkpoints go to ``checkpoint_dir`` (default ``<db>.ckpt`` beside a SQLite file): workers on several machines
    resume each other's runs only when they share it. ``lease`` is how long (seconds) a claim outlives its last
    heartbeat before another worker may take the run over. ``threads``: torch intra-op threads (default
    :func:`default_threads`)."""
    configure_threads(threads)
    context = context or DistributedContext()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    if context.is_main:
        directory = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(store)
    directory = context.share(directory if context.is_main else None)  # every rank resumes the same checkpoint
    by_key = {run.key: run for run in runs}  # a suite listing one run twice trains it once
    keys = list(by_key)
    if context.is_main:
        check_writable(directory)
        store.register(list(by_key.values()), suite)
        states = store.states(keys)
        finished = sum(state in FINAL_STATES for state in states.values())
        if finished:
            log(f"[gdl-bench] {finished} of {len(keys)} runs already finished in {store.label}; skipping them")
    cache = BenchmarkCache(root)
    owner = worker_id()
    results, waiting = [], False
    while True:
        step = context.share(_next_step(store, keys, owner, lease) if context.is_main else None)
        if step[0] == "stop":
            return results
        if step[0] == "wait":
            if context.is_main and not waiting:
                log(f"[gdl-bench] waiting for {step[1]} runs held by other workers (taken over if a worker dies)")
            waiting = True
            time.sleep(max(0.2, min(5.0, lease / 4)))
            continue
        _, key, taken_over = step
        waiting = False
        result = _execute(by_key[key], store, RunFiles(directory, key), cache, owner, lease, suite, progress, log,
                          context, taken_over, f"{keys.index(key) + 1}/{len(keys)}")
        if result is not None:
            results.append(result)


def default_checkpoint_dir(store: ResultStore) -> Path:
    """``<db>.ckpt`` beside a SQLite file; ``results/<database>.ckpt`` for a server database."""
    if store.path is not None:
        return store.path.with_name(store.path.name + ".ckpt")
    return Path("results") / f"{store.url.database or 'gdl-bench'}.ckpt"


def _next_step(store: ResultStore, keys: list[str], owner: str, lease: float) -> tuple:
    claimed = store.claim(keys, owner, lease)
    if claimed is not None:
        return ("run", *claimed)
    held = sum(state == "running" for state in store.states(keys).values())
    return ("wait", held) if held else ("stop",)


def _execute(run: RunConfig, store: ResultStore, files: RunFiles, cache: BenchmarkCache, owner: str, lease: float,
             suite: str | None, progress: bool, log, context: DistributedContext, taken_over: bool, position: str):
    """Train (or store the kept result of) one claimed run; ``None`` when it did not finish normally."""
    main = context.is_main
    kept = context.share(files.kept_result() if main else None)
    if kept is not None:
        if main:
            log(f"[gdl-bench] storing the kept result of {run.label()} ({files.result})")
            store_result(store, kept, files, log)
        return kept
    if main:
        how = " (taken over from a worker whose lease expired)" if taken_over else ""
        how += " (resuming from checkpoint)" if files.checkpoint.exists() else ""
        log(f"[gdl-bench] run {position}: {run.label()}{how}")
    started = time.perf_counter()
    with Heartbeat(store, run.key, owner, lease, log) if main else contextlib.nullcontext():
        try:
            result = train_run(run, cache.get(run), checkpoint=files.checkpoint, progress=progress,
                               context=context)
        except Diverged as error:
            if main:
                store.mark(run, "diverged", str(error), error.epoch, suite)
                files.remove()
                log(f"[gdl-bench]   {run.label()} diverged at epoch {error.epoch}: {error}; stored as diverged")
            return None
        except (KeyboardInterrupt, ConfigError):
            if main:
                store.release(run.key, owner)
            raise
        except Exception as error:  # a bug or a resource error in one run must not stop the suite ...
            if main:
                store.mark(run, "failed", f"{type(error).__name__}: {error}", None, suite)
                log(f"[gdl-bench]   {run.label()} failed (stored as failed; the next `gdl-bench run` tries it "
                    f"again, from its checkpoint):\n{traceback.format_exc()}")
            if context.active:  # ... except under torchrun: the other ranks may wait for this one in a collective
                # forever, so this process exits and torchrun stops the job (a worker on the store takes it over)
                raise
            return None
        result.suite = suite
        if main:
            store_result(store, result, files, log)
            log(f"[gdl-bench]   {result.metric}: val {result.val:.4f}, test {result.test:.4f} at epoch "
                f"{result.best_epoch}; {result.params:,} params; {time.perf_counter() - started:.1f} s")
    context.barrier()
    return result
