"""Climatology by day of year and hour of day (WeatherBench2's ``hourly climatology`` layout).

For hour h and day of year d (1…366, pandas' ``dayofyear``, so 29 Feb is day 60 in leap years and
1 Mar day 60 otherwise, exactly as WeatherBench2 indexes it), with a running window of W days
(W odd, half-width k = (W − 1)/2):

    C(d, h) = Σ_{t : hour(t)=h, doy(t) ∈ {d−k…d+k} mod 366} x(t)  /  #{those t with x(t) not NaN}   (1)

Every sample in the window counts once (a sum over samples, not a mean of daily means), and the
window wraps around the year end. W = 61 is WeatherBench2's default (its ERA5 climatologies
1990–2019 use a 61-day running window); W = 1 is the raw mean by day of year and hour. Days
with no sample inside their window are NaN.

The output layout is (dayofyear, hour, [level], latitude, longitude), as in
``gs://weatherbench2/datasets/era5-hourly-climatology/…``, so WB2's climatologies can be used too.
"""

import numpy as np
import xarray as xr

DAYS_IN_CLIMATOLOGY = 366
DEFAULT_WINDOW_DAYS = 61


def compute_climatology(truth: xr.Dataset, window_days: int = DEFAULT_WINDOW_DAYS) -> xr.Dataset:
    """Mean by day of year and hour of ``truth`` over all its times, eq. (1).

    truth: canonical layout (time, [level], latitude, longitude); pass only the training period,
    e.g. ``truth.sel(time=slice("1990", "2019"))``. Returns (dayofyear=1…366, hour, [level],
    latitude, longitude) with one ``hour`` entry per distinct hour of day in ``truth``. Lazy on
    dask-backed input.
    """
    if not isinstance(window_days, int | np.integer) or window_days < 1 or window_days % 2 == 0:
        raise ValueError(
            f"window_days must be a positive odd integer (1 = no smoothing), got {window_days!r}"
        )
    if window_days > DAYS_IN_CLIMATOLOGY:
        raise ValueError(f"window_days must be at most {DAYS_IN_CLIMATOLOGY}, got {window_days}")
    if "time" not in truth.dims:
        raise ValueError(f"truth needs a 'time' dim to build a climatology, got dims {tuple(truth.dims)}")
    truth = truth.drop_vars([c for c in truth.coords if c != "time" and "time" in truth[c].dims])
    hour_of_sample = truth["time"].dt.hour.values
    all_days = np.arange(1, DAYS_IN_CLIMATOLOGY + 1)
    sums, counts = [], []
    for hour in np.unique(hour_of_sample):
        at_hour = truth.isel(time=np.flatnonzero(hour_of_sample == hour))
        day = at_hour["time"].dt.dayofyear
        sums.append(at_hour.groupby(day).sum("time").reindex(dayofyear=all_days, fill_value=0))
        counts.append(at_hour.notnull().groupby(day).sum("time").reindex(dayofyear=all_days, fill_value=0))
    hours = xr.DataArray(np.unique(hour_of_sample), dims="hour", name="hour")
    total = xr.concat(sums, dim=hours)
    count = xr.concat(counts, dim=hours)
    if window_days > 1:
        total, count = _circular_running_sum(total, window_days), _circular_running_sum(count, window_days)
    climatology = (total / count.where(count > 0)).transpose("dayofyear", "hour", ...)
    return climatology.assign_attrs(window_days=window_days)


def _circular_running_sum(data: xr.Dataset, window: int) -> xr.Dataset:
    """Running sum over ``dayofyear`` with a centred window of ``window`` days that wraps the year."""
    half = window // 2
    days = data["dayofyear"]
    padded = data.drop_vars("dayofyear").pad(dayofyear=half, mode="wrap")
    summed = padded.rolling(dayofyear=window, center=True).sum()
    return summed.isel(dayofyear=slice(half, half + days.size)).assign_coords(dayofyear=days)


def climatology_at(climatology: xr.Dataset, valid_time: xr.DataArray) -> xr.Dataset:
    """The climatology at each valid time, selected by its day of year and (if present) hour.

    climatology: (dayofyear, [hour], [level], latitude, longitude); valid_time: datetime64
    DataArray of any dims, e.g. (time, prediction_timedelta). Returns valid_time's dims followed by
    ([level], latitude, longitude). Raises if a needed day of year or hour is absent.
    """
    if "dayofyear" not in climatology.dims:
        raise ValueError(
            "climatology needs a 'dayofyear' dim (and optionally 'hour'), "
            f"got dims {tuple(climatology.dims)}; "
            "build one with compute_climatology"
        )
    indexers = {"dayofyear": valid_time.dt.dayofyear}
    if "hour" in climatology.dims:
        indexers["hour"] = valid_time.dt.hour
    for dim, needed in indexers.items():
        absent = np.setdiff1d(np.unique(needed.values), climatology[dim].values)
        if absent.size:
            raise ValueError(
                f"climatology lacks {dim} {absent.tolist()[:10]} needed by the valid times; "
                f"it has {climatology[dim].size} values of {dim}, "
                f"from {climatology[dim].values.min()} to {climatology[dim].values.max()}"
            )
    selected = climatology.sel(indexers)
    return selected.drop_vars([name for name in ("dayofyear", "hour") if name in selected.coords])
