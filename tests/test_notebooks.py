"""The notebooks in ``notebooks/``: each runs top to bottom without an error, and each is committed stripped.

Execution is in memory with nbclient (kernel ``python3``, the interpreter running the tests, with this process's
environment, so ``$GDL_DATA`` reaches the notebooks); outputs are never written back to the files. Notebooks that
read staged data are marked ``data`` and skip without it (they fail instead under ``GDL_REQUIRE_DATA=1``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.fixtures.staged import require_staged

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
CELL_TIMEOUT = 300  # seconds per cell; every notebook is meant to finish in well under a minute on 2 CPU cores

# Staged raw files (relative to the data root) each notebook reads. N-body data is simulated on first use.
STAGED = {
    "01_blueprint.ipynb": (),
    "02_molecules.ipynb": ("MoleculeNet/esol/raw/delaney-processed.csv",),
    "03_traffic.ipynb": ("traffic/MontevideoBus/montevideo_bus.json",),
    "04_equivariance.ipynb": (),
    "05_coarsening.ipynb": (),
}

NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("*.ipynb"))


def _params():
    for name in NOTEBOOKS:
        marks = [pytest.mark.slow] + ([pytest.mark.data] if STAGED.get(name) else [])
        yield pytest.param(name, marks=marks, id=name.removesuffix(".ipynb"))


def test_every_notebook_is_listed():
    """A new notebook must say which staged data it needs (and so gets executed by the test below)."""
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    unlisted = sorted(set(NOTEBOOKS) - set(STAGED))
    assert not unlisted, f"add {unlisted} to STAGED in {__file__} (the staged files each one reads)"
    missing = sorted(set(STAGED) - set(NOTEBOOKS))
    assert not missing, f"STAGED lists notebooks that do not exist in {NOTEBOOK_DIR}: {missing}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_stripped(name):
    """Commit-ready notebooks carry no outputs and no execution counts, and open with a markdown cell."""
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(notebook)
    dirty = [index for index, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{name}: code cells {dirty} carry outputs or an execution count; strip them (e.g. "
                       f"`jupyter nbconvert --clear-output --inplace notebooks/{name}`)")
    assert notebook.cells and notebook.cells[0].cell_type == "markdown", \
        f"{name}: the first cell must be markdown explaining the idea the notebook shows"


def test_readme_links_every_notebook():
    section = re.search(r"^## Notebooks\n(.*?)(?=^## |\Z)", (REPO / "README.md").read_text(), re.M | re.S)
    assert section, "README.md has no '## Notebooks' section"
    unlinked = [name for name in NOTEBOOKS if f"(notebooks/{name})" not in section.group(1)]
    assert not unlinked, f"README.md's Notebooks section does not link {unlinked}"


@pytest.mark.parametrize("name", list(_params()))
def test_notebook_runs(name, request):
    needs = STAGED.get(name)
    if needs is None:
        pytest.fail(f"{name} is not listed in STAGED")
    if needs:
        require_staged(request.getfixturevalue("staged_root"), *needs)
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError (with the cell and its traceback) on any error
    print(f"{name}: {time.perf_counter() - started:.1f} s")
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, f"{name}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
