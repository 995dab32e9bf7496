"""In-memory windows: identical to streamed windows, the memory estimate, and the auto/forced choice."""

import numpy as np
import pytest
import torch

from vecfield.data import streaming
from vecfield.data.streaming import WindowedDataset, make_dataloader


@pytest.mark.parametrize(
    ("split", "n_leads", "step_hours"), [(None, 2, 6), ("val", 1, 6), ("train", 1, 12)]
)
def test_in_memory_windows_equal_streamed_windows(built, split, n_leads, step_hours):
    streamed = WindowedDataset(built, n_inputs=2, n_leads=n_leads, step_hours=step_hours, split=split)
    held = WindowedDataset(
        built, n_inputs=2, n_leads=n_leads, step_hours=step_hours, split=split, in_memory=True
    )
    assert held.in_memory and not streamed.in_memory
    np.testing.assert_array_equal(held.starts, streamed.starts)
    n = len(streamed)
    for index in sorted({0, 1, n // 2, n - 1, -1}):
        a, b = streamed[index], held[index]
        for key, x, y in zip(a._fields, a, b, strict=True):
            assert x.dtype == y.dtype, key
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=f"window {index}, {key}")


def test_memory_estimate_is_the_size_of_the_held_block(built):
    held = WindowedDataset(built, n_inputs=2, n_leads=1, step_hours=12, split="train", in_memory=True)
    _, states, forcings = held._block
    assert held.memory_bytes == states.nbytes + forcings.nbytes
    # the block spans the first window's first time to the last window's last time
    assert states.shape[0] == held.window_times(-1)[-1] - held.window_times(0)[0] + 1
    assert states.dtype == forcings.dtype == np.float32


def test_auto_loads_what_fits_and_streams_what_does_not(built, monkeypatch):
    assert WindowedDataset(built, in_memory="auto").in_memory
    monkeypatch.setattr(streaming, "MEMORY_BUDGET_BYTES", 1024)
    with pytest.warns(UserWarning, match=r"streaming the split.*in_memory=True to force"):
        assert not WindowedDataset(built, in_memory="auto").in_memory
    monkeypatch.setattr(streaming, "available_memory_bytes", lambda: 2048)
    with pytest.raises(ValueError, match=r"in_memory=True needs .* MiB.*in_memory='auto' or False"):
        WindowedDataset(built, in_memory=True)
    with pytest.raises(ValueError, match=r"unknown in_memory 'yes'; choose one of \[True, False, 'auto'\]"):
        WindowedDataset(built, in_memory="yes")


def test_a_dataloader_yields_the_same_batches_in_memory(built):
    streamed = make_dataloader(WindowedDataset(built, n_leads=2), batch_size=3, seed=4)
    held = make_dataloader(WindowedDataset(built, n_leads=2, in_memory=True), batch_size=3, seed=4)
    for a, b in zip(streamed, held, strict=True):
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
