"""The exploration notebook runs top to bottom on the built warehouse."""

import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

PROJECT_DIR = Path(__file__).resolve().parents[2]
NOTEBOOK = PROJECT_DIR / "analysis" / "01_explore_features.ipynb"

pytestmark = pytest.mark.slow


def test_the_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_exploration_notebook_executes(
    built_copy: Callable[[], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = built_copy()
    # The notebook finds the project from its own folder, as it does when opened in Jupyter.
    monkeypatch.delenv("PROJECT_DIR")
    (project / "analysis").mkdir()
    copy = project / "analysis" / NOTEBOOK.name
    shutil.copy2(NOTEBOOK, copy)
    notebook = nbformat.read(copy, as_version=4)

    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(copy.parent)}},
    ).execute()

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)
