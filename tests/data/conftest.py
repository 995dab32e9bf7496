"""Fixtures of tests/data: small synthetic ERA5-like datasets (canonical names, hourly, poles)."""

from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

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
