"""PyG's own layer tests run against gdl_graphs' drop-ins: each test file twice, as PyG wrote it and with the
drop-in layers imported from ``gdl_graphs.nn`` instead of ``torch_geometric.nn``; a markdown table per file of
passed / failed / skipped on each side, and every test whose outcome differs.

Question answered: do the drop-ins (docs/layers.md) pass the tests PyG wrote for its own layers wherever PyG does?
A test failing on PyG itself (a test file from another PyG version than the installed one) is listed but is not a
difference. Only the import of the drop-in names changes (``from torch_geometric.nn import GCNConv`` becomes
``from gdl_graphs.nn import GCNConv``; other names stay imported from PyG, e.g. ``gcn_norm``); the test code is
unchanged. Both sides run in a fresh ``pytest`` process with ``OMP_NUM_THREADS=1`` and this checkout on
``PYTHONPATH``; results are read from pytest's JUnit XML report.

The test files are not in this repository (they are PyG's code, MIT-licensed, and not shipped in PyG's wheel or
sdist); nothing is downloaded here. Get them from a PyG checkout at the installed version, e.g.::

    git clone https://github.com/pyg-team/pytorch_geometric && git -C pytorch_geometric checkout 2.8.1
    mkdir /tmp/pygtests && cp pytorch_geometric/test/nn/conv/test_{gcn,gin,sage,gat,gatv2,nn,pna}_conv.py /tmp/pygtests

(or from any stored copy of ``pyg-team/pytorch_geometric``: ``test/nn/conv/test_<layer>_conv.py``). They import
``torch_geometric.testing`` helpers, which come with PyG. ``--sources FILE`` puts a note on where the files came
from (repository, commit) into the page.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pyg_conv_tests.py /tmp/pygtests --sources /tmp/pygtests/SOURCES.md \\
        --output benchmarks/results/pyg_conv_tests.md

Results, command and sources: benchmarks/results/pyg_conv_tests.md.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("passed", "failed", "skipped")


def drop_in_names() -> list[str]:
    """The names of ``gdl_graphs.nn``'s drop-in convolutions that ``torch_geometric.nn`` also exports."""
    import torch_geometric.nn as pyg

    import gdl_graphs.nn as ours
    from gdl_graphs.nn.conv.base import DropInConv
    return sorted(name for name in ours.__all__ if hasattr(pyg, name)
                  and isinstance(getattr(ours, name), type) and issubclass(getattr(ours, name), DropInConv))


def swap_imports(source: str, names: list[str]) -> str:
    """``source`` with every top-level ``from torch_geometric.nn import ...`` of a name in ``names`` importing that
    name from ``gdl_graphs.nn`` instead (other names of the statement still come from PyG)."""
    lines = source.splitlines(keepends=True)
    for node in reversed(ast.parse(source).body):
        if not (isinstance(node, ast.ImportFrom) and node.module == "torch_geometric.nn" and node.level == 0):
            continue
        ours = [alias for alias in node.names if alias.name in names]
        if not ours:
            continue
        theirs = [alias for alias in node.names if alias.name not in names]
        statements = [f"from gdl_graphs.nn import {_aliases(ours)}\n"]
        if theirs:
            statements.insert(0, f"from torch_geometric.nn import {_aliases(theirs)}\n")
        lines[node.lineno - 1:node.end_lineno] = statements
    return "".join(lines)


def _aliases(aliases: list[ast.alias]) -> str:
    return ", ".join(a.name if a.asname is None else f"{a.name} as {a.asname}" for a in aliases)


def read_junit(path: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """``{file stem: {test name: (outcome, first line of the message)}}`` from a JUnit XML report (xunit1, which
    names each test's file); a file that failed to import counts as one failed test named ``<collection>``."""
    results: dict[str, dict[str, tuple[str, str]]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        file, name = case.get("file", ""), case.get("name", "")
        if not case.get("classname"):  # a collection error: pytest names the module as the test
            name = "<collection>"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message") or (child.text or "")
            elif child.tag == "skipped" and outcome == "passed":
                outcome, message = "skipped", child.get("message") or ""
        message = message.strip().splitlines()[0] if message.strip() else ""
        results.setdefault(Path(file).stem, {})[name] = (outcome, message)
    return results


def run_pytest(directory: Path, report: Path) -> None:
    """Run the tests in ``directory`` in a fresh process with this checkout importable; results go to ``report``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    subprocess.run([sys.executable, "-m", "pytest", str(directory), "-q", "-p", "no:cacheprovider",
                    "--continue-on-collection-errors", "-o", "junit_family=xunit1", f"--junitxml={report}"],
                   cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if not report.exists():
        raise RuntimeError(f"pytest wrote no report for {directory}")


def measure(test_dir: Path) -> tuple[dict, dict, list[str]]:
    files = sorted(test_dir.glob("test_*.py"))
    if not files:
        raise SystemExit(f"no test_*.py files in {test_dir}")
    names = drop_in_names()
    with tempfile.TemporaryDirectory(prefix="pyg_conv_tests_") as tmp:
        results = []
        for side in ("pyg", "ours"):
            side_dir = Path(tmp) / side
            side_dir.mkdir()
            for file in files:
                if side == "pyg":
                    shutil.copy(file, side_dir / file.name)
                else:
                    (side_dir / file.name).write_text(swap_imports(file.read_text(), names))
            run_pytest(side_dir, Path(tmp) / f"{side}.xml")
            results.append(read_junit(Path(tmp) / f"{side}.xml"))
    return results[0], results[1], [f.stem for f in files]


def _counts(tests: dict[str, tuple[str, str]]) -> Counter:
    return Counter(outcome for outcome, _ in tests.values())


def render(pyg: dict, ours: dict, stems: list[str], command: str, sources: str) -> str:
    import torch
    import torch_geometric

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    out = ["# PyG's own layer tests on gdl_graphs' drop-ins", "",
           "Each file of PyG's layer tests runs twice: as PyG wrote it (against `torch_geometric.nn`) and with the "
           "drop-in layers imported from `gdl_graphs.nn` (only that import line changes). Generated by "
           "`benchmarks/pyg_conv_tests.py`; a test that fails on PyG itself comes from a test file of another PyG "
           "version and is no difference.", "",
           f"Command: `{command}`", "",
           f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, gdl_graphs at commit "
           f"{commit}, Python {sys.version.split()[0]}.", ""]
    if sources:
        out += ["## Test files", "", sources.strip(), ""]
    out += ["## Results", "", "| file | PyG passed | PyG failed | PyG skipped | ours passed | ours failed | ours skipped |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    totals = [Counter(), Counter()]
    for stem in stems:
        row = [stem + ".py"]
        for side, total in zip((pyg, ours), totals):
            counts = _counts(side.get(stem, {}))
            total.update(counts)
            row += [str(counts[o]) for o in OUTCOMES]
        out.append("| " + " | ".join(row) + " |")
    out.append("| **total** | " + " | ".join(str(t[o]) for t in totals for o in OUTCOMES) + " |")

    differing, failing_on_pyg = [], []
    for stem in stems:
        for name in sorted(set(pyg.get(stem, {})) | set(ours.get(stem, {}))):
            theirs = pyg.get(stem, {}).get(name, ("missing", ""))
            mine = ours.get(stem, {}).get(name, ("missing", ""))
            if theirs[0] != mine[0]:
                differing.append(f"| {stem}.py::{name} | {theirs[0]} | {mine[0]} | {_cell(mine[1] or theirs[1])} |")
            elif theirs[0] == "failed":
                failing_on_pyg.append(f"| {stem}.py::{name} | {_cell(theirs[1])} | {_cell(mine[1])} |")
    out += ["", "## Tests whose outcome differs", ""]
    out += (["| test | PyG | ours | message |", "|---|---|---|---|"] + differing) if differing else ["None."]
    out += ["", "## Tests failing on PyG itself (and on ours)", ""]
    out += (["| test | PyG's message | ours |", "|---|---|---|"] + failing_on_pyg) if failing_on_pyg else ["None."]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")[:200]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("test_dir", type=Path, help="directory holding PyG's test_*.py files (not searched below)")
    parser.add_argument("--sources", type=Path, help="markdown note on where the test files came from")
    parser.add_argument("--output", type=Path, help="write the page here (default: print it)")
    args = parser.parse_args(argv)
    pyg, ours, stems = measure(args.test_dir.resolve())
    command = "python benchmarks/pyg_conv_tests.py " + " ".join(argv if argv is not None else sys.argv[1:])
    page = render(pyg, ours, stems, command, args.sources.read_text() if args.sources else "")
    if args.output:
        args.output.write_text(page)
    else:
        print(page, end="")


if __name__ == "__main__":
    main()
