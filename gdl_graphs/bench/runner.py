"""Run a list of :class:`RunConfig`: load each dataset once, skip runs already in the store, resume interrupted
ones from their checkpoint, and commit every finished run to the store before starting the next."""

from __future__ import annotations

import sys
import time
from typing import Callable

from gdl_graphs.bench.config import RunConfig
from gdl_graphs.bench.distributed import DistributedContext
from gdl_graphs.bench.store import ResultStore, RunResult
from gdl_graphs.bench.training import train_run
from gdl_graphs.data.benchmark import Benchmark
from gdl_graphs.data.registry import load_benchmark


class BenchmarkCache:
    """Loads each (dataset, options) once per process."""

    def __init__(self, root=None):
        self.root, self.loaded = root, {}

    def get(self, config: RunConfig) -> Benchmark:
        key = (config.dataset, repr(sorted(config.dataset_options.items())))
        if key not in self.loaded:
            self.loaded[key] = load_benchmark(config.dataset, self.root, **config.dataset_options)
        return self.loaded[key].fold(config.fold)


def run_all(runs: list[RunConfig], store: ResultStore, suite: str | None = None, root=None, progress: bool = True,
            log: Callable[[str], None] | None = None, context: DistributedContext | None = None) -> list[RunResult]:
    """Execute ``runs`` in order; returns the results of the runs trained now (finished ones are skipped)."""
    context = context or DistributedContext()
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    cache = BenchmarkCache(root)
    results = []
    pending = [run for run in runs if not store.finished(run.key)]
    if len(pending) < len(runs):
        log(f"[gdl-bench] {len(runs) - len(pending)} of {len(runs)} runs already finished in {store.path}; "
            f"skipping them")
    for i, run in enumerate(pending, 1):
        checkpoint = store.checkpoint_path(run.key)
        resumed = " (resuming from checkpoint)" if checkpoint.exists() else ""
        if context.is_main:
            log(f"[gdl-bench] run {i}/{len(pending)}: {run.label()}{resumed}")
        started = time.perf_counter()
        result = train_run(run, cache.get(run), checkpoint=checkpoint, progress=progress, context=context)
        result.suite = suite
        if context.is_main:
            store.add(result)
            log(f"[gdl-bench]   {result.metric}: val {result.val:.4f}, test {result.test:.4f} at epoch "
                f"{result.best_epoch}; {result.params:,} params; {time.perf_counter() - started:.1f} s")
        context.barrier()
        results.append(result)
    return results
