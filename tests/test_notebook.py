"""examples/explore.ipynb runs top to bottom in a fresh kernel (nbclient), and is stored without
outputs. Skips cleanly without nbclient, ipykernel or Graphviz's ``dot``."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "explore.ipynb"


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:40]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_notebook_runs_and_shows_three_explorers(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = [output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.outputs]
    pages = [data["text/html"] for data in shown if "<iframe srcdoc=" in data.get("text/html", "")]
    assert len(pages) == 3  # the Value expression, BatchNorm by hand, the placement step
    assert "μ_B[0]" in pages[1] and "1.weight (γ)" in pages[2]
    assert any("image/svg+xml" in data for data in shown)  # d.draw(): the still picture
