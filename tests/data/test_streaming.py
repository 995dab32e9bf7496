"""Windowed streaming: shapes, exact values, splits that no window crosses, layout round-trips."""

import numpy as np
import pytest
import torch
import xarray as xr

from vecfield.data.channels import ChannelLayout
from vecfield.data.streaming import WindowedDataset, make_dataloader


def test_window_values_match_the_store(built):
    ds = xr.open_zarr(built).load()
    data = WindowedDataset(built, n_inputs=2, n_leads=2, step_hours=6, split=None)
    assert data.static_channels[:2] == (("land_sea_mask", None), ("geopotential_at_surface", None))
    H, W = ds.sizes["latitude"], ds.sizes["longitude"]
    channels = [(v, lev) for v in ("geopotential", "temperature") for lev in (500, 850)]
    assert data.state_layout.channels == (
        *channels,
        ("2m_temperature", None),
        ("total_precipitation_6hr", None),
    )
    assert len(data) == ds.sizes["time"] - 3
    sample = data[5]
    assert sample.inputs.shape == (2, H * W, 6) and sample.targets.shape == (2, H * W, 6)
    assert sample.forcings.shape == (4, H * W, 5) and sample.static.shape == (H * W, 2 + 3)
    # target lead 2 of window 5 is time index 8; node = i_lat·W + i_lon
    i_lat, i_lon = 3, 7
    node = i_lat * W + i_lon
    assert sample.targets[1, node, 1] == ds["geopotential"].isel(
        time=8, latitude=i_lat, longitude=i_lon
    ).sel(level=850)
    assert sample.inputs[0, node, 4] == ds["2m_temperature"].isel(time=5, latitude=i_lat, longitude=i_lon)
    assert sample.forcings[3, node, 0] == ds["toa_incident_solar_radiation"].isel(
        time=8, latitude=i_lat, longitude=i_lon
    )
    assert sample.forcings[2, node, 1] == ds["year_progress_sin"].isel(time=7)
    assert sample.static[node, 0] == ds["land_sea_mask"].isel(latitude=i_lat, longitude=i_lon)
    assert sample.static[node, 2] == pytest.approx(np.sin(np.deg2rad(ds["latitude"].values[i_lat])))
    # every forcing channel, including the recomputed progress features, equals the stored values
    stored = data.forcing_layout.stack(ds.isel(time=data.window_times(5)))
    np.testing.assert_array_equal(sample.forcings.numpy(), stored)
    assert sample.time_index == 5
    np.testing.assert_array_equal(sample.time.numpy(), ds["time"].values[5:9].astype(np.int64))


def test_step_larger_than_the_dataset_step(built):
    data = WindowedDataset(built, n_inputs=2, n_leads=1, step_hours=12)
    assert data.stride == 2 and len(data) == 11 - 4
    np.testing.assert_array_equal(data.window_times(0), [0, 2, 4])
    with pytest.raises(ValueError, match="not a multiple"):
        WindowedDataset(built, step_hours=9)


def test_splits_never_cross_boundaries(built):
    ds = xr.open_zarr(built)
    train = WindowedDataset(built, n_inputs=2, n_leads=1, split="train")
    val = WindowedDataset(built, n_inputs=2, n_leads=1, split="val")
    train_end, val_start = np.datetime64("2020-01-02T18", "ns"), np.datetime64("2020-01-03T00", "ns")
    for data, inside in ((train, lambda t: t <= train_end), (val, lambda t: t >= val_start)):
        for i in range(len(data)):
            assert all(inside(t) for t in ds["time"].values[data.window_times(i)])
    assert len(train) == 7 - 2 and len(val) == 4 - 2
    with pytest.raises(ValueError, match=r"split 'test' is not defined.*\['train', 'val'\]"):
        WindowedDataset(built, split="test")
    with pytest.raises(ValueError, match="no window"):
        WindowedDataset(built, n_inputs=2, n_leads=3, split="val")


def test_channel_layout_round_trip(built):
    ds = xr.open_zarr(built).load()
    variables = ["geopotential", "2m_temperature", "temperature"]
    layout = ChannelLayout.from_dataset(ds, variables)
    stacked = layout.stack(ds)
    assert stacked.shape == (11, ds.sizes["latitude"] * ds.sizes["longitude"], 5)
    back = layout.unstack(
        torch.from_numpy(stacked), ds["latitude"].values, ds["longitude"].values, {"time": ds["time"].values}
    )
    for name in variables:
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].dims == ds[name].dims
    assert ChannelLayout.from_json(layout.to_json()) == layout
    with pytest.raises(ValueError, match="name each in coords"):
        layout.unstack(stacked, ds["latitude"].values, ds["longitude"].values)


def test_stacking_a_level_channel_without_its_levels_says_so():
    layout = ChannelLayout((("temperature", 500),))
    values = np.zeros((1, 1, 2, 3), dtype=np.float32)  # (time, level, latitude, longitude)
    fields = {"temperature": (values, ("time", "level", "latitude", "longitude"), None)}
    with pytest.raises(ValueError, match="give its levels"):
        layout.stack_arrays(fields, (1, 2, 3))
    fields = {"temperature": (values, ("time", "level", "latitude", "longitude"), [500])}
    np.testing.assert_array_equal(layout.stack_arrays(fields, (1, 2, 3)), np.zeros((1, 6, 1)))


def test_dataloader_batches_with_workers(built):
    data = WindowedDataset(built, n_inputs=2, n_leads=1, split="train")
    loader = make_dataloader(data, batch_size=3, shuffle=True, num_workers=2, seed=0)
    batches = list(loader)
    assert sum(b.inputs.shape[0] for b in batches) == len(data)
    assert batches[0].inputs.shape[1:] == data[0].inputs.shape
    seen = sorted(int(i) for b in batches for i in b.time_index)
    assert seen == sorted(int(s) for s in data.starts)
    single = {int(b.time_index[0]): b.targets[0] for b in make_dataloader(data, batch_size=1, seed=1)}
    for b in batches:
        for i, t in zip(b.time_index, b.targets, strict=True):
            torch.testing.assert_close(single[int(i)], t, rtol=0, atol=0)


def test_in_memory_dataset_gives_the_same_samples_as_the_store(built):
    from_store = WindowedDataset(built, n_inputs=2, n_leads=1, split="train")
    assert set(from_store._arrays) == {
        *from_store.state_layout.variables,
        *from_store.forcing_layout.variables,
    }
    in_memory = WindowedDataset(xr.open_zarr(built).load(), n_inputs=2, n_leads=1, split="train")
    assert in_memory._arrays == {}
    for i in (0, len(from_store) - 1):
        for key, value in from_store[i]._asdict().items():
            torch.testing.assert_close(getattr(in_memory[i], key), value, rtol=0, atol=0)


def test_worker_init_uses_dask_synchronous_scheduler_and_one_thread():
    import dask

    from vecfield.data.streaming import _worker_init

    threads = torch.get_num_threads()
    with dask.config.set(scheduler="threads"):
        _worker_init(0)
        assert dask.config.get("scheduler") == "synchronous" and torch.get_num_threads() == 1
    torch.set_num_threads(threads)
