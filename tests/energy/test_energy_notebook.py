"""notebooks/energy_models.ipynb runs end to end on small settings (VECFIELD_SMALL=1)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_energy_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / "energy_models.ipynb", as_version=4)
    monkeypatch.setenv("VECFIELD_SMALL", "1")  # the kernel inherits this process's environment
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    text = "\n".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))
    assert "small settings" in text
    assert "MALA on E1 + E2" in text and "ODE of summed scores" in text
    assert "AIS log Z" in text and "held-out NLL" in text and "p(h | x)" in text
