"""Atomic file replacement: write a temporary file in the same folder, fsync, then os.replace."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMPORARY_MARKER = ".tmp-"


def temporary_name(path: Path) -> Path:
    """Hidden sibling name ``.<name>.tmp-<pid>`` that never matches a finished file's pattern."""
    return path.with_name(f".{path.name}{TEMPORARY_MARKER}{os.getpid()}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then atomically rename it to ``path``.

    Readers see either the previous file or the complete new one: an exception or a crash
    before the rename leaves ``path`` untouched (the temporary is removed on exceptions; one
    left by a crash is ignored by readers and swept by :func:`remove_stale_temporaries`).
    """
    target = Path(path)
    tmp = temporary_name(target)
    try:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(target.parent)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporaries left in ``folder`` by crashed writers; returns what was removed."""
    stale = [p for p in folder.glob(f".*{TEMPORARY_MARKER}*") if p.is_file()]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


def _fsync_directory(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError), _open_directory(folder) as fd:
        os.fsync(fd)


@contextlib.contextmanager
def _open_directory(folder: Path) -> Iterator[int]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)
