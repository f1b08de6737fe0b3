"""The reproductions page: published numbers (kept as data, with their sources) against the stored runs of the
suites that reproduce them.

A published file (``benchmarks/reproduce/published.yaml``) lists one entry per paper table cell::

    entries:
      - suite: benchmarks/reproduce/planetoid.yaml    # the suite (and so the db) whose runs reproduce it
        dataset: Cora
        model: gcn@kipf2017
        published: [81.5, null]                       # mean, std in the table's units (% for accuracy)
        source: Kipf & Welling 2017, Table 2
        paper_budget: 200 epochs                      # what the paper trained (shown next to ours)
        budget: {epochs: 50}                          # optional: run-setting overrides our runs used

``render`` finds each entry's experiment in its suite (with ``budget`` applied as command-line overrides would be,
so the run keys match), reads the suite's database and summarises the runs with the experiment's protocol. Entries
without stored runs are listed as not run, with the command that runs them. Nothing on the page is typed in: it is
rewritten by the command it states.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gdl_graphs.bench.config import ConfigError, check_overrides
from gdl_graphs.bench.suite import load_suite
from gdl_graphs.bench.report import detail_lines, percent, scaled

BUDGET_FLAGS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "budget": "--budget",
                "train_limit": "--train-limit"}
ENTRY_KEYS = {"suite", "dataset", "model", "published", "source", "paper_budget", "budget", "note"}
HEADER = ("dataset", "model", "protocol", "ours (mean ± std)", "published (mean ± std)", "source", "gap",
          "within 1 published std", "our budget (paper's)")


def load_published(path: str | Path) -> dict:
    """Parse and check a published file (every entry needs suite, dataset, model, published, source)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--reproductions: no file {str(path)!r}")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: entries: expected a non-empty list")
    for i, entry in enumerate(entries):
        where = f"{path}: entries[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(ENTRY_KEYS))})")
        for key in ("suite", "dataset", "model", "published", "source"):
            if key not in entry:
                raise ConfigError(f"{where}.{key}: missing")
        published = entry["published"]
        if not (isinstance(published, list) and len(published) == 2 and isinstance(published[0], (int, float))
                and (published[1] is None or isinstance(published[1], (int, float)))):
            raise ConfigError(f"{where}.published: expected [mean, std] (std may be null), got {published!r}")
        unknown = sorted(set(entry.get("budget") or {}) - set(BUDGET_FLAGS))
        if unknown:
            raise ConfigError(f"{where}.budget.{unknown[0]}: only {', '.join(BUDGET_FLAGS)} can be cut")
    return data


def _experiment(entry: dict, suites: dict):
    overrides = check_overrides(dict(entry.get("budget") or {}))
    cache_key = (entry["suite"], tuple(sorted(overrides.items())))
    if cache_key not in suites:
        suites[cache_key] = load_suite(entry["suite"], overrides)[0]
    header = suites[cache_key]
    for experiment in header["experiments"]:
        if experiment.dataset.lower() == entry["dataset"].lower() and experiment.model == entry["model"]:
            return header, experiment
    raise ConfigError(f"{entry['suite']}: no experiment with dataset {entry['dataset']!r} and model "
                      f"{entry['model']!r}")


def _rows(db: str | None, cache: dict) -> dict[str, dict]:
    from gdl_graphs.bench.store import ResultStore

    if db is None or not Path(db).is_file():
        return {}
    if db not in cache:
        store = ResultStore(db, read_only=True)
        try:
            cache[db] = {row["key"]: row for row in store.rows()}
        finally:
            store.close()
    return cache[db]


def _command(entry: dict) -> str:
    flags = "".join(f" {BUDGET_FLAGS[key]} {value}" for key, value in (entry.get("budget") or {}).items())
    return f"gdl-bench run {entry['suite']} --only {entry['dataset']}/{entry['model']}{flags}"


def render(path: str | Path, output: str | None = None) -> str:
    """The reproductions page (markdown) for the published file at ``path``."""
    data = load_published(path)
    command = f"gdl-bench report --reproductions {path}" + (f" --output {output}" if output else "")
    suites, stores = {}, {}
    lines = [f"# {data.get('title', 'Reproductions of published numbers')}", "",
             f"Generated by `{command}` from the stored runs of the suites named below (run from the repository "
             f"root, with each suite's `db`); the published numbers and their sources are data in `{path}`. "
             "Do not edit by hand: rerun the command.", ""]
    if data.get("note"):
        lines += [data["note"].strip(), ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    not_run, details, provenance = [], [], set()
    for entry in data["entries"]:
        header, experiment = _experiment(entry, suites)
        rows = _rows(header["db"], stores)
        result = experiment.summarize(rows)
        mean, std = entry["published"]
        published = f"{mean}" + (f" ± {std}" if std is not None else "")
        budget = _budget(entry, experiment, result)
        protocol = _protocol(experiment)
        if result is None or not result["n"]:
            lines.append(f"| {entry['dataset']} | {entry['model']} | {protocol} | not run | {published} "
                         f"| {entry['source']} | - | - | {budget} |")
            not_run.append(f"- {entry['dataset']} / {entry['model']}: `{_command(entry)}`")
            continue
        ours_mean = scaled(result["mean"], result["metric"])
        ours_std = scaled(result["std"], result["metric"])
        digits = 2 if percent(result["metric"]) else 4
        gap = ours_mean - mean
        within = "-" if std is None else ("yes" if abs(gap) <= std else "**no**")
        spread = f" ± {ours_std:.{digits}f}" if result["n"] > 1 else ""  # one number has no spread
        partial = _partial(experiment, result)
        lines.append(f"| {entry['dataset']} | {entry['model']} | {protocol} | {ours_mean:.{digits}f}{spread}"
                     f"{partial} | {published} | {entry['source']} | {gap:+.{digits}f} | {within} | {budget} |")
        details += detail_lines(f"{entry['dataset']} / {entry['model']} ({protocol}, `{header['db']}`)",
                                result)
        for run in experiment.runs:
            if run.key in rows:
                provenance.add((rows[run.key]["code_version"], rows[run.key]["torch_version"],
                                rows[run.key]["pyg_version"], rows[run.key]["device"], rows[run.key]["threads"] or 0))
        if entry.get("note"):
            details.append(f"\n{entry['dataset']} / {entry['model']}: {entry['note'].strip()}")
    if not_run:
        lines += ["", "## Not run yet", "", "Each command stores its runs in the suite's database; then rerun the "
                  "command at the top.", ""] + not_run
    if details:
        lines += ["", "## Details"] + details
    if provenance:
        lines += ["", "## Provenance of the stored runs", ""]
        lines += [f"- gdl_graphs {code}, torch {torch_version}, PyG {pyg}, {device}"
                  + (f" ({threads} thread{'s' if threads > 1 else ''})" if threads else "")
                  for code, torch_version, pyg, device, threads in sorted(provenance)]
    return "\n".join(lines) + "\n"


def _partial(experiment, result: dict) -> str:
    """The mark of a number from an unfinished experiment: its stored runs and, for a model selection, the outer
    folds the number averages (one fold's number has no spread); empty when complete."""
    if result["complete"]:
        return ""
    folds = (f"{result['n']}/{len(experiment.selection.folds)} folds, " if experiment.selection is not None
             else "")
    return f" (partial: {folds}{result['stored']}/{result['expected']} runs)"


# dataset options that say how the data is split (the protocol cell names the split rule); every other dataset
# option changes the input itself, so the cell shows it, and two rows of one dataset and model tell apart
_SPLIT_OPTIONS = {"split", "num_folds", "fractions", "stratified"}


def _protocol(experiment) -> str:
    """The protocol's name, with the dataset's split rule, its input options and the selection value where a suite
    set them."""
    run = experiment.runs[0]
    split = run.dataset_options.get("split")
    inputs = "".join(f", {name}={value}" for name, value in sorted(run.dataset_options.items())
                     if name not in _SPLIT_OPTIONS)
    return experiment.protocol + (f", {split} splits" if split else "") + inputs + (
        f", select by val {run.select_by}" if run.select_by != "metric" else "")


def _budget(entry: dict, experiment, result: dict | None) -> str:
    runs = experiment.runs
    epochs = sorted({run.epochs for run in runs})
    seeds = sorted({run.seed for run in runs})
    folds = sorted({run.fold for run in runs})
    ours = f"{'/'.join(map(str, epochs))} epochs"
    if experiment.selection is not None:
        ours += (f", {len(experiment.selection.candidates)} configurations x {len(folds)} folds, "
                 f"{len(experiment.selection.restart_seeds)} restarts")
    else:
        unit = "random splits" if runs[0].dataset_options.get("split") == "random" else "folds"
        ours += f", {len(seeds)} seed{'s' * (len(seeds) > 1)}" + (f" x {len(folds)} {unit}" if len(folds) > 1 else "")
    if entry.get("budget"):
        ours = "**" + ours + "** (cut: " + ", ".join(f"{k} {v}" for k, v in entry["budget"].items()) + ")"
    paper = entry.get("paper_budget")
    return ours + (f" ({paper})" if paper else "")

