"""The benchmark harness: the ``gdl-bench`` command line (:mod:`~gdl_graphs.bench.cli`) and its Python API.

>>> from gdl_graphs.bench import compare
>>> table = compare("MUTAG", ["gcn", "gin"], seeds=[0, 1], epochs=20, db="results/mine.sqlite")
>>> print(table.markdown())

:func:`compare` is ``gdl-bench run --dataset D --models a,b``: finished runs are read back from the store, not
retrained. :func:`train` trains one model and hands it back (for predictions in a notebook).
"""

from __future__ import annotations

from dataclasses import dataclass

from gdl_graphs.bench.config import ConfigError, RunConfig, check_overrides, expand_experiment
from gdl_graphs.bench.report import markdown as _markdown
from gdl_graphs.bench.report import summarize
from gdl_graphs.bench.store import ResultStore, RunResult

DEFAULT_DB = "results/gdl-bench.sqlite"


@dataclass
class Comparison:
    """Stored runs of a comparison and their summary (one entry per dataset and model)."""

    rows: list[dict]
    summary: list[dict]

    def markdown(self) -> str:
        return _markdown(self.summary)

    def frame(self):
        """The summary as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in s.items() if k != "horizons"} for s in self.summary])


def compare(dataset: str, models: list[str], *, seeds=(0,), folds=(0,), db: str = DEFAULT_DB, root=None,
            progress: bool = True, **settings) -> Comparison:
    """Train (or read back) every model x seed x fold on ``dataset``; ``settings`` are :class:`RunConfig` fields
    (``epochs``, ``lr``, ``budget``, ``model_options``, ...)."""
    from gdl_graphs.bench.runner import run_all

    for key in ("seed", "fold"):
        if key in settings:
            raise ConfigError(f"compare: pass {key}s=[...] (a list), not {key}=")
    settings = check_overrides(settings, where="")
    runs = expand_experiment({"dataset": dataset, "models": list(models), "seeds": list(seeds),
                              "folds": folds if folds == "all" else list(folds), **settings}, {})
    store = ResultStore(db)
    try:
        run_all(runs, store, root=root, progress=progress)
        keys = {run.key for run in runs}
        rows = [row for row in store.rows() if row["key"] in keys]
    finally:
        store.close()
    return Comparison(rows, summarize(rows))


def train(dataset: str, model: str, *, root=None, progress: bool = True, **settings):
    """Train one model (not stored) and return ``(module, result, benchmark)``.

    ``module`` holds the weights of the last epoch trained; ``result`` reports the metrics at the best validation
    epoch (``result.curve`` has every epoch's)."""
    from gdl_graphs.bench.runner import BenchmarkCache
    from gdl_graphs.bench.training import train_run

    seed, fold = settings.pop("seed", 0), settings.pop("fold", 0)
    settings = check_overrides(settings, where="")
    if "model_options" in settings:  # one model: its constructor options
        settings["model_options"] = {model: settings["model_options"]}
    (config,) = expand_experiment({"dataset": dataset, "models": [model], "seeds": [seed], "folds": [fold],
                                   **settings}, {})  # a recipe's settings apply, the caller's override them
    benchmark = BenchmarkCache(root).get(config)
    result = train_run(config, benchmark, progress=progress)
    return result.model_object, result, benchmark


__all__ = ["Comparison", "ConfigError", "RunConfig", "RunResult", "ResultStore", "compare", "train"]
