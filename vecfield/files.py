"""Atomic writes, the one helper every package uses: write under a temporary name, then rename.

    with atomic_path("scores.json") as temporary:     # any writer that takes a path: a file,
        temporary.write_text(text)                    # a figure, a torch.save, a zarr store
    atomic_write("model.pt", lambda file: torch.save(state, file))   # a writer that takes a file
    write_text_atomic("scorecard.md", text)

The temporary is a hidden sibling ``.<name>.tmp-<pid>-<random>`` in the target's folder (the same
file system, so the final ``os.replace`` is atomic; unique per writer, so concurrent writers never
share one). Readers see either the previous target or the complete new one: an exception removes the
temporary (file or directory tree) and leaves the target untouched; one left by a crash is swept by
:func:`remove_stale_temporaries`. Files and directories are created by the writer with the normal
permissions the umask gives (e.g. 0644 / 0755), not ``tempfile.mkstemp``'s private 0600.

This module imports nothing from vecfield, so every layer (core … train, pipelines) may use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

TEMPORARY_MARKER = ".tmp-"


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """Hidden sibling name ``.<name>.tmp-<pid>-<random>`` that never matches a finished file's pattern."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMPORARY_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def publish(temporary: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Rename the finished ``temporary`` (a file or a directory store) onto ``target`` atomically and
    persist the rename; returns ``target``. A file's data is flushed to disk first. A directory can
    replace only an absent or empty directory (POSIX): an existing store raises OSError."""
    temporary, target = Path(temporary), Path(target)
    if temporary.is_file():
        _fsync_path(temporary)
    os.replace(temporary, target)
    _fsync_directory(target.parent)
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (not yet created) for the caller to write a file or a
    directory to; on normal exit rename it onto ``path`` (see :func:`publish`), on an exception delete
    it and re-raise. Creates the parent folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(target)
    try:
        yield temporary
        publish(temporary, target)
    except BaseException:
        _remove(temporary)
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a binary file opened at a temporary name beside ``path``, then rename it
    onto ``path``; returns the path."""
    target = Path(path)
    with atomic_path(target) as temporary, open(temporary, "wb") as file:
        write(file)
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; creates the folder; returns the path."""
    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))


def save_figure_atomic(figure: Any, path: str | os.PathLike[str], dpi: int = 120, **savefig: Any) -> Path:
    """Save a matplotlib Figure to ``path`` atomically, the format from the suffix (e.g. ``.png``);
    ``savefig`` passes options such as ``bbox_inches`` on. Returns the path."""
    target = Path(path)
    file_format = target.suffix.lstrip(".").lower()
    if not file_format:
        raise ValueError(f"figure path {str(target)!r} needs a suffix naming the format, e.g. '.png'")
    with atomic_path(target) as temporary:
        figure.savefig(temporary, format=file_format, dpi=dpi, **savefig)
    return target


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content (hex), read in 1 MiB blocks: provenance that survives moving it."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporaries (files and directories) left in ``folder`` by crashed writers; returns
    what was removed. Call it only where no other writer is active in ``folder``."""
    stale = list(Path(folder).glob(f".*{TEMPORARY_MARKER}*"))
    for path in stale:
        _remove(path)
    return stale


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_path(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_directory(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
