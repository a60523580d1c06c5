"""The notebooks run top to bottom on small demo data, draw their plots and are stored clean.

Each notebook is executed once per test module with nbclient, in a kernel that runs this very
interpreter (the repository's virtual environment, whatever kernels the machine has
installed), from the repository root, with the CI sizes set through the notebooks' variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat import NotebookNode

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT_S = 120
PLOT_TAG = "plot"  # cell tag of every cell that must draw a figure
SMALL = {
    "NOTEBOOK_USERS": "300",
    "NOTEBOOK_SERVICES": "120",
    "NOTEBOOK_SESSIONS": "400",
    "NOTEBOOK_SEED": "42",
    "NOTEBOOK_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}
HIT_RATE = re.compile(r"^(\w+) HR@10 \(test\): ([0-9.]+)$", re.MULTILINE)

Run = Callable[[str], NotebookNode]


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """Specs where "python3" is sys.executable (write_kernel_spec's default), not whatever
    python3 kernel the machine or the user's Jupyter folders provide."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / KERNEL)
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def execute(name: str, specs: KernelSpecManager) -> NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        km=KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs),
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(ROOT)}},  # the kernel's working directory
    )
    with pytest.MonkeyPatch.context() as env:  # the kernel inherits this process's environment
        for variable, value in SMALL.items():
            env.setenv(variable, value)
        env.delenv("MPLBACKEND", raising=False)  # figures must come back as inline PNGs
        client.execute()  # raises CellExecutionError, with the cell's traceback, on any error
    return notebook


@pytest.fixture(scope="module")
def executed(kernel_specs: KernelSpecManager) -> Run:
    """Runs a notebook the first time it is asked for; later tests reuse the result."""
    runs: dict[str, NotebookNode] = {}

    def run(name: str) -> NotebookNode:
        if name not in runs:
            runs[name] = execute(name, kernel_specs)
        return runs[name]

    return run


def code_cells(notebook: NotebookNode) -> list[NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def printed(notebook: NotebookNode) -> str:
    return "".join(
        output.text
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def test_the_expected_notebooks_exist() -> None:
    assert {"catalogue.ipynb", "ncf.ipynb"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    dirty = [
        index
        for index, cell in enumerate(code_cells(notebook))
        if cell.outputs or cell.execution_count is not None
    ]
    assert not dirty, f"{name}: code cells {dirty} keep outputs; clear them before saving"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_draws_every_plot(executed: Run, name: str) -> None:
    notebook = executed(name)
    cells = code_cells(notebook)
    assert all(cell.execution_count is not None for cell in cells)
    plots = [cell for cell in cells if PLOT_TAG in cell.metadata.get("tags", [])]
    assert plots, f"{name} has no cell tagged {PLOT_TAG!r}"
    blank = [
        cell.source.splitlines()[0]
        for cell in plots
        if not any("image/png" in output.get("data", {}) for output in cell.outputs)
    ]
    assert not blank, f"{name}: plot cells without a PNG: {blank}"


def test_catalogue_draws_all_five_views(executed: Run) -> None:
    notebook = executed("catalogue.ipynb")
    plots = [cell for cell in code_cells(notebook) if PLOT_TAG in cell.metadata.get("tags", [])]
    assert len(plots) == 5  # statuses, facets, orders per user, long tail, sessions
    text = printed(notebook)
    assert "400 sessions:" in text
    assert "300 users, 120 services" in text


def test_ncf_beats_chance_and_is_served_through_the_registry(executed: Run) -> None:
    text = printed(executed("ncf.ipynb"))
    hit_rates = {name: float(value) for name, value in HIT_RATE.findall(text)}
    assert set(hit_rates) == {"NCF", "Popularity", "Random"}
    assert all(0.0 <= value <= 1.0 for value in hit_rates.values())
    # 1 positive among 100 candidates: chance is 0.10; a promoted NCF is far above it.
    assert hit_rates["NCF"] > hit_rates["Random"]
    assert "engine selected: NCF" in text
    assert "engine selected for an anonymous visitor: Popularity" in text
