"""A suite file as a whole: read it (UTF-8 YAML), check its header, and expand each experiment block through its
model-selection protocol (:mod:`~gdl_graphs.bench.protocols`) into runs (:mod:`~gdl_graphs.bench.config` checks each
run's settings; the suite format is described there)."""

from __future__ import annotations

from pathlib import Path

import yaml

from gdl_graphs.bench.config import DEFAULT_KEYS, SUITE_KEYS, ConfigError, RunConfig, check_setting, check_plain
from gdl_graphs.bench.protocols import expand_protocol


def load_suite(path: str | Path, overrides: dict | None = None) -> tuple[dict, list[RunConfig]]:
    """Parse and validate a suite file; ``overrides`` (command-line knobs) replace its defaults and experiments'
    settings. Returns the suite's header (name, db) and its runs."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file {str(path)!r} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); save it as UTF-8") from None
    try:
        suite = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_suite(suite, overrides, source=str(path))


def parse_suite(suite, overrides: dict | None = None, source: str = "suite") -> tuple[dict, list[RunConfig]]:
    """Validate a suite given as a mapping (see the module docstring)."""
    if not isinstance(suite, dict):
        raise ConfigError(f"{source}: expected a mapping with 'experiments', got {type(suite).__name__}")
    check_plain(suite, "")
    unknown = sorted(set(suite) - SUITE_KEYS)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (allowed: {', '.join(sorted(SUITE_KEYS))})")
    for key in ("name", "description", "db"):
        if suite.get(key) is not None and not isinstance(suite[key], str):
            raise ConfigError(f"{key}: expected a string, got {type(suite[key]).__name__} {suite[key]!r}")
    defaults_in = suite.get("defaults") or {}
    if not isinstance(defaults_in, dict):
        raise ConfigError("defaults: expected a mapping")
    unknown = sorted(set(defaults_in) - DEFAULT_KEYS)
    if unknown:
        raise ConfigError(f"defaults.{unknown[0]}: unknown key (allowed: {', '.join(sorted(DEFAULT_KEYS))})")
    defaults = {key: check_setting(key, value, "defaults.") for key, value in defaults_in.items()}
    experiments = suite.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise ConfigError("experiments: expected a non-empty list")
    parsed = []
    for i, experiment in enumerate(experiments):
        parsed.extend(expand_protocol(experiment, defaults, f"experiments[{i}].", overrides or {}))
    runs = [run for experiment in parsed for run in experiment.runs]
    header = {"name": suite.get("name", Path(source).stem), "db": suite.get("db"), "experiments": parsed}
    return header, runs
