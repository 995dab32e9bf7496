"""The fixed glibc mmap threshold: freed buffers keep being served by mmap (not by the heap)."""

import json
import platform
import subprocess
import sys
import textwrap

import pytest

from vecfield.train import TrainerConfig
from vecfield.train.allocator import set_mmap_threshold

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocates and frees a 1 MiB tensor, then allocates another and reports how many bytes glibc
# serves from mmapped blocks (mallinfo2().hblkhd) while the second one is alive.
PROBE = textwrap.dedent("""
    import ctypes, json, sys
    import torch
    from vecfield.train.allocator import set_mmap_threshold

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "fixed":
        set_mmap_threshold(65536)
    first = torch.empty(1 << 18)  # 1 MiB
    del first
    base = libc.mallinfo2().hblkhd
    second = torch.empty(1 << 18)
    print(json.dumps(libc.mallinfo2().hblkhd - base))
""")


def _mmapped_bytes(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt/mallinfo2 are glibc features")
def test_fixed_threshold_keeps_freed_buffers_out_of_the_heap() -> None:
    # glibc's default raises its threshold to 1 MiB when the first buffer is freed, so the second
    # comes from the (fragmenting) heap; a fixed 64 KiB threshold serves it by mmap again.
    assert _mmapped_bytes("default") == 0
    assert _mmapped_bytes("fixed") >= 1 << 20


@pytest.mark.parametrize("bad", [-1, 64 * 1024 * 1024, 1.5, True])
def test_out_of_range_thresholds_are_refused(bad: object, tmp_path) -> None:
    with pytest.raises(ValueError, match="mmap threshold"):
        set_mmap_threshold(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mmap threshold"):
        TrainerConfig(run_dir=str(tmp_path), max_steps=1, cpu_mmap_threshold=bad)  # type: ignore[arg-type]


def test_null_threshold_leaves_the_allocator_alone(tmp_path) -> None:
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=1, cpu_mmap_threshold=None)
    assert config.cpu_mmap_threshold is None
