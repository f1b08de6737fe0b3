"""Benchmark configuration: one :class:`RunConfig` per (dataset, model, seed, fold), and suites of them in YAML.

A suite file::

    name: quick
    defaults:               # any RunConfig field, for every experiment
      epochs: 30
      budget: 100k
    experiments:
      - dataset: MUTAG
        models: [gcn, gin]
        seeds: [0, 1, 2]
        folds: [0, 1, 2]    # or "all" (10 for TU datasets); default [0]
        model_options:      # per model name, or "all"
          gin: {virtual_node: true}
      - dataset: Cora       # node tasks: neighbour-sampled mini-batches (gdl_graphs.bench.minibatch)
        models: [sage]
        sampler: {num_neighbors: [15, 10], batch_size: 512, eval: full}

Every key is checked: an unknown key, model or dataset, or a value of the wrong type raises :class:`ConfigError`
naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A bad suite file or command-line configuration; the message names the offending key."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run (its hash is the run's identity in the results store).

    ``device`` and ``progress`` do not enter the hash: the same experiment on another device is the same run.
    """

    dataset: str
    model: str
    seed: int = 0
    fold: int = 0
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    budget: str | int | None = "100k"
    hidden_channels: int | None = None
    patience: int = 20
    lr_patience: int = 10
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    grad_clip: float | None = 5.0
    train_limit: int | None = None
    dataset_options: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)
    device: str = "auto"
    sampler: dict | None = None

    @property
    def key(self) -> str:
        """Stable hash of the settings that change the result (a run without ``sampler`` keeps the hash it had
        before the setting existed)."""
        settings = dataclasses.asdict(self)
        settings.pop("device")
        if settings["sampler"] is None:
            settings.pop("sampler")
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label(self) -> str:
        return f"{self.dataset}/{self.model} seed={self.seed} fold={self.fold}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


FIELD_TYPES = {
    "seed": int, "fold": int, "epochs": int, "batch_size": int, "lr": float, "weight_decay": float,
    "budget": (str, int, type(None)), "hidden_channels": (int, type(None)), "patience": int, "lr_patience": int,
    "lr_factor": float, "min_lr": float, "grad_clip": (float, type(None)), "train_limit": (int, type(None)),
    "dataset_options": dict, "model_options": dict, "device": str, "sampler": (dict, type(None)),
}
DEFAULT_KEYS = set(FIELD_TYPES) - {"seed", "fold"}
EXPERIMENT_KEYS = DEFAULT_KEYS | {"dataset", "models", "seeds", "folds"}
SUITE_KEYS = {"name", "description", "defaults", "experiments", "db"}
DEVICES = ("auto", "cpu", "cuda")


def _check_type(key: str, value, where: str):
    expected = FIELD_TYPES[key]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(
            "null" if t is type(None) else t.__name__ for t in expected)
        raise ConfigError(f"{where}{key}: expected {names}, got {type(value).__name__} {value!r}")
    if key in ("epochs", "batch_size", "patience", "lr_patience") and value < (0 if key == "epochs" else 1):
        raise ConfigError(f"{where}{key}: must be {'>= 0' if key == 'epochs' else 'positive'}, got {value}")
    if key in ("lr", "lr_factor") and not value > 0:
        raise ConfigError(f"{where}{key}: must be positive, got {value}")
    if key == "device" and value not in DEVICES:
        raise ConfigError(f"{where}device: must be one of {DEVICES}, got {value!r}")
    if key == "sampler" and value is not None:
        from gdl_graphs.bench.minibatch import SamplerSettings

        try:
            SamplerSettings.parse(value, f"{where}sampler.")
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if key == "budget" and value is not None:
        from gdl_graphs.models.registry import parse_budget

        try:
            parse_budget(value)
        except ValueError as error:
            raise ConfigError(f"{where}budget: {error}") from None
    return value


def _int_list(key: str, value, where: str) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}{key}: expected an int or a non-empty list of ints, got {value!r}")
    return values


def check_names(dataset: str, models: list[str], where: str = "") -> str:
    """Canonical dataset name; raises :class:`ConfigError` for an unknown dataset or model, or a model that cannot
    train on the dataset (its task kind, or inputs the model needs such as ``pos``), as the registry declares."""
    from gdl_graphs.models.registry import MODELS, incompatibility

    name, _, task = describe_dataset(dataset, where)
    for model in models:
        if model not in MODELS:
            raise ConfigError(f"{where}models: unknown model {model!r} (see `gdl-bench list models`)")
        problem = incompatibility(model, task, _node_attributes(name), dataset=name)
        if problem:
            raise ConfigError(f"{where}models: {problem}")
    return name


def _node_attributes(dataset: str) -> frozenset[str]:
    from gdl_graphs.data.registry import get_spec

    return frozenset() if dataset.startswith("tu:") else frozenset(get_spec(dataset).node_attributes)


def describe_dataset(dataset: str, where: str = "") -> tuple[str, str, str]:
    """``(canonical name, family, task)`` of a registered dataset or a ``tu:NAME`` dataset."""
    from gdl_graphs.data.registry import get_spec

    if dataset.lower().startswith("tu:") and len(dataset) > 3:
        return f"tu:{dataset[3:]}", "social", "graph_classification"
    try:
        spec = get_spec(dataset)
    except (KeyError, ValueError):
        raise ConfigError(f"{where}dataset: unknown dataset {dataset!r} (see `gdl-bench list datasets`)") from None
    return spec.name, spec.family, spec.task


def _check_sampler_fits(dataset: str, where: str) -> None:
    """A ``sampler`` only where the dataset's task kind declares it trains on neighbour-sampled mini-batches."""
    from gdl_graphs.bench.tasks import TASK_KINDS

    task = describe_dataset(dataset)[2]
    if not TASK_KINDS[task].accepts_sampler:
        accepting = sorted(kind for kind, cls in TASK_KINDS.items() if cls.accepts_sampler)
        raise ConfigError(f"{where}sampler: neighbour-sampled mini-batches are for node tasks "
                          f"({', '.join(accepting)}); {dataset} is {task}")


def expand_experiment(experiment: dict, defaults: dict, where: str = "") -> list[RunConfig]:
    """RunConfigs of one experiment block (models x seeds x folds)."""
    if not isinstance(experiment, dict):
        raise ConfigError(f"{where.rstrip('.')}: expected a mapping, got {type(experiment).__name__}")
    unknown = sorted(set(experiment) - EXPERIMENT_KEYS)
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(sorted(EXPERIMENT_KEYS))})")
    for key in ("dataset", "models"):
        if key not in experiment:
            raise ConfigError(f"{where}{key}: missing")
    dataset, models = experiment["dataset"], experiment["models"]
    if not isinstance(dataset, str):
        raise ConfigError(f"{where}dataset: expected str, got {dataset!r}")
    models = [models] if isinstance(models, str) else models
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"{where}models: expected a model name or a non-empty list of names, got {models!r}")
    dataset = check_names(dataset, models, where)
    settings = {**defaults}
    for key in DEFAULT_KEYS & set(experiment):
        settings[key] = _check_type(key, experiment[key], where)
    if settings.get("sampler") is not None:
        _check_sampler_fits(dataset, where)
    seeds = _int_list("seeds", experiment.get("seeds", [0]), where)
    folds = experiment.get("folds", [0])
    if folds == "all":
        folds = list(range(_num_folds(dataset, settings.get("dataset_options", {}))))
    folds = _int_list("folds", folds, where)
    model_options = settings.pop("model_options", {})
    unknown = sorted(set(model_options) - set(models) - {"all"})
    if unknown:
        raise ConfigError(f"{where}model_options.{unknown[0]}: not one of this experiment's models {models}")
    runs = []
    for model in models:
        options = {**model_options.get("all", {}), **model_options.get(model, {})}
        for seed in seeds:
            for fold in folds:
                runs.append(RunConfig(dataset=dataset, model=model, seed=seed, fold=fold, model_options=options,
                                      **settings))
    return runs


def _num_folds(dataset: str, options: dict) -> int:
    _, family, task = describe_dataset(dataset)
    return int(options.get("num_folds", 10)) if family == "social" and task == "graph_classification" else 1


def load_suite(path: str | Path, overrides: dict | None = None) -> tuple[dict, list[RunConfig]]:
    """Parse and validate a suite file; ``overrides`` (command-line knobs) replace its defaults and experiments'
    settings. Returns the suite's header (name, db) and its runs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file {str(path)!r} does not exist")
    try:
        suite = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_suite(suite, overrides, source=str(path))


def parse_suite(suite, overrides: dict | None = None, source: str = "suite") -> tuple[dict, list[RunConfig]]:
    """Validate a suite given as a mapping (see the module docstring)."""
    if not isinstance(suite, dict):
        raise ConfigError(f"{source}: expected a mapping with 'experiments', got {type(suite).__name__}")
    unknown = sorted(set(suite) - SUITE_KEYS)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(SUITE_KEYS))})")
    defaults_in = suite.get("defaults") or {}
    if not isinstance(defaults_in, dict):
        raise ConfigError("defaults: expected a mapping")
    unknown = sorted(set(defaults_in) - DEFAULT_KEYS)
    if unknown:
        raise ConfigError(f"defaults.{unknown[0]}: unknown key (allowed: {', '.join(sorted(DEFAULT_KEYS))})")
    defaults = {key: _check_type(key, value, "defaults.") for key, value in defaults_in.items()}
    experiments = suite.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise ConfigError("experiments: expected a non-empty list")
    runs = []
    for i, experiment in enumerate(experiments):
        runs.extend(expand_experiment(experiment, defaults, f"experiments[{i}]."))
    if overrides:
        runs = [dataclasses.replace(run, **overrides) for run in runs]
    header = {"name": suite.get("name", Path(source).stem), "db": suite.get("db")}
    return header, runs


def check_overrides(overrides: dict) -> dict:
    """Validate command-line overrides (``None`` values are dropped)."""
    return {key: _check_type(key, value, "--") for key, value in overrides.items() if value is not None}


def shard(runs: list[RunConfig], spec: str | None) -> list[RunConfig]:
    """The runs of shard ``"i/n"`` (1-based ``i``): every n-th run starting at the i-th, so each machine of
    ``n`` gets a balanced share of datasets and models."""
    if not spec:
        return runs
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ConfigError(f"--shard: expected i/n such as 1/4, got {spec!r}") from None
    if not 1 <= index <= count:
        raise ConfigError(f"--shard: need 1 <= i <= n, got {spec!r}")
    return runs[index - 1::count]
