"""notebooks/density_estimation.ipynb runs end to end on small settings (VECFIELD_SMALL=1)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_density_notebook_executes(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / "density_estimation.ipynb", as_version=4)
    monkeypatch.setenv("VECFIELD_SMALL", "1")  # the kernel inherits this process's environment
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    text = "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))
    assert "small settings" in text
    assert "log L: two components -2952.70, one -2979.06" in text
    assert "bits/dim" in text and "uniform baseline: 4.087" in text
