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

Every key is checked before anything trains: an unknown key at any level (``model_options`` and
``dataset_options`` against the model's constructor and the dataset's loader), an unknown model or dataset, a value
of the wrong type or out of range, a fold or seed out of range, an unavailable device raises :class:`ConfigError`
naming the key. A suite must be UTF-8 and expand to at most :data:`MAX_VALUES` values (YAML aliases included).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
from dataclasses import dataclass, field

from gdl_graphs.bench.options import dataset_option_default, dataset_option_names, model_option_names, unknown_names


class ConfigError(ValueError):
    """A bad suite file or command-line configuration; the message names the offending key."""


class StoreError(RuntimeError):
    """A finished run could not be stored; its result is kept on disk for the next ``gdl-bench run``."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run (its hash is the run's identity in the results store).

    ``device`` and ``progress`` do not enter the hash: the same experiment on another device is the same run.
    Settings added after runs were first stored (:data:`LATER_FIELDS`) enter it only when they differ from their
    default, so the keys of earlier runs stay valid.
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
    lr_schedule: str = "plateau"
    lr_step_size: int = 50
    weight_decay_scope: str = "all"
    grad_clip: float | None = 5.0
    train_limit: int | None = None
    dataset_options: dict = field(default_factory=dict)
    model_options: dict = field(default_factory=dict)
    device: str = "auto"
    sampler: dict | None = None
    select_by: str = "metric"

    @property
    def key(self) -> str:
        """Stable hash of the canonical JSON (sorted keys) of the settings that change the result (a setting of
        :data:`LATER_FIELDS` at its default, e.g. no ``sampler``, keeps the hash runs had before it existed)."""
        settings = dataclasses.asdict(self)
        settings.pop("device")
        for name, default in LATER_FIELDS.items():
            if settings[name] == default:
                del settings[name]
        for name in ("model_options", "dataset_options"):
            check_plain(settings[name], name)  # JSON values only, and bounded: the text below stays small
        text = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def label(self) -> str:
        return f"{self.dataset}/{self.model} seed={self.seed} fold={self.fold}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)


LATER_FIELDS = {"lr_schedule": "plateau", "lr_step_size": 50, "weight_decay_scope": "all", "sampler": None,
                "select_by": "metric"}
"""Run settings added after the first stored runs, with their defaults (left out of the key at the default)."""
LR_SCHEDULES = ("plateau", "constant", "step")
WEIGHT_DECAY_SCOPES = ("all", "first_layer")
SELECT_BY = ("metric", "loss")
"""What picks the best epoch (and early-stops): the benchmark's validation ``metric``, or the validation ``loss``
(SAGPool's and minCUTpool's code)."""
DEVICES = ("auto", "cpu", "cuda")

FIELD_TYPES = {
    "seed": int, "fold": int, "epochs": int, "batch_size": int, "lr": float, "weight_decay": float,
    "budget": (str, int, type(None)), "hidden_channels": (int, type(None)), "patience": int, "lr_patience": int,
    "lr_factor": float, "min_lr": float, "lr_schedule": str, "lr_step_size": int,
    "weight_decay_scope": str, "grad_clip": (float, type(None)), "train_limit": (int, type(None)),
    "dataset_options": dict, "model_options": dict, "device": str, "sampler": (dict, type(None)),
    "select_by": str,
}
CHOICES = {"lr_schedule": LR_SCHEDULES, "weight_decay_scope": WEIGHT_DECAY_SCOPES, "select_by": SELECT_BY,
           "device": DEVICES}
"""The allowed values of the settings that take one of a few names."""
DEFAULT_KEYS = set(FIELD_TYPES) - {"seed", "fold"}
EXPERIMENT_KEYS = DEFAULT_KEYS | {"dataset", "models", "seeds", "folds", "protocol", "grid", "restarts"}
SUITE_KEYS = {"name", "description", "defaults", "experiments", "db"}
MAX_VALUES = 10_000  # values in a suite or in one run's options (a YAML alias bomb expands far past this)
_POSITIVE_INTS = ("batch_size", "patience", "lr_patience", "lr_step_size", "hidden_channels", "train_limit")


def check_plain(value, where: str, budget: list[int] | None = None) -> None:
    """Raise :class:`ConfigError` unless ``value`` is plain JSON data (mappings with string keys, lists, strings,
    finite numbers, booleans, null) of at most :data:`MAX_VALUES` values; stops counting at the limit, so an alias
    bomb is refused at once."""
    budget = budget if budget is not None else [MAX_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"{where or 'suite'}: expands to more than {MAX_VALUES:,} values (YAML aliases?)")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where or 'suite'}: keys must be strings, got {key!r}")
            check_plain(item, f"{where}.{key}" if where else key, budget)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]", budget)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value}")
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise ConfigError(f"{where}: expected a plain value (string, number, boolean, list or mapping), "
                          f"got {type(value).__name__} {value!r}")


def _check_range(key: str, value, where: str) -> None:
    def refuse(requirement: str):
        raise ConfigError(f"{where}{key}: must be {requirement}, got {value!r}")

    if isinstance(value, float) and not math.isfinite(value):
        refuse("a finite number")
    if key == "epochs" and value < 0:
        refuse(">= 0")
    if key in _POSITIVE_INTS and value is not None and value < 1:
        refuse(">= 1")
    if key in ("lr", "grad_clip") and value is not None and not value > 0:
        refuse("positive")
    if key in ("weight_decay", "min_lr") and value < 0:
        refuse(">= 0")
    if key == "lr_factor" and not 0 < value < 1:
        refuse("between 0 and 1 (exclusive)")
    if key in ("seed", "fold") and value < 0:
        refuse(">= 0")
    if key == "budget" and value < 1:
        refuse("a positive parameter count")


def check_setting(key: str, value, where: str):
    expected = FIELD_TYPES[key]
    accepts_float = expected is float or (isinstance(expected, tuple) and float in expected)
    if accepts_float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, expected):
        names = expected.__name__ if isinstance(expected, type) else " or ".join(
            "null" if t is type(None) else t.__name__ for t in expected)
        raise ConfigError(f"{where}{key}: expected {names}, got {type(value).__name__} {value!r}")
    if isinstance(value, dict):
        check_plain(value, f"{where}{key}")
    elif isinstance(value, (int, float)):
        _check_range(key, value, where)
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{where}{key}: must be one of {CHOICES[key]}, got {value!r}")
    if key == "device" and value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{where}device: cuda requested but no CUDA device is available (use cpu or auto)")
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


def _int_list(key: str, value, where: str, limit: int | None = None) -> list[int]:
    """A list of ints in ``[0, limit)`` (``limit=None``: no upper bound)."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}{key}: expected an int or a non-empty list of ints, got {value!r}")
    for v in values:
        if v < 0 or (limit is not None and v >= limit):
            bound = f"between 0 and {limit - 1}" if limit is not None else ">= 0"
            raise ConfigError(f"{where}{key}: {v} out of range (must be {bound})")
    return values


def check_names(dataset: str, models: list[str], where: str = "") -> str:
    """Canonical dataset name; raises :class:`ConfigError` for an unknown dataset or model, or a model that cannot
    train on the dataset (its task kind, or inputs the model needs such as ``pos``), as the registry declares."""
    from gdl_graphs.models.registry import MODELS, find_recipe, incompatibility

    name, _, task = describe_dataset(dataset, where)
    for model in models:
        if model not in MODELS and find_recipe(model) is None:
            raise ConfigError(f"{where}models: unknown model {model!r} (not a model or a recipe; see "
                              f"`gdl-bench list models`)")
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
    own = {key: check_setting(key, experiment[key], where) for key in DEFAULT_KEYS & set(experiment)}
    settings = {**defaults, **own}
    if settings.get("sampler") is not None:
        _check_sampler_fits(dataset, where)
    seeds = _int_list("seeds", experiment.get("seeds", [0]), where, limit=2 ** 32)  # numpy's seed range
    dataset_options = settings.get("dataset_options", {})
    _check_options(f"{where}dataset_options", dataset_options, dataset_option_names(dataset))
    folds_of_dataset = num_folds(dataset, dataset_options, where)
    folds = experiment.get("folds", [0])
    if folds == "all":
        folds = list(range(folds_of_dataset))
    folds = _int_list("folds", folds, where, limit=folds_of_dataset)
    model_options = settings.pop("model_options", {})
    unknown = sorted(set(model_options) - set(models) - {"all"})
    if unknown:
        raise ConfigError(f"{where}model_options.{unknown[0]}: not one of this experiment's models {models}")
    for name, options in model_options.items():
        if not isinstance(options, dict):
            raise ConfigError(f"{where}model_options.{name}: expected a mapping of options, got {options!r}")
    runs = []
    for model in models:
        settings, options = model_settings(model, defaults, own, model_options)
        _check_options(f"{where}model_options", options, model_option_names(model), model)
        for seed in seeds:
            for fold in folds:
                runs.append(RunConfig(dataset=dataset, model=model, seed=seed, fold=fold, model_options=options,
                                      **settings))
    return runs


def model_settings(model: str, defaults: dict, own: dict, model_options: dict) -> tuple[dict, dict]:
    """Run settings and model options of one model of an experiment: the suite's defaults, then the recipe's
    settings (for a recipe such as ``gcn@kipf2017``), then the experiment's own keys; the recipe's model options,
    then the experiment's ``model_options`` (``all``, then this model's)."""
    from gdl_graphs.models.registry import find_recipe

    found = find_recipe(model)
    recipe = found[1] if found else None
    settings = {**defaults, **(recipe.settings if recipe else {}), **own}
    settings.pop("model_options", None)
    options = {**(recipe.model_options if recipe else {}), **model_options.get("all", {}),
               **model_options.get(model, {})}
    return settings, options


def _check_options(where: str, given: dict, accepted: set[str] | None, model: str | None = None) -> None:
    unknown = unknown_names(given, accepted)
    if unknown:
        owner = f" for {model}" if model else ""
        hint = difflib.get_close_matches(unknown[0], sorted(accepted), n=1)
        raise ConfigError(f"{where}.{unknown[0]}: unknown option{owner}"
                          + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; accepted: {', '.join(sorted(accepted))}")


def num_folds(dataset: str, options: dict, where: str = "") -> int:
    """Folds of a dataset: its cross-validation folds or repeated random splits, as many as the suite's
    ``dataset_options.num_folds`` or else its loader's default says (1 for a loader without that option, a dataset
    with one fixed split)."""
    default = dataset_option_default(describe_dataset(dataset)[0], "num_folds")
    if default is None:
        return 1
    folds = options.get("num_folds", default)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
        raise ConfigError(f"{where}dataset_options.num_folds: expected an int >= 1, got {folds!r}")
    if folds != default and options.get("split") != "random" and (default == 1 or folds < 2):
        # one CV fold, or redrawn splits of a loader with one split by default: only random splits redraw
        raise ConfigError(f"{where}dataset_options.num_folds: {folds} needs split: random (cross-validation "
                          "needs at least 2 folds, and only a random split can be drawn again)")
    return folds


def check_overrides(overrides: dict, where: str = "--") -> dict:
    """Validate command-line (or Python API) overrides (``None`` values are dropped)."""
    for key in overrides:
        if key not in DEFAULT_KEYS:
            hint = difflib.get_close_matches(key, sorted(DEFAULT_KEYS), n=1)
            raise ConfigError(f"{where}{key}: unknown setting" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; allowed: {', '.join(sorted(DEFAULT_KEYS))}")
    return {key: check_setting(key, value, where) for key, value in overrides.items() if value is not None}


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
