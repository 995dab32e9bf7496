"""The one atomic-write helper (vecfield.files): normal permissions, nothing partial, rename into place."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from vecfield.files import (
    atomic_path,
    atomic_write,
    remove_stale_temporaries,
    save_figure_atomic,
    temporary_name,
    write_text_atomic,
)


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_figures_get_the_umask_permissions_not_mkstemps_0600(tmp_path, umask_022):
    text = write_text_atomic(tmp_path / "a" / "scorecard.md", "| x |\n")
    figure = plt.figure()
    png = save_figure_atomic(figure, tmp_path / "map.png")
    plt.close(figure)
    binary = atomic_write(tmp_path / "model.pt", lambda file: file.write(b"\x00\x01"))
    assert [mode(p) for p in (text, png, binary)] == [0o644] * 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and binary.read_bytes() == b"\x00\x01"


def test_a_directory_store_is_built_aside_and_renamed_into_place(tmp_path, umask_022):
    target = tmp_path / "store.zarr"
    data = xr.Dataset({"x": ("t", np.arange(4.0))})
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".store.zarr.tmp-")
        data.to_zarr(temporary, zarr_format=2)
        assert not target.exists()  # readers never see a half-written store
    assert mode(target) == 0o755 and xr.open_zarr(target)["x"].values.tolist() == [0, 1, 2, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = write_text_atomic(tmp_path / "scores.json", "old")

    def dies_mid_write(file) -> None:
        file.write(b"half")
        assert path.read_text() == "old"  # the target is untouched while the new one is written
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, dies_mid_write)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "store.zarr") as temporary:
        xr.Dataset({"x": ("t", np.zeros(3))}).to_zarr(temporary, zarr_format=2)
        raise RuntimeError("interrupted after the first chunk")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]


def test_temporaries_are_unique_per_writer_and_swept_after_a_crash(tmp_path):
    target = tmp_path / "step_6.pt"
    first, second = temporary_name(target), temporary_name(target)
    assert first != second and first.parent == second.parent == tmp_path
    first.write_bytes(b"partial")  # what SIGKILL during a write leaves behind
    second.mkdir()
    (second / "chunk").write_bytes(b"partial")
    write_text_atomic(tmp_path / "keep.txt", "kept")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([first, second])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_figure_path_needs_a_format_suffix(tmp_path):
    figure = plt.figure()
    with pytest.raises(ValueError, match="needs a suffix"):
        save_figure_atomic(figure, tmp_path / "map")
    plt.close(figure)
