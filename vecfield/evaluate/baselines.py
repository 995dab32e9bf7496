"""Reference forecasts in WeatherBench2's forecast layout: persistence and climatology.

Both return (time=init, prediction_timedelta, [level], latitude, longitude), so they are scored by
exactly the same functions as a model's forecast.

- Persistence: F(init, lead) = x(init), the initial state held constant over all leads.
- Climatology: F(init, lead) = C(doy(init + lead), hour(init + lead)), the climatology (see
  :mod:`vecfield.evaluate.climatology`) at the valid time.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from vecfield.evaluate.align import INIT_DIM, LEAD_DIM
from vecfield.evaluate.climatology import climatology_at


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
