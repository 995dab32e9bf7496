"""Atomic writes for evaluation outputs: a temporary file in the same folder, then ``os.replace``.

A reader (or an interrupted run) never sees a half-written scorecard or figure.
"""

import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure


def _temporary_sibling(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    return Path(name)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; creates the folder; returns the path."""
    path = Path(path)
    temporary = _temporary_sibling(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def save_figure_atomic(figure: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure to ``path`` atomically, format from the suffix (e.g. .png)."""
    path = Path(path)
    file_format = path.suffix.lstrip(".").lower()
    if not file_format:
        raise ValueError(f"figure path {str(path)!r} needs a suffix naming the format, e.g. '.png'")
    temporary = _temporary_sibling(path)
    try:
        figure.savefig(temporary, format=file_format, dpi=dpi)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
