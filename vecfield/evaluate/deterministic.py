"""Deterministic scores with WeatherBench2's definitions, per variable, level and lead.

Notation: f = forecast, o = truth at the valid time (see :func:`~vecfield.evaluate.align.align_truth`),
⟨·⟩ = area-weighted spatial mean (:func:`~vecfield.evaluate.weights.spatial_mean`), and
mean_t = mean over initialization times. Every function returns a Dataset with dims
(prediction_timedelta, [level]) per forecast variable and stays lazy on dask input.

    MSE   = mean_t ⟨(f − o)²⟩                                                   (1)
    RMSE  = sqrt(MSE) = sqrt(mean_t ⟨(f − o)²⟩)     WB2 / ECMWF: sqrt AFTER the time mean  (2)
    RMSE' = mean_t sqrt(⟨(f − o)²⟩)                 WB1 / GraphCast paper: sqrt BEFORE        (3)
    bias  = mean_t ⟨f − o⟩,        MAE = mean_t ⟨|f − o|⟩                      (4)
    ACC   = mean_t ⟨f'o'⟩ / sqrt(⟨f'²⟩⟨o'²⟩),  f' = f − c, o' = o − c             (5)
    wind vector RMSE = sqrt(mean_t ⟨(Δu)² + (Δv)²⟩)                            (6)

In (5) the climatology c is taken at the VALID time (day of year and hour of init + lead) and
the anomalies are uncentred (no spatial mean removed), as in WeatherBench2. By Jensen, (3) ≤ (2).
Cells where forecast or truth is NaN are left out of ⟨·⟩ (their weight drops from the denominator).
"""

from typing import NamedTuple

import numpy as np
import xarray as xr

from vecfield.evaluate.align import (
    ENSEMBLE_DIM,
    INIT_DIM,
    LEAD_DIM,
    MissingPolicy,
    align_truth,
    check_aligned_grid,
    make_latitude_increasing,
)
from vecfield.evaluate.climatology import climatology_at
from vecfield.evaluate.weights import spatial_mean, sqrt

DEFAULT_WIND = ("u_component_of_wind", "v_component_of_wind")


class _Pair(NamedTuple):
    forecast: xr.Dataset
    truth: xr.Dataset


def _aligned(forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy) -> _Pair:
    if isinstance(forecast, xr.Dataset) and ENSEMBLE_DIM in forecast.dims:
        raise ValueError(
            f"forecast has the ensemble dim {ENSEMBLE_DIM!r}; deterministic scores need one field per "
            "(init, lead): score forecast.mean('realization') or use vecfield.evaluate.probabilistic"
        )
    return _Pair(*align_truth(forecast, truth, missing=missing))


def _mse_per_init(pair: _Pair) -> xr.Dataset:
    return spatial_mean((pair.forecast - pair.truth) ** 2)


def mse(forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy = "raise") -> xr.Dataset:
    """Mean squared error, eq. (1): mean_t ⟨(f − o)²⟩, dims (prediction_timedelta, [level])."""
    return _mse_per_init(_aligned(forecast, truth, missing)).mean(INIT_DIM)


def rmse(forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy = "raise") -> xr.Dataset:
    """Root mean squared error, WB2/ECMWF convention, eq. (2): sqrt(mean_t ⟨(f − o)²⟩)."""
    return sqrt(mse(forecast, truth, missing=missing))


def rmse_sqrt_before_time_mean(
    forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy = "raise"
) -> xr.Dataset:
    """RMSE in the WB1/GraphCast-paper convention, eq. (3): mean_t sqrt(⟨(f − o)²⟩); never above (2)."""
    return sqrt(_mse_per_init(_aligned(forecast, truth, missing))).mean(INIT_DIM)


def bias(forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy = "raise") -> xr.Dataset:
    """Mean error, eq. (4): mean_t ⟨f − o⟩ (positive = forecast too high)."""
    pair = _aligned(forecast, truth, missing)
    return spatial_mean(pair.forecast - pair.truth).mean(INIT_DIM)


def mae(forecast: xr.Dataset, truth: xr.Dataset, missing: MissingPolicy = "raise") -> xr.Dataset:
    """Mean absolute error, eq. (4): mean_t ⟨|f − o|⟩."""
    pair = _aligned(forecast, truth, missing)
    return spatial_mean(abs(pair.forecast - pair.truth)).mean(INIT_DIM)


def _acc(pair: _Pair, climatology: xr.Dataset) -> xr.Dataset:
    missing_vars = [name for name in pair.forecast.data_vars if name not in climatology.data_vars]
    if missing_vars:
        raise ValueError(
            f"climatology lacks variables {missing_vars}; it has {sorted(map(str, climatology.data_vars))}"
        )
    for name, variable in pair.truth.data_vars.items():
        field_dims = set(variable.dims) - {INIT_DIM, LEAD_DIM}
        climatology_dims = set(climatology[name].dims) - {"dayofyear", "hour"}
        if field_dims != climatology_dims:
            raise ValueError(
                f"climatology variable {name!r} has field dims {sorted(map(str, climatology_dims))} but the "
                f"forecast has {sorted(map(str, field_dims))}; they must match"
            )
    climatology = make_latitude_increasing(climatology[list(pair.forecast.data_vars)])
    check_aligned_grid(pair.truth, climatology, "climatology")
    climatology = climatology.assign_coords(
        latitude=pair.truth["latitude"], longitude=pair.truth["longitude"]
    )
    if "level" in pair.forecast.dims and "level" in climatology.dims:
        absent = np.setdiff1d(pair.forecast["level"].values, climatology["level"].values)
        if absent.size:
            raise ValueError(f"climatology lacks levels {absent.tolist()} of the forecast")
        climatology = climatology.sel(level=pair.forecast["level"].values)
    clim = climatology_at(climatology, pair.truth["valid_time"])
    forecast_anomaly = pair.forecast - clim
    truth_anomaly = pair.truth - clim
    correlation = spatial_mean(forecast_anomaly * truth_anomaly) / sqrt(
        spatial_mean(forecast_anomaly**2) * spatial_mean(truth_anomaly**2)
    )
    return correlation.mean(INIT_DIM)


def acc(
    forecast: xr.Dataset, truth: xr.Dataset, climatology: xr.Dataset, missing: MissingPolicy = "raise"
) -> xr.Dataset:
    """Anomaly correlation coefficient, eq. (5), against ``climatology`` at the valid time.

    climatology: (dayofyear, [hour], [level], latitude, longitude), e.g. from
    :func:`~vecfield.evaluate.climatology.compute_climatology` over the training period.
    """
    return _acc(_aligned(forecast, truth, missing), climatology)


def wind_vector_rmse(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    wind: tuple[str, str] = DEFAULT_WIND,
    missing: MissingPolicy = "raise",
) -> xr.DataArray:
    """Wind vector RMSE, eq. (6): sqrt(mean_t ⟨(u_f − u_o)² + (v_f − v_o)²⟩), dims (lead, [level]).

    wind: the names of the (u, v) components, both forecast variables.
    """
    absent = [name for name in wind if name not in forecast.data_vars]
    if absent:
        raise ValueError(
            f"wind components {absent} are not forecast variables; forecast has "
            f"{sorted(map(str, forecast.data_vars))}. Pass wind=(u_name, v_name)"
        )
    u, v = wind
    pair = _aligned(forecast[[u, v]], truth, missing)
    squared = (pair.forecast[u] - pair.truth[u]) ** 2 + (pair.forecast[v] - pair.truth[v]) ** 2
    return sqrt(spatial_mean(squared).mean(INIT_DIM)).rename("wind_vector_rmse")


def deterministic_scores(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    climatology: xr.Dataset | None = None,
    missing: MissingPolicy = "raise",
) -> dict[str, xr.Dataset]:
    """All deterministic scores from one alignment: {"mse", "rmse", "rmse_sqrt_before_time_mean",
    "bias", "mae"} and "acc" when a climatology is given; each (prediction_timedelta, [level])."""
    pair = _aligned(forecast, truth, missing)
    mse_per_init = _mse_per_init(pair)
    error = pair.forecast - pair.truth
    scores = {
        "mse": mse_per_init.mean(INIT_DIM),
        "rmse": sqrt(mse_per_init.mean(INIT_DIM)),
        "rmse_sqrt_before_time_mean": sqrt(mse_per_init).mean(INIT_DIM),
        "bias": spatial_mean(error).mean(INIT_DIM),
        "mae": spatial_mean(abs(error)).mean(INIT_DIM),
    }
    if climatology is not None:
        scores["acc"] = _acc(pair, climatology)
    return scores
