"""Builders of tiny datasets in the truth (canonical) and forecast (WeatherBench2) layouts."""

import numpy as np
import pandas as pd
import xarray as xr

# Latitudes −60, 0, 60 have cell bounds −90, −30, 30, 90, so the raw weights are
# sin(−30°) − sin(−90°) = 0.5, sin(30°) − sin(−30°) = 1, 0.5, and normalized to mean 1:
THREE_LATITUDES = np.array([-60.0, 0.0, 60.0])
THREE_LATITUDE_WEIGHTS = np.array([0.75, 1.5, 0.75])
TWO_LONGITUDES = np.array([0.0, 180.0])


def hours(*values: float) -> pd.TimedeltaIndex:
    return pd.to_timedelta(list(values), unit="h")


def truth_dataset(
    data: np.ndarray, times: pd.DatetimeIndex, latitude: np.ndarray, longitude: np.ndarray, name: str = "x"
) -> xr.Dataset:
    """data: (time, latitude, longitude)."""
    return xr.Dataset(
        {name: (("time", "latitude", "longitude"), data)},
        coords={"time": times, "latitude": latitude, "longitude": longitude},
    )


def forecast_dataset(
    data: np.ndarray,
    inits: pd.DatetimeIndex,
    leads: pd.TimedeltaIndex,
    latitude: np.ndarray,
    longitude: np.ndarray,
    name: str = "x",
) -> xr.Dataset:
    """data: (time, prediction_timedelta, latitude, longitude), or with a 'realization' axis third."""
    dims = ["time", "prediction_timedelta", "latitude", "longitude"]
    if data.ndim == 5:
        dims.insert(2, "realization")
    return xr.Dataset(
        {name: (tuple(dims), data)},
        coords={"time": inits, "prediction_timedelta": leads, "latitude": latitude, "longitude": longitude},
    )


def rows(values: list[float], n_lon: int = 2) -> np.ndarray:
    """A (latitude, longitude) field whose row i is the constant values[i]."""
    return np.repeat(np.asarray(values, dtype=np.float64)[:, None], n_lon, axis=1)
