"""Comparison tables and plots from the results store.

A table row is one (dataset, model): the test metric at the best validation epoch as mean ± std over its runs
(seeds x folds), the validation metric likewise, parameters, seconds per training epoch and the number of runs.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import numpy as np

from gdl_graphs.data.benchmark import METRICS

HEADER = ("dataset", "model", "metric", "test (at best val)", "val", "params", "s/epoch", "runs")


def summarize(rows: list[dict]) -> list[dict]:
    """Group stored runs by (dataset, model) and aggregate them."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["model"])].append(row)
    summary = []
    for (dataset, model), runs in groups.items():
        test = np.array([r["test"] for r in runs], dtype=float)
        val = np.array([r["val"] for r in runs], dtype=float)
        summary.append({
            "dataset": dataset, "model": model, "metric": runs[0]["metric"],
            "test_mean": float(test.mean()), "test_std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
            "val_mean": float(val.mean()), "val_std": float(val.std(ddof=1)) if len(val) > 1 else 0.0,
            "params": int(np.median([r["params"] for r in runs])),
            "sec_per_epoch": float(np.mean([r["sec_per_epoch"] or 0.0 for r in runs])), "runs": len(runs),
            "horizons": _horizons(runs),
        })
    return sorted(summary, key=lambda s: (s["dataset"], _rank(s), s["model"]))


def _rank(entry: dict) -> float:
    value = entry["test_mean"]
    metric = METRICS.get(entry["metric"])
    return -value if metric is not None and metric.higher_is_better else value


def _horizons(runs: list[dict]) -> dict:
    keys = sorted({k for r in runs for k in (r["metrics"] or {}).get("test", {}) if k.startswith("mae@")},
                  key=lambda k: int(k.split("@")[1]))
    return {k: float(np.mean([r["metrics"]["test"][k] for r in runs])) for k in keys}


def _fmt(mean: float, std: float, metric: str, runs: int) -> str:
    """``mean ± std`` in the metric's units; one run's number alone (it has no spread)."""
    scale = 100.0 if metric in METRICS and METRICS[metric].percent else 1.0
    digits = 2 if scale == 100.0 else 4
    if math.isnan(mean):
        return "nan"
    return f"{mean * scale:.{digits}f}" + (f" ± {std * scale:.{digits}f}" if runs > 1 else "")


def table_rows(summary: list[dict]) -> list[tuple]:
    return [(s["dataset"], s["model"], s["metric"] + (" (%)" if s["metric"] in ("accuracy", "rocauc") else ""),
             _fmt(s["test_mean"], s["test_std"], s["metric"], s["runs"]),
             _fmt(s["val_mean"], s["val_std"], s["metric"], s["runs"]),
             f"{s['params']:,}", f"{s['sec_per_epoch']:.2f}", str(s["runs"])) for s in summary]


def markdown(summary: list[dict]) -> str:
    """A markdown table; forecasting datasets get extra MAE@horizon columns in a second table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(summary)]
    horizon_rows = [s for s in summary if s["horizons"]]
    if horizon_rows:
        keys = sorted({k for s in horizon_rows for k in s["horizons"]}, key=lambda k: int(k.split("@")[1]))
        lines += ["", "| dataset | model | " + " | ".join(f"test MAE @ {k.split('@')[1]}" for k in keys) + " |",
                  "|---|---|" + "|".join("---" for _ in keys) + "|"]
        lines += [f"| {s['dataset']} | {s['model']} | " + " | ".join(
            f"{s['horizons'][k]:.4f}" if k in s["horizons"] else "-" for k in keys) + " |" for s in horizon_rows]
    return "\n".join(lines)


def outcomes(rows: list[dict]) -> str:
    """The runs that ended without a result (diverged or failed), one line each, with the epoch and the message."""
    lines = [f"Runs without a result ({len(rows)}, not in the table above):"]
    for row in rows:
        epoch = f" at epoch {row['epochs_run']}" if row.get("epochs_run") is not None else ""
        lines.append(f"- {row['state']}{epoch}: {row['dataset']}/{row['model']} seed={row['seed']} "
                     f"fold={row['fold']}: {row.get('message') or ''}")
    return "\n".join(lines)


def percent(metric: str) -> bool:
    """Whether tables print ``metric`` in percent (accuracy, ROC-AUC, AP)."""
    return metric in METRICS and METRICS[metric].percent


def scaled(value: float, metric: str) -> float:
    """A metric in the units tables print: percent for accuracy, ROC-AUC and AP."""
    return value * 100.0 if percent(metric) else value


def protocol_markdown(experiments, rows: dict[str, dict]) -> str:
    """One row per protocol experiment (mean ± std as its protocol defines it), then each one's detail lines
    (the configuration each outer fold selected; Xu et al.'s best mean epoch)."""
    lines = ["| dataset | model | protocol | metric | test | folds / runs | stored runs |",
             "|---|---|---|---|---|---|---|"]
    details = []
    for experiment in experiments:
        result = experiment.summarize(rows)
        if result is None:
            lines.append(f"| {experiment.dataset} | {experiment.model} | {experiment.protocol} | - | not run | - | "
                         f"0 / {experiment.expected_runs()} |")
            continue
        metric = result["metric"]
        value = _fmt(result["mean"], result["std"], metric, result["n"]) if result["n"] else "pending"
        lines.append(f"| {experiment.dataset} | {experiment.model} | {experiment.protocol} | {metric} | {value}"
                     f"{'' if result['complete'] else ' (partial)'} | {result['n']} | "
                     f"{result['stored']} / {result['expected']} |")
        details += detail_lines(f"{experiment.dataset} / {experiment.model} ({experiment.protocol})", result)
    return "\n".join(lines + details)


def detail_lines(title: str, result: dict) -> list[str]:
    """A protocol result's detail (per-fold selections, best epoch) as a titled markdown list."""
    return [f"\n{title}:"] + [f"- {line}" for line in result["detail"]] if result["detail"] else []


def csv_text(summary: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["dataset", "model", "metric", "test_mean", "test_std", "val_mean", "val_std", "params",
                     "sec_per_epoch", "runs"])
    for s in summary:
        writer.writerow([s["dataset"], s["model"], s["metric"], s["test_mean"], s["test_std"], s["val_mean"],
                         s["val_std"], s["params"], s["sec_per_epoch"], s["runs"]])
    return buffer.getvalue()


def bar_chart(summary: list[dict], path: str) -> None:
    """One panel per dataset: the test metric of each model with ± std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({s["dataset"] for s in summary})
    figure, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.5), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        entries = [s for s in summary if s["dataset"] == dataset]
        axis.bar([s["model"] for s in entries], [s["test_mean"] for s in entries],
                 yerr=[s["test_std"] for s in entries], capsize=4, color="tab:blue")
        axis.set_title(dataset)
        axis.set_ylabel(f"test {entries[0]['metric']} (at best val)")
        axis.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def learning_curves(rows: list[dict], path: str) -> None:
    """Validation metric per epoch, one panel per dataset, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    figure, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.5), squeeze=False)
    colors = {}
    for axis, dataset in zip(axes[0], datasets):
        for row in (r for r in rows if r["dataset"] == dataset and r["curve"]):
            color = colors.setdefault(row["model"], f"C{len(colors) % 10}")
            axis.plot([c["epoch"] for c in row["curve"]], [c["val"] for c in row["curve"]], color=color,
                      alpha=0.7, label=row["model"])
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        axis.legend(unique.values(), unique.keys(), fontsize=7)
        axis.set_title(dataset)
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation metric")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
