"""Building a training dataset: content, chunking, statistics, provenance, resume and bad input."""

import json
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from zarr.errors import ZarrUserWarning

from vecfield.config import to_dict
from vecfield.data import build as build_module
from vecfield.data.build import build_dataset
from vecfield.data.forcings import compute_forcings
from vecfield.data.statistics import load_statistics


class _InterruptedError(RuntimeError):
    """Stands in for a crash or Ctrl-C in the middle of a build."""


def test_build_writes_complete_chunked_dataset(built, source, synthetic_era5):
    output = built
    raw = synthetic_era5()
    ds = xr.open_zarr(output, consolidated=True)
    times = np.arange(
        np.datetime64("2020-01-01T06", "ns"), np.datetime64("2020-01-03T19", "ns"), np.timedelta64(6, "h")
    )
    np.testing.assert_array_equal(ds["time"].values, times)
    assert ds["level"].values.tolist() == [500, 850]
    # a small grid: one chunk per time block (4 steps) rather than one per step
    assert ds["geopotential"].encoding["chunks"] == (4, 2, ds.sizes["latitude"], ds.sizes["longitude"])
    assert ds["2m_temperature"].encoding["chunks"] == (4, ds.sizes["latitude"], ds.sizes["longitude"])
    assert ds["year_progress_sin"].encoding["chunks"] == (4,)
    np.testing.assert_array_equal(
        ds["temperature"].values, raw["temperature"].sel(time=times, level=[500, 850])
    )
    # eq. (1) of derived: the 6 hourly values ending at t
    hourly = raw["total_precipitation"].values.astype(np.float64)
    for i, t in enumerate(times):
        k = int((t - raw["time"].values[0]) / np.timedelta64(1, "h"))
        np.testing.assert_allclose(
            ds["total_precipitation_6hr"].values[i], hourly[k - 5 : k + 1].sum(0), rtol=1e-6
        )
    forcings = compute_forcings(times, ds["latitude"].values, ds["longitude"].values)
    for name in forcings.data_vars:
        np.testing.assert_array_equal(ds[name].values, forcings[name].values)
    np.testing.assert_array_equal(ds["land_sea_mask"].values, raw["land_sea_mask"].values)
    # statistics over the training split only, from the written arrays
    stats = load_statistics(output)
    train = ds.sel(time=slice("2020-01-01T06", "2020-01-02T18"))
    x = train["temperature"].sel(level=850).values.astype(np.float64)
    assert stats["mean"]["temperature"].sel(level=850) == pytest.approx(x.mean(), rel=1e-10)
    assert stats["std"]["temperature"].sel(level=850) == pytest.approx(x.std(), rel=1e-10)
    assert stats["diff_std"]["temperature"].sel(level=850) == pytest.approx(
        np.diff(x, axis=0).std(), rel=1e-10
    )
    assert "toa_incident_solar_radiation" in stats["diff_std"] and "land_sea_mask" not in stats["diff_std"]
    # provenance
    assert ds.attrs["sources"] == [str(source)]
    assert ds.attrs["time_range"] == ["2020-01-01T06:00", "2020-01-03T18:00"]
    assert json.loads(ds.attrs["splits"])["train"] == ["2020-01-01T06", "2020-01-02T18"]
    assert ds.attrs["code_version"].startswith("vecfield")
    assert "total_precipitation_6hr" in ds.attrs["config"]
    assert zarr.open_consolidated(str(output), zarr_format=2) is not None


@pytest.mark.parametrize(
    ("grid", "levels", "block", "steps"),
    [
        ((721, 1440), 1, 32, 1),  # 0.25°: one step is 4 MiB, so one step per chunk
        ((181, 360), 2, 32, 2),  # 1°: 0.5 MiB per step
        ((32, 64), 2, 512, 64),  # the quickstart's grid: 16 KiB per step
        ((32, 64), 2, 100, 50),  # the largest divisor of the block within the budget
        ((32, 64), 2, 7, 7),  # a whole small block in one chunk
    ],
)
def test_time_chunk_fits_the_budget_and_divides_the_block(grid, levels, block, steps):
    shape = (3, levels, *grid)
    zeros = np.broadcast_to(np.float32(0), shape)
    state = xr.Dataset({"z": (("time", "level", "latitude", "longitude"), zeros)})
    chunk = build_module.time_chunk(state, block)
    assert chunk == steps
    assert block % chunk == 0
    assert chunk == 1 or chunk * 4 * levels * grid[0] * grid[1] <= build_module.STORE_CHUNK_BYTES


def test_built_dataset_carries_cf_metadata_and_leaves_no_lock(built):
    """Every variable and coordinate has units and a long name, a CF standard name where CF has one,
    and time is CF-encoded (hours since an epoch, proleptic Gregorian); the build's lock file is gone."""
    group = zarr.open_group(str(built), mode="r", zarr_format=2)
    ds = xr.open_zarr(built, consolidated=True)
    for name in [*ds.data_vars, *ds.coords]:
        attrs = ds[name].attrs | group[name].attrs.asdict()  # time's units live in the stored attrs
        assert {"units", "long_name"} <= attrs.keys(), name
    standard = {name: ds[name].attrs.get("standard_name") for name in [*ds.data_vars, *ds.coords]}
    assert standard["geopotential"] == "geopotential" and standard["temperature"] == "air_temperature"
    assert standard["land_sea_mask"] == "land_area_fraction" and standard["level"] == "air_pressure"
    assert standard["latitude"] == "latitude" and standard["time"] == "time"
    assert ds["2m_temperature"].attrs["units"] == "K" and ds["latitude"].attrs["units"] == "degrees_north"
    time = group["time"].attrs.asdict()
    assert time["units"].startswith("hours since 1970-01-01") and time["calendar"] == "proleptic_gregorian"
    assert not built.with_name(built.name + ".lock").exists()


def test_build_resumes_without_redoing_finished_blocks(dataset_config, tmp_path, source, built, monkeypatch):
    config = dataset_config(tmp_path, source)
    original = build_module._write_block
    calls = []
    interrupt = [True]

    def failing(temp, block, index):
        calls.append(index.start)
        if len(calls) == 2 and interrupt.pop():
            raise _InterruptedError("simulated interruption")
        original(temp, block, index)

    monkeypatch.setattr(build_module, "_write_block", failing)
    with pytest.raises(_InterruptedError):
        build_dataset(config, progress=False)
    assert not (tmp_path / "out" / "train.zarr").exists()
    assert (tmp_path / "out" / "train.zarr.partial").exists()
    marker = tmp_path / "out" / "train.zarr.partial.progress.json"
    assert json.loads(marker.read_text())["blocks_done"] == [0]  # beside the store, not inside it
    calls.clear()
    interrupt.append(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZarrUserWarning)  # zarr warns about any foreign file in a store
        build_dataset(config, progress=False)
    assert calls == [4, 8]  # block 0 was kept; blocks 1 and 2 written now
    assert not marker.exists()
    resumed = xr.open_zarr(tmp_path / "out" / "train.zarr").load()
    xr.testing.assert_identical(resumed.drop_attrs(), xr.open_zarr(built).load().drop_attrs())


def test_regridded_and_cropped_build(dataset_config, tmp_path, source):
    short = {
        "time": {"start": "2020-01-01T06", "end": "2020-01-02T00"},
        "splits": {"train": ["2020-01-01T06", "2020-01-01T18"]},
        "grid": {"resolution": 30.0, "include_poles": True, "area": [75, -30, 30, 45]},
    }
    ds = xr.open_zarr(build_dataset(dataset_config(tmp_path, source, **short), progress=False))
    assert ds["latitude"].values.tolist() == [30.0, 60.0]
    assert ds["longitude"].values.tolist() == [330.0, 0.0, 30.0]  # west → east across 0°
    assert ds["geopotential"].shape == (4, 2, 2, 3)


def test_nans_stop_the_build_and_nothing_is_renamed(dataset_config, tmp_path, synthetic_era5):
    raw = synthetic_era5()
    raw["temperature"][30, 1, 2, 3] = np.nan
    path = tmp_path / "nan.zarr"
    raw.to_zarr(path, zarr_format=2)
    config = dataset_config(tmp_path, path)
    with pytest.raises(
        ValueError, match=r"temperature: 1 in time block 1, e.g. time=2020-01-02T06, level=850"
    ):
        build_dataset(config, progress=False)
    assert not (tmp_path / "out" / "train.zarr").exists()
    filled = dataset_config(
        tmp_path,
        path,
        output=str(tmp_path / "filled.zarr"),
        nan_fill=0.0,
        variables=["temperature"],
        static=[],
    )
    assert float(xr.open_zarr(build_dataset(filled, progress=False))["temperature"][4, 1, 2, 3]) == 0.0


def test_following_the_nan_fill_advice_builds_the_same_output(dataset_config, tmp_path, synthetic_era5):
    """After a build stopped at NaNs, dataset.nan_fill=0 on the same output used to fail with
    "unfinished build of a different config; delete it": a changed config now starts afresh."""
    raw = synthetic_era5()
    raw["temperature"][30, 1, 2, 3] = np.nan
    path = tmp_path / "nan.zarr"
    raw.to_zarr(path, zarr_format=2)
    config = dataset_config(tmp_path, path, variables=["temperature"], static=[])
    with pytest.raises(ValueError, match=r"dataset.nan_fill=<number>; the build then starts afresh"):
        build_dataset(config, progress=False)
    assert (tmp_path / "out" / "train.zarr.partial").exists()
    filled = dataset_config(tmp_path, path, variables=["temperature"], static=[], nan_fill=0.0)
    output = build_dataset(filled, progress=False)
    assert output == tmp_path / "out" / "train.zarr"
    assert float(xr.open_zarr(output)["temperature"][4, 1, 2, 3]) == 0.0
    assert not (tmp_path / "out" / "train.zarr.partial").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"variables": ["geopotental"]},
            r"unknown variable \(not in the sources\) 'geopotental'; did you mean",
        ),
        ({"levels": [500, 700]}, r"\[700\] hPa are not in the source; available levels: \[500, 850, 1000\]"),
        ({"static": ["soil_type"]}, r"unknown static field.*'soil_type'"),
        (
            {
                "time": {"start": "2020-01-01T00", "end": "2020-01-02T00"},
                "splits": {"train": ["2020-01-01", "2020-01-02"]},
            },
            r"needs hourly total_precipitation from",
        ),
        (
            {"time": {"start": "2020-01-01T06", "end": "2020-01-05T00"}},
            r"requested time\(s\) are not in the sources",
        ),
        ({"variables": ["toa_incident_solar_radiation"]}, r"is a forcing"),
        (
            {
                "splits": {
                    "train": ["2020-01-01T06", "2020-01-02T18"],
                    "val": ["2020-01-02T12", "2020-01-03T00"],
                }
            },
            r"splits train and val overlap",
        ),
    ],
)
def test_bad_configs_are_clear_errors(dataset_config, tmp_path, source, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_dataset(dataset_config(tmp_path, source, **overrides), progress=False)
    assert not (tmp_path / "out").exists()  # nothing written, not even the output folder


def test_duplicated_and_irregular_times_are_errors(dataset_config, tmp_path, synthetic_era5):
    raw = synthetic_era5()
    path = tmp_path / "gap.zarr"
    raw.drop_isel(time=[20]).to_zarr(path, zarr_format=2)
    with pytest.raises(ValueError, match=r"non-uniform time steps"):
        build_dataset(dataset_config(tmp_path, path), progress=False)


def test_wrong_tisr_convention_is_an_error(dataset_config, tmp_path, synthetic_era5):
    raw = synthetic_era5()
    raw["toa_incident_solar_radiation"] = raw["toa_incident_solar_radiation"] / 3600.0  # W m⁻² by mistake
    raw["toa_incident_solar_radiation"].attrs["units"] = "J m**-2"
    path = tmp_path / "tisr.zarr"
    raw.to_zarr(path, zarr_format=2)
    with pytest.raises(
        ValueError, match=r"toa_incident_solar_radiation differs from the computed ERA5 convention"
    ):
        build_dataset(dataset_config(tmp_path, path), progress=False)


def test_unwritable_output_folder_and_existing_output(dataset_config, tmp_path, source):
    with pytest.raises(ValueError, match=r"not writable|cannot create the output folder"):
        build_dataset(dataset_config(tmp_path, source, output="/proc/vecfield-test/out.zarr"), progress=False)
    (tmp_path / "exists.zarr").mkdir()
    with pytest.raises(ValueError, match="already exists; delete it"):
        build_dataset(dataset_config(tmp_path, source, output=str(tmp_path / "exists.zarr")), progress=False)


def test_concurrent_builds_of_one_output_build_once_and_both_get_it(dataset_config, tmp_path, source,
                                                                     monkeypatch):
    """Two jobs sharing a dataset (e.g. two trainings started together) must not both write the
    ``.partial`` store: the second waits on ``<output>.lock``, then reuses the finished output."""
    config = dataset_config(tmp_path, source, output=str(tmp_path / "shared.zarr"))
    real, started, builds = build_module._build, threading.Event(), []

    def first_build_is_slow(*args, **kwargs):
        builds.append(threading.current_thread().name)
        started.set()
        threading.Event().wait(0.5)  # the other job arrives while this one is writing
        return real(*args, **kwargs)

    monkeypatch.setattr(build_module, "_build", first_build_is_slow)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(build_dataset, config, False, True)
        assert started.wait(30)
        second = pool.submit(build_dataset, config, False, True)
        paths = [first.result(), second.result()]
    assert len(builds) == 1 and paths[0] == paths[1] == tmp_path / "shared.zarr"
    assert not (tmp_path / "shared.zarr.partial").exists()
    assert not (tmp_path / "shared.zarr.lock").exists()  # the lock file goes once the output is in place
    xr.open_zarr(paths[0]).load()
    assert build_dataset(config, progress=False, reuse=True) == paths[0] and len(builds) == 1
    with pytest.raises(ValueError, match="already exists; delete it"):
        build_dataset(config, progress=False)


def test_pipeline_command_line_with_overrides(dataset_config, tmp_path, source):
    from pipelines.build_dataset import main

    preset = tmp_path / "preset.yaml"
    preset.write_text(yaml.safe_dump({"dataset": to_dict(dataset_config(tmp_path, source))}))
    overrides = [
        f"dataset.output={tmp_path / 'cli.zarr'}",
        "dataset.variables=[2m_temperature]",
        "dataset.static=[]",
    ]
    output = main(["--config", str(preset), *overrides, "dataset.forcings=false"])
    assert list(xr.open_zarr(output).data_vars) == ["2m_temperature"]


def test_build_from_real_era5_grib(tmp_path, shared_data):
    from vecfield.config import from_dict
    from vecfield.data.config import DatasetConfig
    from vecfield.data.regrid import regrid
    from vecfield.data.sources import open_dataset

    grib = shared_data / "era5" / "era5-levels-members.grib"
    config = from_dict(
        DatasetConfig,
        {
            "output": str(tmp_path / "grib.zarr"),
            "sources": [{"path": str(grib), "member": 4}],
            "variables": ["temperature", "geopotential"],
            "levels": [850],
            "time": {"start": "2017-01-01T00", "end": "2017-01-02T12", "step_hours": 12},
            "splits": {
                "train": ["2017-01-01T00", "2017-01-02T00"],
                "test": ["2017-01-02T12", "2017-01-02T12"],
            },
            "grid": {"resolution": 6.0, "include_poles": True},
        },
    )
    built = xr.open_zarr(build_dataset(config, progress=False)).load()
    expected = regrid(open_dataset(grib, member=4).sel(level=[850]).load(), 6.0, True)
    np.testing.assert_allclose(built["temperature"].values, expected["temperature"].values, rtol=1e-6)
    train = built["geopotential"].values[:3].astype(np.float64)
    stats = load_statistics(tmp_path / "grib.zarr")
    assert float(stats["std"]["geopotential"].sel(level=850)) == pytest.approx(train.std(), rel=1e-10)
    assert built.attrs["sources"] == [str(grib)]
