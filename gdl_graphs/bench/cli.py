"""The ``gdl-bench`` command line: ``run``, ``report``, ``list``, ``verify`` and ``data``.

Bad arguments or a bad suite exit with code 2 and a one-line message that names the key.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gdl_graphs
from gdl_graphs.bench.config import ConfigError, StoreError
from gdl_graphs.data.root import export_data_root

DEFAULT_DB = "results/gdl-bench.sqlite"


def _csv(kind):
    def parse(text: str):
        try:
            return [kind(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__}s, got {text!r}") from None
    return parse


def _cmd_run(args: argparse.Namespace) -> int:
    from gdl_graphs.bench.config import check_overrides, shard
    from gdl_graphs.bench.suite import load_suite
    from gdl_graphs.bench.distributed import DistributedContext
    from gdl_graphs.bench.protocols import expand_protocol
    from gdl_graphs.bench.report import markdown, outcomes, protocol_markdown, summarize
    from gdl_graphs.bench.runner import run_all, run_experiments
    from gdl_graphs.bench.store import ResultStore

    overrides = check_overrides({"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                                 "device": args.device, "budget": args.budget, "train_limit": args.train_limit})
    if args.suite:
        if args.dataset or args.models:
            raise ConfigError("give either a suite file or --dataset/--models, not both")
        header, _ = load_suite(args.suite, overrides)
    else:
        if not args.dataset or not args.models:
            raise ConfigError("run needs a suite file, or --dataset and --models")
        experiment = {"dataset": args.dataset, "models": args.models, "seeds": args.seeds or [0],
                      "folds": "all" if args.folds == ["all"] else args.folds or [0]}
        header = {"name": None, "db": None, "experiments": expand_protocol(experiment, {}, "--", overrides)}
    experiments = header["experiments"]
    if args.only:
        wanted = {name.lower() for name in args.only}
        experiments = [e for e in experiments if e.dataset.lower() in wanted or e.model.lower() in wanted
                       or f"{e.dataset}/{e.model}".lower() in wanted]
        if not experiments:
            raise ConfigError(f"--only: no run of the suite matches {','.join(args.only)}")
    selecting = any(e.selection is not None for e in experiments)
    if args.shard and selecting:
        raise ConfigError("--shard: a model selection (protocol errica2020) needs all its runs in one database; "
                          "split it with --only DATASET/MODEL instead")
    runs = [run for e in experiments for run in e.runs]
    folds = None if args.folds in (None, ["all"]) else set(args.folds)
    if args.suite and (args.seeds or folds):  # with a suite, they pick among its runs (before --shard splits them)
        if selecting:
            raise ConfigError("--seeds/--folds: a model selection (protocol errica2020) trains every run of its "
                              "grid; split it with --only DATASET/MODEL instead")
        runs = [run for run in runs if (not args.seeds or run.seed in args.seeds) and (not folds or run.fold in folds)]
        if not runs:
            raise ConfigError(f"--seeds/--folds: no run of the suite has seed in {args.seeds or 'any'} and fold in "
                              f"{sorted(folds) if folds else 'any'}")
    runs = shard(runs, args.shard)
    if args.lease is not None and not args.lease > 0:
        raise ConfigError(f"--lease: must be positive, got {args.lease}")
    db = args.db or header["db"] or DEFAULT_DB
    context = DistributedContext.from_environment(overrides.get("device", "auto"))
    store = ResultStore(db) if context.is_main else None  # only rank 0 talks to the database
    if selecting and context.active:
        raise ConfigError("protocol errica2020 selects each fold's configuration from the stored results: run it "
                          "as separate workers on one store, not under torchrun")
    settings = {"suite": header["name"], "root": export_data_root(args.data_root), "progress": not args.no_progress,
                "context": context, "checkpoint_dir": args.checkpoint_dir, "threads": args.threads,
                **({"lease": args.lease} if args.lease else {})}
    try:
        if selecting:
            run_experiments(experiments, store, **settings)
        else:
            run_all(runs, store, **settings)
        if context.is_main:
            plain_keys = {run.key for e in experiments if e.protocol == "seeds" for run in e.runs}
            keys = {run.key for e in experiments for run in e.runs}
            rows = [row for row in store.rows() if row["key"] in plain_keys]
            unfinished = [row for row in store.rows(states=("diverged", "failed")) if row["key"] in keys]
            if rows or not any(e.protocol != "seeds" for e in experiments):
                print(f"Results ({len(rows)} runs, {store.label}); test metric at the best validation epoch:\n")
                print(markdown(summarize(rows)))
            protocol_experiments = [e for e in experiments if e.protocol != "seeds"]
            if protocol_experiments:  # summarised as their protocol defines it
                print("\n" + protocol_markdown(protocol_experiments, {row["key"]: row for row in store.rows()}))
            if unfinished:
                print("\n" + outcomes(unfinished))
            if any(row["state"] == "failed" for row in unfinished):
                return 1
    finally:
        if store is not None:
            store.close()
        context.close()
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gdl_graphs.bench.report import bar_chart, csv_text, learning_curves, markdown, outcomes, summarize
    from gdl_graphs.bench.store import ResultStore

    if args.reproductions:
        from gdl_graphs.bench.reproductions import render

        page = render(args.reproductions, output=args.output)
        if args.output:
            Path(args.output).write_text(page)
            print(f"written to {args.output}", file=sys.stderr)
        else:
            print(page, end="")
        return 0
    if args.output:
        raise ConfigError("--output: only with --reproductions")
    if args.protocol:
        return _report_protocols(args)
    for option, target in (("--plot", args.plot), ("--curves", args.curves)):
        if target:  # the folder is made (or refused) before anything is printed
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ConfigError(f"{option}: cannot create the folder of {target!r} ({error.strerror})") from None
    store = ResultStore(args.db, read_only=True)
    try:
        rows = store.rows(suite=args.suite, dataset=args.dataset)
        unfinished = store.rows(suite=args.suite, dataset=args.dataset, states=("diverged", "failed"))
    finally:
        store.close()
    if not rows and not unfinished:
        print(f"no finished runs in {store.label}" + (f" for suite {args.suite!r}" if args.suite else ""))
        return 1
    summary = summarize(rows)
    if args.format == "csv":
        print(csv_text(summary), end="")
    else:
        print("Test metric at the best validation epoch, mean ± std over seeds/folds.\n")
        print(markdown(summary))
        if unfinished:
            print("\n" + outcomes(unfinished))
    if not rows:
        return 1
    if args.plot:
        bar_chart(summary, args.plot)
        print(f"\nbar chart written to {args.plot}", file=sys.stderr)
    if args.curves:
        learning_curves(rows, args.curves)
        print(f"learning curves written to {args.curves}", file=sys.stderr)
    return 0


def _report_protocols(args: argparse.Namespace) -> int:
    from gdl_graphs.bench.suite import load_suite
    from gdl_graphs.bench.report import protocol_markdown
    from gdl_graphs.bench.store import ResultStore

    header, _ = load_suite(args.protocol)
    db = args.db if args.db != DEFAULT_DB else header["db"] or DEFAULT_DB
    store = ResultStore(db, read_only=True)
    try:
        rows = {row["key"]: row for row in store.rows()}
    finally:
        store.close()
    print(protocol_markdown(header["experiments"], rows))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from gdl_graphs.models import list_models

        for entry in list_models():
            recipes = f" (recipes: {', '.join(r.name for r in entry.recipes)})" if entry.recipes else ""
            print(f"{entry.name:<20} {entry.family:<12} {entry.summary}{recipes}")
            print(f"{'':<20} {'':<12} trains on: {', '.join(sorted(entry.tasks))}"
                  + (f"; needs: {', '.join(entry.needs())}" if entry.needs() else ""))
        print("\nPaper recipes (a model configured as its paper; use the name as a model in a suite):")
        for entry in list_models():
            for recipe in entry.recipes:
                print(f"{recipe.name:<20} {entry.name:<10} {recipe.source}")
    else:
        from gdl_graphs.data import list_benchmarks

        for spec in list_benchmarks():
            print(f"{spec.name:<14} {spec.family:<10} {spec.task:<21} {spec.metric:<9} {spec.summary}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from gdl_graphs.bench.verify import verify

    rows = verify(seed=args.seed)
    width = max(len(name) for name, *_ in rows)
    group_width = max(len("symmetry group"), *(len(group) for _, group, *_ in rows))
    print(f"{'layer / model':<{width}}  {'symmetry group':<{group_width}}  max error  status")
    for name, group, error, status in rows:
        shown = f"{error:.2e}" if error is not None else "-"
        print(f"{name:<{width}}  {group:<{group_width}}  {shown:>9}  {status}")
    failed = sum(status != "ok" for *_, status in rows)
    print(f"{len(rows) - failed} of {len(rows)} layers and models certified")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdl-bench", description="Compare and certify graph neural networks.")
    parser.add_argument("--version", action="version", version=f"gdl_graphs {gdl_graphs.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run", help="train models on benchmarks and store the results",
        description="Train every (dataset, model, seed, fold) of a suite file, or of --dataset/--models, skipping "
                    "runs already in the results database and resuming interrupted ones; then print the table.")
    run.add_argument("suite", nargs="?", help="suite YAML file (e.g. benchmarks/quick.yaml)")
    run.add_argument("--dataset", help="one dataset (instead of a suite), e.g. MUTAG")
    run.add_argument("--models", type=_csv(str), help="comma-separated model names, e.g. gcn,gin")
    run.add_argument("--seeds", type=_csv(int), help="comma-separated seeds (default 0)")
    run.add_argument("--folds", type=lambda t: ["all"] if t == "all" else _csv(int)(t),
                     help="folds of cross-validated datasets: comma-separated or 'all' (default 0); with a suite, "
                          "--seeds and --folds pick among its runs")
    run.add_argument("--budget", help="parameter budget that sets the width, e.g. 100k or 500k")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--lr", type=float)
    run.add_argument("--train-limit", type=int, help="train on this many training examples (a quick subset)")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"))
    run.add_argument("--db", help=f"results database: a SQLite file or postgresql://user@host/dbname (default: the "
                                  f"suite's db, else {DEFAULT_DB})")
    run.add_argument("--checkpoint-dir", help="folder of the checkpoints of unfinished runs (default <db>.ckpt); "
                                              "share it between machines so that one resumes another's run")
    run.add_argument("--lease", type=float, help="seconds a claimed run stays held after its worker's last "
                                                 "heartbeat before another worker takes it over (default 60)")
    run.add_argument("--only", type=_csv(str), help="run only these datasets, models or DATASET/MODEL pairs "
                                                     "of the suite (comma-separated)")
    run.add_argument("--shard", help="run only shard i of n (e.g. 2/4) to split a suite across machines")
    run.add_argument("--data-root", help="data root (default: $GDL_DATA, else the checkout's datasets/)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--threads", type=int, help="torch intra-op threads (default: $OMP_NUM_THREADS, else the "
                                                 "usable cores / the processes of this machine's job)")
    run.set_defaults(handler=_cmd_run)

    report = commands.add_parser("report", help="print the comparison table of stored results",
                                 description="Aggregate stored runs by dataset and model (mean ± std over seeds "
                                             "and folds of the test metric at the best validation epoch).")
    report.add_argument("--db", default=DEFAULT_DB, help=f"results database, a SQLite file or a postgresql:// URL "
                                                         f"(default {DEFAULT_DB})")
    report.add_argument("--suite", help="only runs of this suite")
    report.add_argument("--dataset", help="only runs on this dataset")
    report.add_argument("--format", choices=("md", "csv"), default="md")
    report.add_argument("--protocol", metavar="SUITE",
                        help="report the protocols of this suite (errica2020: the configuration each fold selected; "
                             "xu2019: best mean epoch)")
    report.add_argument("--reproductions", metavar="PUBLISHED",
                        help="the reproductions page: every entry of this file (published numbers and sources) "
                             "against the stored runs of its suite")
    report.add_argument("--output", help="write the --reproductions page to this file")
    report.add_argument("--plot", help="write a bar chart with error bars to this PNG file")
    report.add_argument("--curves", help="write validation learning curves to this PNG file")
    report.set_defaults(handler=_cmd_report)

    listing = commands.add_parser("list", help="registered models or datasets",
                                  description="List the registered models or datasets.")
    listing.add_argument("what", choices=("models", "datasets"))
    listing.set_defaults(handler=_cmd_list)

    verify = commands.add_parser("verify", help="check every registered layer's and model's symmetry",
                                 description="Run every registered layer and model through gdl_graphs.testing and "
                                             "print its symmetry group and measured max equivariance error.")
    verify.add_argument("--seed", type=int, default=0, help="seed of the random inputs and group elements")
    verify.set_defaults(handler=_cmd_verify)

    from gdl_graphs.data.cli import add_data_commands

    add_data_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with code 2 and a one-line message on bad arguments
    try:
        return args.handler(args)
    except ConfigError as error:
        parser.exit(2, f"gdl-bench: error: {error}\n")
    except StoreError as error:
        parser.exit(1, f"gdl-bench: error: {error}\n")
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are in the database; rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
