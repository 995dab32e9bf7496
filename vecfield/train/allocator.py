"""CPU heap tuning: a fixed glibc mmap threshold, so freed activation buffers go back to the OS.

glibc's malloc serves a request of at least ``M_MMAP_THRESHOLD`` bytes with its own ``mmap`` and
returns it to the OS on ``free``. By default the threshold is *dynamic*: each time an mmapped
chunk is freed, the threshold rises to that chunk's size (up to 32 MiB on 64-bit). After one
training step nearly every activation buffer (tens of KiB to a few MiB for a mesh GNN) is served
from the heap instead, and the heap fragments: peak RSS grows well above the live tensors (config
M of ``benchmarks/gnn_step.py``: 4.63 GB against 3.80 GB with a fixed 64 KiB threshold).
``mallopt(M_MMAP_THRESHOLD, n)`` fixes the threshold and turns the dynamic adjustment off: the
same effect as ``export MALLOC_MMAP_THRESHOLD_=n`` but settable from inside the process, at any
time (it affects later allocations). Other C libraries (macOS, Windows, musl) are left alone.

The price is speed: every large buffer is then a fresh ``mmap`` whose pages the kernel faults in
and zeroes on first touch. On config S of ``benchmarks/gnn_step.py`` a training step takes about
2× as long (2.0 against 0.85 s) for 0.82 against 1.21 GB of peak RSS, so the Trainer leaves the
allocator alone unless ``TrainerConfig.cpu_mmap_threshold`` asks for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_MMAP_THRESHOLD = -3  # <malloc.h>
MAX_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's HEAP_MAX / 2 on 64-bit: larger values are refused


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def check_mmap_threshold(nbytes: object) -> None:
    """ValueError unless ``nbytes`` is an integer in [0, 32 MiB] (glibc refuses larger values)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes <= MAX_MMAP_THRESHOLD:
        raise ValueError(f"the mmap threshold must be an integer number of bytes in "
                         f"[0, {MAX_MMAP_THRESHOLD}] (glibc's limit), got {nbytes!r}; 65536 suits training "
                         "on CPU, null leaves the allocator alone")


def set_mmap_threshold(nbytes: int) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process; False where glibc is absent."""
    check_mmap_threshold(nbytes)
    libc = _glibc()
    if libc is None:
        return False
    if libc.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(nbytes)) != 1:
        raise OSError(f"glibc refused mallopt(M_MMAP_THRESHOLD, {nbytes})")
    return True
