"""Fixtures of tests/data: small synthetic ERA5-like datasets (canonical names, hourly, poles)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from vecfield.config import from_dict
from vecfield.data.build import build_dataset
from vecfield.data.config import DatasetConfig
from vecfield.data.forcings import toa_incident_solar_radiation
from vecfield.data.regrid import regular_grid


def _synthetic_era5(hours: int = 72, resolution: float = 15.0, seed: int = 0) -> xr.Dataset:
    """Hourly (time, level, latitude, longitude) fields from 2020-01-01T00 with smooth, seeded values.

    Variables: geopotential, temperature (levels 500, 850, 1000), 2m_temperature, hourly
    total_precipitation (≥ 0), toa_incident_solar_radiation (the true ERA5 convention) and the
    static land_sea_mask and geopotential_at_surface.
    """
    rng = np.random.default_rng(seed)
    time = np.datetime64("2020-01-01T00", "ns") + np.arange(hours) * np.timedelta64(1, "h")
    lat, lon = regular_grid(resolution, include_poles=True)
    level = np.array([500, 850, 1000])
    shape3 = (hours, level.size, lat.size, lon.size)
    shape2 = (hours, lat.size, lon.size)
    t = np.arange(hours)[:, None, None, None]
    base = np.cos(np.deg2rad(lat))[None, None, :, None] * np.sin(np.deg2rad(lon))[None, None, None, :]
    geopotential = 9.81 * (5500 + 100 * base + 10 * np.sin(t / 7.0)) * (1000 / level)[None, :, None, None]
    temperature = 250 + 20 * base + rng.normal(scale=0.5, size=shape3)
    return xr.Dataset(
        {
            "geopotential": (
                ("time", "level", "latitude", "longitude"),
                geopotential.astype(np.float32),
                {"units": "m**2 s**-2"},
            ),
            "temperature": (
                ("time", "level", "latitude", "longitude"),
                temperature.astype(np.float32),
                {"units": "K"},
            ),
            "2m_temperature": (
                ("time", "latitude", "longitude"),
                (280 + rng.normal(scale=2.0, size=shape2)).astype(np.float32),
                {"units": "K"},
            ),
            "total_precipitation": (
                ("time", "latitude", "longitude"),
                rng.exponential(1e-4, size=shape2).astype(np.float32),
                {"units": "m"},
            ),
            "toa_incident_solar_radiation": (
                ("time", "latitude", "longitude"),
                toa_incident_solar_radiation(time, lat, lon).astype(np.float32),
                {"units": "J m**-2"},
            ),
            "land_sea_mask": (
                ("latitude", "longitude"),
                (rng.random((lat.size, lon.size)) > 0.6).astype(np.float32),
                {"units": "1"},
            ),
            "geopotential_at_surface": (
                ("latitude", "longitude"),
                rng.normal(3000, 1000, (lat.size, lon.size)).astype(np.float32),
                {"units": "m**2 s**-2"},
            ),
        },
        coords={"time": time, "level": level, "latitude": lat, "longitude": lon},
    )


@pytest.fixture(scope="session")
def synthetic_era5() -> Callable[..., xr.Dataset]:
    """The factory ``synthetic_era5(hours=72, resolution=15.0, seed=0) -> xr.Dataset``."""
    return _synthetic_era5


def _dataset_config(folder, source, **overrides) -> DatasetConfig:
    data = {
        "output": str(folder / "out" / "train.zarr"),
        "sources": [{"path": str(source)}],
        "variables": ["geopotential", "temperature", "2m_temperature", "total_precipitation_6hr"],
        "levels": [500, 850],
        "static": ["land_sea_mask", "geopotential_at_surface"],
        "time": {"start": "2020-01-01T06", "end": "2020-01-03T18", "step_hours": 6},
        "splits": {"train": ["2020-01-01T06", "2020-01-02T18"], "val": ["2020-01-03T00", "2020-01-03T18"]},
        "time_block": 4,
    }
    data.update(overrides)
    return from_dict(DatasetConfig, data)


@pytest.fixture(scope="session")
def dataset_config() -> Callable[..., DatasetConfig]:
    """The factory ``dataset_config(folder, source, **overrides)``: 11 six-hourly states, 3 blocks."""
    return _dataset_config


@pytest.fixture(scope="session")
def source(tmp_path_factory) -> Path:
    """The synthetic ERA5 store (zarr v3, hourly)."""
    path = tmp_path_factory.mktemp("source") / "source.zarr"
    _synthetic_era5().to_zarr(path, zarr_format=3, consolidated=False)
    return path


@pytest.fixture(scope="session")
def built(tmp_path_factory, source) -> Path:
    """The dataset of the default config, built once per session."""
    folder = tmp_path_factory.mktemp("built")
    output = build_dataset(_dataset_config(folder, source), progress=False)
    assert not (folder / "out" / "train.zarr.partial").exists()
    return output
