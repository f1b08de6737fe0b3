"""Evaluation protocols of a suite experiment: how its runs are chosen and how their test metrics become one
number.

- ``seeds`` (default): every model x seed x fold; mean ± sample std of the test metric at the best validation
  epoch over the runs.
- ``errica2020`` (Errica et al. 2020, "A Fair Comparison of GNNs for Graph Classification"): stratified outer
  k-fold CV; in each outer fold, every configuration of the experiment's ``grid`` is trained on the inner stratified
  hold-out split (the fold's ``train`` / ``val``) and the one with the best validation metric is selected; it is
  then retrained ``restarts`` times (new seeds, same split) and the test metrics of the restarts are averaged.
  Reported: mean ± std over the outer folds (population std, as their code), and the configuration each fold chose.
- ``xu2019`` (Xu et al. 2019, GIN): 10-fold CV without an inner hold-out (``val_fraction: 0``: the fold's
  validation split *is* its test fold, as in their code), every fold trained for all epochs; reported: the test
  accuracy at the single epoch whose mean over the folds is best, mean ± sample std over the folds.

Every (fold, configuration, restart) is an ordinary run with its own key in the store, so an interrupted protocol
resumes like any suite: finished runs are skipped; a fold's restarts start once all its selection runs are stored.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np

from gdl_graphs.bench.config import ConfigError, RunConfig, describe_dataset, expand_experiment, num_folds
from gdl_graphs.data import METRICS

PROTOCOLS = ("seeds", "errica2020", "xu2019")
PROTOCOL_KEYS = ("protocol", "grid", "restarts")


@dataclass
class ModelSelection:
    """Errica et al.'s model selection for one (dataset, model): per outer fold, one run per grid configuration
    (``candidates``: label -> its runs over the folds), then ``restart_seeds`` retrainings of the winner."""

    candidates: list[tuple[str, list[RunConfig]]]
    restart_seeds: list[int]

    @property
    def folds(self) -> list[int]:
        return [run.fold for run in self.candidates[0][1]]

    def selected(self, fold: int, rows: dict[str, dict]) -> tuple[str, RunConfig, dict] | None:
        """``(label, run, row)`` of the configuration fold ``fold`` selects, once all its candidates are stored."""
        entries = []
        for label, runs in self.candidates:
            run = next(r for r in runs if r.fold == fold)
            if run.key not in rows:
                return None
            entries.append((label, run, rows[run.key]))
        higher = METRICS[entries[0][2]["metric"]].higher_is_better
        values = [entry[2]["val"] for entry in entries]
        best = int(np.nanargmax(values) if higher else np.nanargmin(values))  # ties: the first in grid order
        return entries[best]

    def restarts(self, run: RunConfig) -> list[RunConfig]:
        return [dataclasses.replace(run, seed=seed) for seed in self.restart_seeds]

    def final_runs(self, rows: dict[str, dict]) -> list[RunConfig]:
        """The restarts of every fold whose selection is complete."""
        runs = []
        for fold in self.folds:
            chosen = self.selected(fold, rows)
            if chosen is not None:
                runs.extend(self.restarts(chosen[1]))
        return runs


@dataclass
class Experiment:
    """One (dataset, model) of a suite under one protocol. ``runs`` are the runs known before any training (for
    ``errica2020`` the selection runs; the restarts follow from the stored results, :meth:`pending`)."""

    protocol: str
    dataset: str
    model: str
    runs: list[RunConfig]
    selection: ModelSelection | None = None

    def pending(self, rows: dict[str, dict]) -> list[RunConfig]:
        """Runs that the stored ``rows`` (key -> row) make due and that are not stored yet."""
        due = list(self.runs) + (self.selection.final_runs(rows) if self.selection else [])
        return [run for run in due if run.key not in rows]

    def expected_runs(self) -> int:
        extra = len(self.selection.folds) * len(self.selection.restart_seeds) if self.selection else 0
        return len(self.runs) + extra

    def summarize(self, rows: dict[str, dict]) -> dict | None:
        """The protocol's number from stored rows: ``{metric, mean, std, n, complete, stored, expected, detail}``;
        ``None`` when no run is stored yet."""
        stored = [rows[run.key] for run in self.runs if run.key in rows]
        if self.selection is not None:
            return self._summarize_selection(rows, len(stored))
        if not stored:
            return None
        base = {"metric": stored[0]["metric"], "stored": len(stored), "expected": self.expected_runs(),
                "complete": len(stored) == len(self.runs), "detail": []}
        if self.protocol == "xu2019":
            return {**base, **_best_mean_epoch(stored)}
        test = np.array([row["test"] for row in stored], dtype=float)
        return {**base, "mean": float(test.mean()), "std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
                "n": len(test)}

    def _summarize_selection(self, rows: dict[str, dict], stored_selection: int) -> dict | None:
        folds, detail, metric, stored = [], [], None, stored_selection
        for fold in self.selection.folds:
            chosen = self.selection.selected(fold, rows)
            if chosen is None:
                continue
            label, run, row = chosen
            metric = row["metric"]
            restarts = [rows[r.key] for r in self.selection.restarts(run) if r.key in rows]
            stored += len(restarts)
            if len(restarts) < len(self.selection.restart_seeds):
                detail.append(f"fold {fold}: selected [{label}] (val {row['val']:.4f}); restarts "
                              f"{len(restarts)}/{len(self.selection.restart_seeds)} stored")
                continue
            score = float(np.mean([r["test"] for r in restarts]))
            folds.append(score)
            detail.append(f"fold {fold}: selected [{label}] (val {row['val']:.4f}); test over "
                          f"{len(restarts)} restarts {score:.4f}")
        if metric is None and not folds:
            return None
        values = np.array(folds, dtype=float)
        return {"metric": metric, "mean": float(values.mean()) if len(values) else float("nan"),
                "std": float(values.std()) if len(values) else float("nan"), "n": len(values),
                "complete": len(values) == len(self.selection.folds), "stored": stored,
                "expected": self.expected_runs(), "detail": detail}


def _best_mean_epoch(rows: list[dict]) -> dict:
    """Xu et al.'s number: the epoch whose test-fold metric, averaged over folds, is best; mean ± std there."""
    by_fold: dict[int, list[np.ndarray]] = {}
    for row in rows:
        by_fold.setdefault(row["fold"], []).append(np.array([c["test"] for c in row["curve"]], dtype=float))
    length = min(len(curve) for curves in by_fold.values() for curve in curves)
    per_fold = np.stack([np.mean([c[:length] for c in curves], axis=0) for curves in by_fold.values()])
    means = per_fold.mean(axis=0)
    higher = METRICS[rows[0]["metric"]].higher_is_better
    epoch = int(np.argmax(means) if higher else np.argmin(means))
    at = per_fold[:, epoch]
    return {"mean": float(at.mean()), "std": float(at.std(ddof=1)) if len(at) > 1 else 0.0, "n": len(at),
            "detail": [f"best mean epoch {epoch} of {length} over {len(at)} folds"]}


def expand_protocol(experiment: dict, defaults: dict, where: str, overrides: dict) -> list[Experiment]:
    """The :class:`Experiment` of each model of a suite experiment block (see the module docstring)."""
    if not isinstance(experiment, dict):
        raise ConfigError(f"{where.rstrip('.')}: expected a mapping, got {type(experiment).__name__}")
    protocol = experiment.get("protocol", "seeds")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where}protocol: must be one of {PROTOCOLS}, got {protocol!r}")
    plain = {key: value for key, value in experiment.items() if key not in PROTOCOL_KEYS}
    if protocol != "seeds" and isinstance(experiment.get("dataset"), str):
        options = experiment.get("dataset_options", defaults.get("dataset_options")) or {}
        _require_cv(experiment["dataset"], options, protocol, where)
    if protocol != "errica2020":
        for key in ("grid", "restarts"):
            if key in experiment:
                raise ConfigError(f"{where}{key}: only the errica2020 protocol has a {key}")
    if protocol == "xu2019":
        plain["dataset_options"] = {**plain.get("dataset_options", {}), "val_fraction": 0.0}
        plain.setdefault("folds", "all")
    if protocol == "errica2020":
        return _expand_selection(experiment, plain, defaults, where, overrides)
    runs = [dataclasses.replace(run, **overrides) for run in expand_experiment(plain, defaults, where)]
    if protocol == "xu2019":
        runs = [dataclasses.replace(run, patience=run.epochs) for run in runs]
    models = list(dict.fromkeys(run.model for run in runs))
    return [Experiment(protocol, runs[0].dataset, model, [run for run in runs if run.model == model])
            for model in models]


def _expand_selection(experiment: dict, plain: dict, defaults: dict, where: str,
                      overrides: dict) -> list[Experiment]:
    restarts = experiment.get("restarts", 3)
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ConfigError(f"{where}restarts: expected a positive int, got {restarts!r}")
    seeds = plain.get("seeds", [0])
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if len(seeds) != 1:
        raise ConfigError(f"{where}seeds: errica2020 selects with one seed (the restarts use the next "
                          f"{restarts}), got {seeds!r}")
    plain.setdefault("folds", "all")
    candidates = _grid(experiment.get("grid") or {}, where)
    experiments: dict[str, list[tuple[str, list[RunConfig]]]] = {}
    for label, settings, options in candidates:
        block = {**plain, **settings}
        if options:
            models = plain["models"] if isinstance(plain.get("models"), list) else [plain.get("models")]
            given = dict(plain.get("model_options", {}))
            block["model_options"] = {**given, **{m: {**given.get("all", {}), **given.get(m, {}), **options}
                                                  for m in models}}
        runs = [dataclasses.replace(run, **overrides) for run in expand_experiment(block, defaults, where)]
        for model in dict.fromkeys(run.model for run in runs):
            experiments.setdefault(model, []).append((label, [run for run in runs if run.model == model]))
    seed = seeds[0]
    result = []
    for model, model_candidates in experiments.items():
        selection = ModelSelection(model_candidates, [seed + 1 + i for i in range(restarts)])
        ordered = [run for fold in range(len(model_candidates[0][1])) for _, runs in model_candidates
                   for run in runs[fold:fold + 1]]
        result.append(Experiment("errica2020", ordered[0].dataset, model, ordered, selection))
    return result


def _require_cv(dataset: str, dataset_options: dict, protocol: str, where: str) -> None:
    """A cross-validation protocol needs a dataset with folds (a TU graph-classification dataset); a suite may still
    run only some of its folds (a CI slice)."""
    dataset, family, task = describe_dataset(dataset, where)
    if (family, task) != ("social", "graph_classification") or num_folds(dataset, dataset_options, where) < 2:
        raise ConfigError(f"{where}protocol: {protocol} needs a cross-validated dataset (TU graph classification), "
                          f"got {dataset}")


def _grid(grid, where: str) -> list[tuple[str, dict, dict]]:
    """``(label, run settings, model options)`` of every configuration of a grid: the product over its keys.

    A key is a run setting (``batch_size: [32, 128]``), a model option (``model_options.dropout: [0, 0.5]``), or a
    name whose values are mappings of such settings applied together (``width_depth: [{hidden_channels: 32,
    model_options.num_layers: 2}, ...]``)."""
    if not isinstance(grid, dict):
        raise ConfigError(f"{where}grid: expected a mapping of setting -> list of values")
    axes = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}grid.{key}: expected a non-empty list of values")
        axes.append([(key, value) for value in values])
    configurations = []
    for combination in itertools.product(*axes):
        settings, options, parts = {}, {}, []
        for key, value in combination:
            if _is_setting(key):
                pairs = [(key, value)]
            elif isinstance(value, dict):
                pairs = value.items()
            else:
                raise ConfigError(f"{where}grid.{key}: not a run setting or model_options.NAME, so its values "
                                  f"must be mappings of settings applied together, got {value!r}")
            for name, item in pairs:
                if not _is_setting(name):
                    raise ConfigError(f"{where}grid.{key}: {name!r} is neither a run setting nor "
                                      f"model_options.NAME")
                if name.startswith("model_options."):
                    options[name.split(".", 1)[1]] = item
                else:
                    settings[name] = item
                parts.append(f"{name.removeprefix('model_options.')}={item}")
        configurations.append((", ".join(parts) or "the experiment's settings", settings, options))
    return configurations


def _is_setting(name: str) -> bool:
    """A run setting a grid may vary, or ``model_options.NAME``."""
    return (name.startswith("model_options.") and len(name) > len("model_options.")) or (
        name in RunConfig.__dataclass_fields__ and name not in ("seed", "fold", "model_options", "dataset", "model"))
