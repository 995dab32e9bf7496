"""Pairing forecasts with the truth at the right *valid* time, on the same grid.

Layouts (as in WeatherBench2):

- forecast: dims ``time`` (the **initialization** time), ``prediction_timedelta`` (lead,
  timedelta64), optional ``level`` (hPa), ``latitude``, ``longitude`` and an optional ensemble
  dim ``realization``;
- truth: the canonical layout, dims ``time`` (the **valid** time), optional ``level``,
  ``latitude``, ``longitude``.

Every metric in ``vecfield.evaluate`` goes through :func:`align_truth`, which looks the truth up
at valid time = init + lead for every (init, lead) pair and returns it in the forecast layout.
There is no code path that compares a forecast with the truth at its initialization time.
"""

from typing import Literal, TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from vecfield.data.catalogue import ENSEMBLE_DIM, LEAD_DIM

INIT_DIM = "time"
GRID_ATOL_DEGREES = 1e-3
MissingPolicy = Literal["raise", "drop"]
XarrayT = TypeVar("XarrayT", xr.Dataset, xr.DataArray)
_MISSING_POLICIES = ("raise", "drop")


def make_latitude_increasing(data: XarrayT) -> XarrayT:
    """Flip the latitude axis if it runs north to south (as in ERA5 files from the CDS); lazy."""
    latitude = data["latitude"].values
    if latitude.size > 1 and latitude[0] > latitude[-1]:
        return data.isel(latitude=slice(None, None, -1))
    return data


def valid_time(forecast: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """Valid time of every forecast field, init + lead, shape (time, prediction_timedelta)."""
    return (forecast[INIT_DIM] + forecast[LEAD_DIM]).rename("valid_time")


def check_forecast_layout(forecast: xr.Dataset) -> None:
    """Raise a ValueError/TypeError naming what is wrong if ``forecast`` is not in WB2 forecast layout."""
    if not isinstance(forecast, xr.Dataset):
        raise TypeError(
            f"forecast must be an xarray.Dataset, got {type(forecast).__name__}; "
            "wrap a DataArray with da.to_dataset(name='<variable>')"
        )
    renames = {"init_time": INIT_DIM, "lead_time": LEAD_DIM, "lat": "latitude", "lon": "longitude"}
    for old, new in renames.items():
        if old in forecast.dims and new not in forecast.dims:
            raise ValueError(
                f"forecast has dim {old!r}; WeatherBench2's layout calls it {new!r}: "
                f"use forecast.rename({{{old!r}: {new!r}}})"
            )
    for dim in (INIT_DIM, LEAD_DIM, "latitude", "longitude"):
        if dim not in forecast.dims:
            raise ValueError(
                f"forecast lacks dim {dim!r} (dims: {tuple(forecast.dims)}); the forecast layout is "
                "(time = initialization time, prediction_timedelta, [level], latitude, longitude, "
                "[realization]). A dataset indexed by valid time alone cannot be scored as a forecast."
            )
    if not np.issubdtype(forecast[INIT_DIM].dtype, np.datetime64):
        raise TypeError(
            f"forecast 'time' must hold datetime64 init times, got dtype {forecast[INIT_DIM].dtype}"
        )
    if not np.issubdtype(forecast[LEAD_DIM].dtype, np.timedelta64):
        raise TypeError(
            f"forecast 'prediction_timedelta' must be timedelta64, got dtype {forecast[LEAD_DIM].dtype}; "
            "convert e.g. with pd.to_timedelta(hours, unit='h')"
        )
    if "valid_time" in forecast.coords:
        expected = valid_time(forecast)
        stored = forecast["valid_time"].broadcast_like(expected)
        if not np.array_equal(stored.values, expected.values):
            raise ValueError(
                "forecast coordinate 'valid_time' differs from time + prediction_timedelta: "
                "'time' must be the initialization time, not the valid time"
            )
    if not forecast.data_vars:
        raise ValueError("forecast has no data variables to score")


def _check_truth_layout(truth: xr.Dataset) -> None:
    if not isinstance(truth, xr.Dataset):
        raise TypeError(f"truth must be an xarray.Dataset, got {type(truth).__name__}")
    if LEAD_DIM in truth.dims:
        raise ValueError(
            "truth has a 'prediction_timedelta' dim: pass observations/reanalysis in the canonical "
            "layout (time = valid time, [level], latitude, longitude), not a forecast"
        )
    for dim in (INIT_DIM, "latitude", "longitude"):
        if dim not in truth.dims:
            raise ValueError(
                f"truth lacks dim {dim!r} (dims: {tuple(truth.dims)}); expected (time, [level], lat, lon)"
            )
    if not truth.indexes[INIT_DIM].is_unique:
        raise ValueError("truth 'time' has duplicate values; drop them, e.g. truth.drop_duplicates('time')")


def check_aligned_grid(
    reference: xr.Dataset | xr.DataArray, other: xr.Dataset | xr.DataArray, other_name: str
) -> None:
    """Raise ValueError unless ``other``'s latitude/longitude equal ``reference``'s within 1e-3° (as WB2)."""
    for dim in ("latitude", "longitude"):
        ref, oth = reference[dim].values, other[dim].values
        if ref.shape != oth.shape or not np.allclose(ref, oth, rtol=0.0, atol=GRID_ATOL_DEGREES):
            if dim == "longitude" and ref.shape == oth.shape:
                wrapped = np.sort(oth % 360.0)
                if np.allclose(np.sort(ref % 360.0), wrapped, rtol=0.0, atol=GRID_ATOL_DEGREES):
                    raise ValueError(
                        f"{other_name} and truth use different longitude conventions "
                        f"({oth.min():g}..{oth.max():g} vs {ref.min():g}..{ref.max():g}); "
                        "bring both to [0, 360) with "
                        "ds.assign_coords(longitude=ds.longitude % 360).sortby('longitude')"
                    )
            raise ValueError(
                f"{other_name} {dim} grid ({oth.size} points, {oth.min():g}..{oth.max():g}) differs "
                f"from the truth's ({ref.size} points, {ref.min():g}..{ref.max():g}) "
                f"by more than {GRID_ATOL_DEGREES}°; "
                "regrid one of them first (WeatherBench2 recommends conservative regridding)"
            )


def _check_variables(forecast: xr.Dataset, truth: xr.Dataset) -> None:
    missing = [name for name in forecast.data_vars if name not in truth.data_vars]
    if missing:
        raise ValueError(
            f"truth lacks forecast variables {missing}; truth has {sorted(map(str, truth.data_vars))}. "
            "Select the shared variables, e.g. forecast[[...]]"
        )
    for name, variable in forecast.data_vars.items():
        forecast_dims = {d for d in variable.dims if d not in (INIT_DIM, LEAD_DIM, ENSEMBLE_DIM)}
        truth_dims = set(truth[name].dims) - {INIT_DIM}
        if forecast_dims != truth_dims:
            raise ValueError(
                f"variable {name!r}: forecast has field dims {sorted(map(str, forecast_dims))} but truth has "
                f"{sorted(map(str, truth_dims))}; they must match (e.g. select the same levels)"
            )


def _select_levels(forecast: xr.Dataset, truth: xr.Dataset) -> xr.Dataset:
    if "level" not in forecast.dims:
        return truth
    if "level" not in truth.dims:
        raise ValueError("forecast has a 'level' dim but truth has none; give the truth its pressure levels")
    missing = np.setdiff1d(forecast["level"].values, truth["level"].values)
    if missing.size:
        raise ValueError(
            f"truth lacks forecast levels {missing.tolist()}; "
            f"truth levels are {truth['level'].values.tolist()}"
        )
    return truth.sel(level=forecast["level"].values)


def align_truth(
    forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy = "raise"
) -> tuple[xr.Dataset, xr.Dataset]:
    """Return (forecast, truth at each forecast's valid time), both in the forecast layout.

    forecast: (time=init, prediction_timedelta, [level], latitude, longitude, [realization]).
    truth: (time=valid, [level], latitude, longitude).
    Output truth: (time=init, prediction_timedelta, [level], latitude, longitude) holding
    truth(init + lead), with a ``valid_time`` coordinate; variables are the forecast's. Both
    outputs have increasing latitude and the truth's exact grid coordinates (grids must agree
    within 1e-3°). missing="raise" raises if any valid time is absent from the truth;
    missing="drop" drops the init times whose forecasts reach a valid time the truth lacks.
    Lazy: truth is indexed along time only, no values are loaded.
    """
    if missing not in _MISSING_POLICIES:
        raise ValueError(f"missing must be one of {_MISSING_POLICIES}, got {missing!r}")
    check_forecast_layout(forecast)
    _check_truth_layout(truth)
    _check_variables(forecast, truth)
    forecast = make_latitude_increasing(forecast)
    truth = make_latitude_increasing(truth)
    check_aligned_grid(truth, forecast, "forecast")
    forecast = forecast.assign_coords(latitude=truth["latitude"], longitude=truth["longitude"])
    truth = _select_levels(forecast, truth[list(forecast.data_vars)])
    truth = truth.drop_vars([c for c in truth.coords if c != INIT_DIM and INIT_DIM in truth[c].dims])

    valid = valid_time(forecast).transpose(INIT_DIM, LEAD_DIM)
    positions = pd.Index(truth.indexes[INIT_DIM]).get_indexer(valid.values.ravel()).reshape(valid.shape)
    absent = positions < 0
    if absent.any():
        if missing == "raise":
            absent_times = np.unique(valid.values[absent])
            shown = ", ".join(str(t)[:19] for t in absent_times[:5])
            raise ValueError(
                f"truth lacks {absent_times.size} valid time(s) that the forecasts reach (init + lead), e.g. "
                f"{shown}; extend the truth's time range or pass missing='drop' to drop the init times "
                "whose forecasts reach them"
            )
        keep = ~absent.any(axis=1)
        if not keep.any():
            raise ValueError("no init time has all of its valid times in the truth; nothing left to score")
        forecast = forecast.isel({INIT_DIM: np.flatnonzero(keep)})
        positions, valid = positions[keep], valid.isel({INIT_DIM: np.flatnonzero(keep)})

    per_lead = [
        truth.isel({INIT_DIM: positions[:, j]}).assign_coords({INIT_DIM: forecast[INIT_DIM].values})
        for j in range(positions.shape[1])
    ]
    aligned = xr.concat(
        per_lead, dim=forecast[LEAD_DIM], coords="minimal", compat="override", join="override"
    )
    aligned = aligned.assign_coords(valid_time=valid).transpose(INIT_DIM, LEAD_DIM, ...)
    return forecast, aligned
