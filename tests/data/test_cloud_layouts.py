"""The cloud code path on local stores in the exact ARCO-ERA5 and WeatherBench2 layouts.

A stand-in for gcsfs serves a local folder under ``gs://`` (and insists on anonymous access), so
the presets' own ``gs://`` paths, URL handling, consolidated metadata, chunking and naming are
exercised end to end without a network.
"""

import importlib

import numpy as np
import pytest
import xarray as xr
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

from vecfield.config import load_config
from vecfield.data.build import build_dataset
from vecfield.data.config import DatasetConfig
from vecfield.data.forcings import toa_incident_solar_radiation
from vecfield.data.regrid import regrid, regular_grid
from vecfield.data.sources import ARCO_ERA5_STORE, WEATHERBENCH2_STORES, infer_kind, open_dataset

ERA5_37 = [
    1,
    2,
    3,
    5,
    7,
    10,
    20,
    30,
    50,
    70,
    100,
    125,
    150,
    175,
    200,
    225,
    250,
    300,
    350,
    400,
    450,
    500,
    550,
    600,
    650,
    700,
    750,
    775,
    800,
    825,
    850,
    875,
    900,
    925,
    950,
    975,
    1000,
]
WB13 = [50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000]
PRESSURE = [
    "geopotential",
    "temperature",
    "u_component_of_wind",
    "v_component_of_wind",
    "specific_humidity",
    "vertical_velocity",
]
SURFACE = ["2m_temperature", "10m_u_component_of_wind", "10m_v_component_of_wind", "mean_sea_level_pressure"]


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
    """Serve tmp_path/"gcs" as gs://; records the storage options each connection used."""
    root = tmp_path / "gcs"
    root.mkdir()
    tokens = []

    class LocalGCS(DirFileSystem):
        protocol = ("gs", "gcs")

        def __init__(self, token=None, asynchronous=False, **kwargs):
            tokens.append(token)
            super().__init__(
                path=str(root),
                fs=AsyncFileSystemWrapper(LocalFileSystem(), asynchronous=True),
                asynchronous=asynchronous,
            )

    monkeypatch.setitem(importlib.import_module("fsspec.registry")._registry, "gs", LocalGCS)
    return root, tokens


def _field(rng, shape, offset, scale):
    return (offset + scale * rng.standard_normal(shape)).astype(np.float32)


def _write_arco(path):
    """ARCO-ERA5: hourly, 37 levels, latitude 90 → −90, chunks {time: 1, level: 37, lat, lon},
    zarr v2 with consolidated metadata, NaN beyond attrs['valid_time_stop'], statics over time."""
    rng = np.random.default_rng(0)
    lat, lon = np.linspace(90, -90, 19), np.arange(0, 360, 10.0)
    time = np.datetime64("2020-01-01T00", "ns") + np.arange(30) * np.timedelta64(1, "h")
    dims3, dims2 = ("time", "level", "latitude", "longitude"), ("time", "latitude", "longitude")
    shape3, shape2 = (time.size, len(ERA5_37), lat.size, lon.size), (time.size, lat.size, lon.size)
    data = {name: (dims3, _field(rng, shape3, 100.0, 1.0)) for name in PRESSURE}
    data |= {name: (dims2, _field(rng, shape2, 10.0, 1.0)) for name in SURFACE}
    data["total_precipitation"] = (dims2, rng.exponential(1e-4, shape2).astype(np.float32))
    data["toa_incident_solar_radiation"] = (
        dims2,
        toa_incident_solar_radiation(time, lat, lon).astype(np.float32),
    )
    data["land_sea_mask"] = (
        dims2,
        np.broadcast_to((rng.random(shape2[1:]) > 0.7), shape2).astype(np.float32),
    )
    data["geopotential_at_surface"] = (
        dims2,
        np.broadcast_to(_field(rng, shape2[1:], 1e3, 1e3), shape2).copy(),
    )
    ds = xr.Dataset(
        data,
        coords={"time": time, "level": np.array(ERA5_37, dtype=np.int64), "latitude": lat, "longitude": lon},
    )
    for name in ds.data_vars:
        ds[name][24:] = np.nan  # ARCO pre-allocates future times
        ds[name].encoding["chunks"] = (1, 37, 19, 36) if "level" in ds[name].dims else (1, 19, 36)
    ds.attrs = {"valid_time_start": "2020-01-01", "valid_time_stop": "2020-01-01"}
    ds.to_zarr(path, zarr_format=2, consolidated=True)
    return ds


def _write_wb2(path):
    """WeatherBench2 64×32: 6-hourly, dims (time, [level,] longitude, latitude), latitude ±87.1875
    increasing, time chunks of 100, statics (longitude, latitude), zarr v2 consolidated."""
    rng = np.random.default_rng(1)
    lat, lon = regular_grid(5.625, include_poles=False)
    time = np.datetime64("2020-01-01T00", "ns") + np.arange(8) * np.timedelta64(6, "h")
    dims3, dims2 = ("time", "level", "longitude", "latitude"), ("time", "longitude", "latitude")
    shape3, shape2 = (time.size, 13, 64, 32), (time.size, 64, 32)
    data = {name: (dims3, _field(rng, shape3, 100.0, 1.0)) for name in PRESSURE}
    data |= {name: (dims2, _field(rng, shape2, 10.0, 1.0)) for name in SURFACE}
    data["total_precipitation_6hr"] = (dims2, rng.exponential(1e-3, shape2).astype(np.float32))
    tisr = toa_incident_solar_radiation(time, lat, lon).transpose(0, 2, 1)
    data["toa_incident_solar_radiation"] = (dims2, tisr.astype(np.float32))
    data["land_sea_mask"] = (("longitude", "latitude"), (rng.random((64, 32)) > 0.7).astype(np.float32))
    data["geopotential_at_surface"] = (("longitude", "latitude"), _field(rng, (64, 32), 1e3, 1e3))
    ds = xr.Dataset(
        data,
        coords={"time": time, "level": np.array(WB13, dtype=np.int64), "latitude": lat, "longitude": lon},
    )
    for name in ds.data_vars:
        if "time" in ds[name].dims:
            ds[name].encoding["chunks"] = (100, *ds[name].shape[1:])
    ds.to_zarr(path, zarr_format=2, consolidated=True)
    return ds


def test_store_paths_and_kinds():
    assert infer_kind(ARCO_ERA5_STORE) == "arco_era5"
    assert ARCO_ERA5_STORE == "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3"
    for store in WEATHERBENCH2_STORES.values():
        assert infer_kind(store) == "weatherbench2"


def test_arco_layout_through_gs_and_file_urls(fake_gcs, tmp_path):
    root, tokens = fake_gcs
    local = root / ARCO_ERA5_STORE.removeprefix("gs://")
    local.parent.mkdir(parents=True)
    raw = _write_arco(local)
    for url in (ARCO_ERA5_STORE, f"file://{local}"):
        ds = open_dataset(url, kind="arco_era5")
        assert ds.sizes["time"] == 24  # trimmed to valid_time_start … valid_time_stop
        assert np.all(np.diff(ds["latitude"].values) > 0) and ds["level"].values.tolist() == ERA5_37
        np.testing.assert_array_equal(
            ds["temperature"].isel(time=5).sel(level=500).values,
            raw["temperature"].isel(time=5).sel(level=500).values[::-1],
        )
    assert tokens and set(tokens) == {"anon"}
    # the preset, pointed at the same gs:// path, builds on a coarser grid for speed
    overrides = [
        f"dataset.output={tmp_path / 'arco.zarr'}",
        "dataset.time.start=2020-01-01T06",
        "dataset.time.end=2020-01-01T18",
        "dataset.splits.train=[2020-01-01T06, 2020-01-01T18]",
        "dataset.splits.val=null",
        "dataset.splits.test=null",
        "dataset.grid.resolution=20.0",
    ]
    config = load_config("configs/era5_arco_1deg.yaml", {"dataset": DatasetConfig}, overrides)["dataset"]
    assert config.sources[0].path == ARCO_ERA5_STORE
    built = xr.open_zarr(build_dataset(config, progress=False))
    assert dict(built["geopotential"].sizes) == {"time": 3, "level": 13, "latitude": 10, "longitude": 18}
    assert list(built["land_sea_mask"].dims) == ["latitude", "longitude"]  # ARCO's hourly static → static
    expected = regrid(
        open_dataset(ARCO_ERA5_STORE)[["temperature"]].sel(time="2020-01-01T12", level=850),
        20.0,
        True,
        "conservative",
    )
    np.testing.assert_allclose(
        built["temperature"].sel(time="2020-01-01T12", level=850).values,
        expected["temperature"].values,
        rtol=1e-6,
    )
    hourly = raw["total_precipitation"].values[7:13].astype(np.float64).sum(0)[::-1]  # hours 07…12
    precip = regrid(
        xr.Dataset(
            {"p": (("latitude", "longitude"), hourly)},
            coords={"latitude": np.linspace(-90, 90, 19), "longitude": np.arange(0, 360, 10.0)},
        ),
        20.0,
        True,
        "conservative",
    )["p"].values
    np.testing.assert_allclose(
        built["total_precipitation_6hr"].sel(time="2020-01-01T12").values, precip, rtol=1e-5
    )


def test_wb2_layout_through_gs(fake_gcs, tmp_path):
    root, tokens = fake_gcs
    store = WEATHERBENCH2_STORES["64x32"]
    local = root / store.removeprefix("gs://")
    local.parent.mkdir(parents=True)
    raw = _write_wb2(local)
    overrides = [
        f"dataset.output={tmp_path / 'wb2.zarr'}",
        "dataset.time.start=2020-01-01T00",
        "dataset.time.end=2020-01-02T18",
        "dataset.splits.train=[2020-01-01T00, 2020-01-02T00]",
        "dataset.splits.val=[2020-01-02T06, 2020-01-02T18]",
        "dataset.splits.test=null",
    ]
    config = load_config("configs/era5_wb2_64x32.yaml", {"dataset": DatasetConfig}, overrides)["dataset"]
    built = xr.open_zarr(build_dataset(config, progress=False), consolidated=True)
    assert set(tokens) == {"anon"}
    assert built["geopotential"].dims == ("time", "level", "latitude", "longitude")
    assert built["land_sea_mask"].dims == ("latitude", "longitude")
    for it, level, ilon, ilat in [(0, 500, 3, 30), (7, 850, 63, 0), (4, 50, 20, 16)]:
        point = raw["geopotential"].isel(time=it, longitude=ilon, latitude=ilat).sel(level=level)
        got = (
            built["geopotential"]
            .isel(time=it)
            .sel(level=level, latitude=float(point["latitude"]), longitude=float(point["longitude"]))
        )
        assert float(got) == float(point)
    np.testing.assert_array_equal(built["land_sea_mask"].values, raw["land_sea_mask"].values.T)
    assert built.attrs["sources"] == [store]
