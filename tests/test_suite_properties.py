"""Property-based tests (hypothesis) of suite parsing: valid suites expand as specified with stable run keys, and
every bad key or value is refused with an error that names it."""

from __future__ import annotations

import math
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdl_graphs.bench.config import DEFAULT_KEYS, EXPERIMENT_KEYS, MAX_VALUES, SUITE_KEYS, ConfigError
from gdl_graphs.bench.suite import parse_suite

MODELS = ["gcn", "gin", "sage", "gat"]
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(names, children, max_size=4), max_leaves=30)
settings.register_profile("suite", max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("suite")


def _shuffled(mapping: dict, rng: random.Random) -> dict:
    """The same mapping with its keys (recursively) in another order."""
    items = list(mapping.items())
    rng.shuffle(items)
    return {key: _shuffled(value, rng) if isinstance(value, dict) else value for key, value in items}


@given(models=st.lists(st.sampled_from(MODELS), min_size=1, max_size=4, unique=True),
       seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=4, unique=True),
       epochs=st.integers(0, 500), lr=st.floats(1e-6, 1.0), weight_decay=st.floats(0, 1),
       dropout=st.floats(0, 0.9), order=st.integers(0, 2**32 - 1))
def test_valid_suites_expand_with_stable_keys(models, seeds, epochs, lr, weight_decay, dropout, order):
    suite = {"name": "p", "defaults": {"epochs": epochs, "lr": lr, "weight_decay": weight_decay},
             "experiments": [{"dataset": "KarateClub", "models": models, "seeds": seeds,
                              "model_options": {"all": {"dropout": dropout, "num_layers": 2}}}]}
    _, runs = parse_suite(suite)
    assert len(runs) == len(models) * len(seeds)
    assert {(r.model, r.seed) for r in runs} == {(m, s) for m in models for s in seeds}
    assert all(r.epochs == epochs and r.lr == lr and r.model_options["dropout"] == dropout for r in runs)
    keys = [r.key for r in runs]
    assert len(set(keys)) == len(keys) and all(re.fullmatch(r"[0-9a-f]{16}", k) for k in keys)
    _, again = parse_suite(_shuffled(suite, random.Random(order)))  # key order in the file does not matter
    assert sorted(r.key for r in again) == sorted(keys)
    _, on_cpu = parse_suite(suite, overrides={"device": "cpu"})  # nor does the device
    assert [r.key for r in on_cpu] == keys


@given(key=names.filter(lambda k: k not in SUITE_KEYS), value=json_values)
def test_unknown_suite_keys_are_named(key, value):
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}: unknown key"):
        parse_suite({key: value, "experiments": [{"dataset": "KarateClub", "models": ["gcn"]}]})


@given(key=names.filter(lambda k: k not in DEFAULT_KEYS), level=st.sampled_from(["defaults", "experiment"]),
       value=json_values)
def test_unknown_setting_keys_are_named(key, level, value):
    experiment = {"dataset": "KarateClub", "models": ["gcn"]}
    if level == "defaults":
        suite, where = {"defaults": {key: value}, "experiments": [experiment]}, "defaults."
    else:
        if key in EXPERIMENT_KEYS:
            return
        suite, where = {"experiments": [{**experiment, key: value}]}, "experiments[0]."
    with pytest.raises(ConfigError, match=f"^{re.escape(where + key)}: unknown key"):
        parse_suite(suite)


@given(option=names.filter(lambda k: k not in {"num_layers", "readout", "heads", "dropout", "norm", "virtual_node",
                                               "deg", "hidden_channels"}), value=json_values)
def test_unknown_model_options_are_named(option, value):
    suite = {"experiments": [{"dataset": "KarateClub", "models": ["gcn"], "model_options": {"gcn": {option: value}}}]}
    with pytest.raises(ConfigError, match=f"^experiments\\[0\\].model_options.{re.escape(option)}: unknown option"):
        parse_suite(suite)


@given(key=st.sampled_from(["epochs", "batch_size", "patience", "lr_patience", "train_limit", "hidden_channels"]),
       value=st.integers(-10**9, 0))
def test_non_positive_counts_are_refused(key, value):
    if key == "epochs" and value == 0:
        return  # zero epochs is allowed (evaluate only)
    with pytest.raises(ConfigError, match=f"^defaults.{key}: must be"):
        parse_suite({"defaults": {key: value}, "experiments": [{"dataset": "KarateClub", "models": ["gcn"]}]})


@given(key=st.sampled_from(["lr", "weight_decay", "lr_factor", "min_lr", "grad_clip"]),
       value=st.floats(allow_nan=True, allow_infinity=True))
def test_float_settings_are_finite_and_in_range(key, value):
    valid = math.isfinite(value) and {"lr": value > 0, "weight_decay": value >= 0, "lr_factor": 0 < value < 1,
                                      "min_lr": value >= 0, "grad_clip": value > 0}[key]
    suite = {"defaults": {key: value}, "experiments": [{"dataset": "KarateClub", "models": ["gcn"]}]}
    if valid:
        _, [run] = parse_suite(suite)
        assert getattr(run, key) == value
    else:
        with pytest.raises(ConfigError, match=f"^defaults.{key}: must be"):
            parse_suite(suite)


@given(seeds=st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=5),
       folds=st.lists(st.integers(-3, 14), min_size=1, max_size=5))
def test_seeds_and_folds_in_range(seeds, folds):
    suite = {"experiments": [{"dataset": "MUTAG", "models": ["gcn"], "seeds": seeds, "folds": folds}]}
    if min(seeds) >= 0 and 0 <= min(folds) and max(folds) < 10:
        _, runs = parse_suite(suite)
        assert len(runs) == len(seeds) * len(folds)
    else:
        with pytest.raises(ConfigError, match=r"^experiments\[0\]\.(seeds|folds): -?\d+ out of range"):
            parse_suite(suite)


@given(value=json_values)
def test_plain_option_values_give_a_key_and_bounded_ones_only(value):
    suite = {"experiments": [{"dataset": "KarateClub", "models": ["gcn"], "model_options": {"gcn": {"norm": value}}}]}
    _, [run] = parse_suite(suite)  # any JSON value passes parsing (the model decides what it accepts)
    assert run.key == parse_suite(suite)[1][0].key
    wide = {"experiments": [{"dataset": "KarateClub", "models": ["gcn"],
                             "model_options": {"gcn": {"norm": [value] * (MAX_VALUES + 1)}}}]}
    with pytest.raises(ConfigError, match="expands to more than"):
        parse_suite(wide)
