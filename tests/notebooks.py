"""Executing a notebook of ``notebooks/`` in the tests: one python3 kernel run, the outputs back.

The kernel inherits this process's environment, so a test sets its knobs (``VECFIELD_SMALL``,
checkpoint paths …) with ``monkeypatch.setenv`` before calling :func:`run_notebook`.
"""

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(name: str, folder: Path | None = None, timeout: int = 300) -> list[Any]:
    """Execute ``notebooks/<name>`` with ``folder`` (default ``notebooks/``) as the working
    directory; returns the outputs of its code cells, in order. A failing cell raises."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    where = str(folder if folder is not None else ROOT / "notebooks")
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": where}}).execute()
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def output_text(outputs: list[Any]) -> str:
    """The printed text of ``outputs``, one stream after another."""
    return "\n".join(out.get("text", "") for out in outputs)
