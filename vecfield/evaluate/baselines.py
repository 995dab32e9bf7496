"""Reference forecasts in WeatherBench2's forecast layout: persistence, climatology and damped
anomaly persistence, and the best of several baselines.

Both return (time=init, prediction_timedelta, [level], latitude, longitude), so they are scored by
exactly the same functions as a model's forecast.

- Persistence: F(init, lead) = x(init), the initial state held constant over all leads.
- Climatology: F(init, lead) = C(doy(init + lead), hour(init + lead)), the climatology (see
  :mod:`vecfield.evaluate.climatology`) at the valid time; with ``compute_climatology(...,
  by_day_of_year=False)`` the per-hour-of-day climatology C(hour(init + lead)).
- Damped anomaly persistence: F(init, lead) = C(init + lead) + a_L·(x(init) − C(init)), with a_L
  fitted per lead on the training period (eq. 2 below).

:func:`simple_baselines` makes the three that any dataset supports (persistence, the per-hour-of-day
climatology of the training period and damped anomaly persistence fitted on it), and
:func:`best_baseline` picks the best of scored baselines at every lead.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vecfield.data.trajectories import same_run
from vecfield.evaluate.align import INIT_DIM, LEAD_DIM
from vecfield.evaluate.climatology import climatology_at, compute_climatology
from vecfield.evaluate.weights import latitude_weights


def _init_times(init_times: Sequence | np.ndarray | xr.DataArray) -> np.ndarray:
    values = np.asarray(init_times.values if isinstance(init_times, xr.DataArray) else init_times)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.datetime64):
        raise TypeError(
            f"init_times must be a 1-D array of datetime64, got dtype {values.dtype}, shape {values.shape}"
        )
    return values.astype("datetime64[ns]")


def _lead_times(lead_times: Sequence | np.ndarray | xr.DataArray) -> np.ndarray:
    values = np.asarray(lead_times.values if isinstance(lead_times, xr.DataArray) else lead_times)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.timedelta64):
        raise TypeError(
            f"lead_times must be a 1-D array of timedelta64 (e.g. pd.to_timedelta([0, 6, 12], unit='h')), "
            f"got dtype {values.dtype}, shape {values.shape}"
        )
    return values.astype("timedelta64[ns]")


def persistence_forecast(
    truth: xr.Dataset, init_times: Sequence | np.ndarray | xr.DataArray, lead_times: Sequence | np.ndarray
) -> xr.Dataset:
    """Persistence: the state at each init time repeated over ``lead_times``, in forecast layout.

    truth: (time, [level], latitude, longitude); init_times: (n_init,) datetime64, all present in
    truth; lead_times: (n_lead,) timedelta64. Returns (time=init, prediction_timedelta, [level],
    latitude, longitude); lazy (a broadcast view, no copy over leads).
    """
    inits, leads = _init_times(init_times), _lead_times(lead_times)
    missing = inits[~pd.Index(inits).isin(truth.indexes[INIT_DIM])]
    if missing.size:
        raise ValueError(
            f"persistence needs the truth at every init time; {missing.size} absent, "
            f"e.g. {str(missing[0])[:19]}"
        )
    initial = truth.sel({INIT_DIM: inits})
    initial = initial.drop_vars([c for c in initial.coords if c != INIT_DIM and INIT_DIM in initial[c].dims])
    forecast = initial.expand_dims({LEAD_DIM: leads}, axis=1)
    return forecast.transpose(INIT_DIM, LEAD_DIM, ...)


def climatology_forecast(
    climatology: xr.Dataset,
    init_times: Sequence | np.ndarray | xr.DataArray,
    lead_times: Sequence | np.ndarray,
) -> xr.Dataset:
    """Climatology as a forecast: the climatology at each valid time init + lead, in forecast layout.

    climatology: (dayofyear, [hour], [level], latitude, longitude), e.g. from
    ``compute_climatology(truth.sel(time=training_period))``. Returns (time=init,
    prediction_timedelta, [level], latitude, longitude).
    """
    inits, leads = _init_times(init_times), _lead_times(lead_times)
    grid = xr.Dataset(coords={INIT_DIM: inits, LEAD_DIM: leads})
    valid = (grid[INIT_DIM] + grid[LEAD_DIM]).transpose(INIT_DIM, LEAD_DIM)
    return climatology_at(climatology, valid).transpose(INIT_DIM, LEAD_DIM, ...)


def anomaly_persistence_coefficients(
    truth: xr.Dataset, climatology: xr.Dataset, lead_times: Sequence | np.ndarray
) -> xr.Dataset:
    """The damping a_L of each lead for :func:`damped_anomaly_persistence_forecast`, fitted by least
    squares on ``truth`` (pass the training period):

        a_L = Σ_{t, cells} w · x′(t) · x′(t + L)  /  Σ_{t, cells} w · x′(t)²,   x′ = x − C(valid time)   (2)

    over every pair of times L apart (in one run, :mod:`vecfield.data.trajectories`), with w the
    latitude weights (``vecfield.geo``) and C the ``climatology`` (e.g. :func:`compute_climatology` of
    the same period). It minimizes the area-weighted squared error of C + a_L·x′(init) on the training
    data. Returns a Dataset of a_L per variable (and level) with dim ``prediction_timedelta``; a lead
    with no pair of times is NaN.
    """
    leads = _lead_times(lead_times)
    times = truth[INIT_DIM].values.astype("datetime64[ns]")
    # in memory, indexed by position: each lead then costs two weighted dot products (xr.dot, one
    # einsum per variable), 4x faster than selecting by label and weighted sums
    anomaly = (truth - climatology_at(climatology, truth[INIT_DIM])).drop_vars(INIT_DIM)
    anomaly = anomaly.reset_coords(drop=True).load()
    weights = latitude_weights(truth["latitude"])
    reduce = [INIT_DIM, "latitude", "longitude"]
    per_lead = []
    for lead in leads:
        first = np.flatnonzero(np.isin(times + lead, times))
        first = first[same_run(truth, times[first], times[first] + lead)]
        start = anomaly.isel({INIT_DIM: first})
        end = anomaly.isel({INIT_DIM: np.searchsorted(times, times[first] + lead)})
        per_lead.append(xr.Dataset({
            name: xr.dot(x, end[name], weights, dim=reduce) / xr.dot(x, x, weights, dim=reduce)
            for name, x in start.data_vars.items()
        }))
    return xr.concat(per_lead, dim=xr.DataArray(leads, dims=LEAD_DIM, name=LEAD_DIM))


def damped_anomaly_persistence_forecast(
    truth: xr.Dataset,
    climatology: xr.Dataset,
    coefficients: xr.Dataset,
    init_times: Sequence | np.ndarray | xr.DataArray,
) -> xr.Dataset:
    """The statistician's forecast: the climatology at the valid time plus the initial anomaly damped
    by the lead's a_L (eq. 2, :func:`anomaly_persistence_coefficients`),

        F(init, L) = C(init + L) + a_L · (x(init) − C(init)),

    at the leads of ``coefficients``, in forecast layout (time=init, prediction_timedelta, [level],
    latitude, longitude). a_L = 0 is the climatology; a_L = 1 persists the anomaly (persistence
    plus the climatology's change from the initial to the valid time).
    """
    leads = coefficients[LEAD_DIM].values
    initial = persistence_forecast(truth, init_times, leads[:1]).isel({LEAD_DIM: 0}, drop=True)
    inits = initial[INIT_DIM]
    anomaly = initial - climatology_at(climatology, inits)
    return climatology_forecast(climatology, inits, leads) + coefficients * anomaly


def simple_baselines(
    truth: xr.Dataset,
    training: xr.Dataset,
    init_times: Sequence | np.ndarray | xr.DataArray,
    lead_times: Sequence | np.ndarray,
) -> tuple[dict[str, xr.Dataset], xr.Dataset]:
    """Persistence, the per-hour-of-day climatology of ``training`` and damped anomaly persistence
    (climatology and a_L, eq. 2, both from ``training``), as forecasts from ``init_times`` at
    ``lead_times`` in forecast layout.

    truth: canonical (time, [level], latitude, longitude) holding the initial states; training: the
    training period of the same variables (no test data: it defines the climatology and a_L).
    Returns ({"persistence", "hourly_climatology", "damped_persistence"} → forecast, the a_L
    Dataset with dim ``prediction_timedelta``).
    """
    leads = _lead_times(lead_times)
    climatology = compute_climatology(training, by_day_of_year=False)
    coefficients = anomaly_persistence_coefficients(training, climatology, leads)
    forecasts = {
        "persistence": persistence_forecast(truth, init_times, leads),
        "hourly_climatology": climatology_forecast(climatology, init_times, leads),
        "damped_persistence": damped_anomaly_persistence_forecast(truth, climatology, coefficients,
                                                                  init_times),
    }
    return forecasts, coefficients


def best_baseline(scores: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """The best of several baselines at every (variable, [level], lead): the elementwise minimum of
    their error scores (e.g. RMSE of persistence, climatology and damped anomaly persistence). For
    each variable ``v`` a string variable ``v_baseline`` of the same shape names the one chosen."""
    if not scores:
        raise ValueError("best_baseline needs the scores of at least one baseline")
    names = list(scores)
    stacked = xr.concat([scores[name] for name in names], dim="baseline")
    best = stacked.min("baseline", skipna=True)
    choice = stacked.fillna(np.inf).argmin("baseline")
    return best.assign({f"{name}_baseline": choice[name].copy(data=np.asarray(names)[choice[name].values])
                        for name in best.data_vars})
