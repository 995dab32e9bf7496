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

from collections.abc import Hashable
from typing import Any

import dask.array
import numpy as np
import xarray as xr

DAYS_IN_CLIMATOLOGY = 366
DEFAULT_WINDOW_DAYS = 61
CHUNK_BYTES = 64 * 2**20  # time-chunk size of dask input while reducing: few, large tasks


def compute_climatology(truth: xr.Dataset, window_days: int = DEFAULT_WINDOW_DAYS,
                        by_day_of_year: bool = True) -> xr.Dataset:
    """Mean by day of year and hour of ``truth`` over all its times, eq. (1).

    by_day_of_year=False gives the mean by hour of day alone, (hour, [level], latitude, longitude)
    (``window_days`` unused): the per-hour-of-day climatology a short record supports, where a
    year or less leaves few samples per day of year.

    truth: canonical layout (time, [level], latitude, longitude); pass only the training period,
    e.g. ``truth.sel(time=slice("1990", "2019"))``. Returns (dayofyear=1…366, hour, [level],
    latitude, longitude) with one ``hour`` entry per distinct hour of day in ``truth``; variables
    without a time dim (static fields such as the land-sea mask) are their own climatology and pass
    through unchanged. Lazy on dask-backed input.
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
    hours, hour_index = np.unique(truth["time"].dt.hour.values, return_inverse=True)
    days = DAYS_IN_CLIMATOLOGY if by_day_of_year else 1
    day_index = truth["time"].dt.dayofyear.values - 1 if by_day_of_year else np.zeros_like(hour_index)
    group = day_index * hours.size + hour_index  # (time,) index of (dayofyear, hour)
    constant = {name: variable for name, variable in truth.data_vars.items() if "time" not in variable.dims}
    # name → (dims, per-group sums) of the values and of the non-NaN counts
    total_parts: dict[Hashable, tuple[tuple[Hashable, ...], Any]] = {}
    count_parts: dict[Hashable, tuple[tuple[Hashable, ...], Any]] = {}
    for name, variable in truth.data_vars.items():
        if name in constant:
            continue
        variable = variable.transpose("time", ...)
        field_dims = variable.dims[1:]
        for out, values in ((total_parts, variable.data), (count_parts, _not_nan(variable.data))):
            sums = _sum_by_group(values, group, days * hours.size)  # (days · hours, *field)
            sums = sums.reshape((days, hours.size, *sums.shape[1:]))
            out[name] = (("dayofyear", "hour", *field_dims), sums)
    coords = {"dayofyear": np.arange(1, days + 1), "hour": hours}
    field_coords = {k: v for k, v in truth.coords.items() if "time" not in v.dims}
    total = xr.Dataset(total_parts, coords=coords).assign_coords(field_coords)
    count = xr.Dataset(count_parts, coords=coords).assign_coords(field_coords)
    if not by_day_of_year:
        climatology = (total / count.where(count > 0)).isel(dayofyear=0, drop=True).transpose("hour", ...)
        return climatology.assign(constant).assign_attrs(by_day_of_year=0)
    if window_days > 1:
        total, count = _circular_running_sum(total, window_days), _circular_running_sum(count, window_days)
    climatology = (total / count.where(count > 0)).transpose("dayofyear", "hour", ...)
    return climatology.assign(constant).assign_attrs(window_days=window_days)


def _not_nan(values: np.ndarray | dask.array.Array) -> np.ndarray | dask.array.Array:
    return (values == values).astype(np.float64)


def _sum_by_group(
    values: np.ndarray | dask.array.Array, group: np.ndarray, n_groups: int
) -> np.ndarray | dask.array.Array:
    """Σ of ``values`` (time, *field) over the times of each group, NaN skipped → (n_groups, *field).

    The times are sorted by group (stable), cut into chunks at group boundaries (about the input's
    time-chunk length each) and each chunk is reduced with np.add.reduceat: one pass over the data,
    memory bounded by the chunk size. xarray's groupby without the optional ``flox`` package
    builds tasks per group and was ~100× slower on dask arrays with 366 × 4 groups. Lazy on dask.
    """
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])  # (n_present,)
    present = sorted_group[starts]
    if isinstance(values, dask.array.Array):
        # Chunks of about CHUNK_BYTES along time: a store written one time step per chunk (as
        # vecfield's build writes it) would otherwise give one task per sample and per group,
        # and a graph of ~10⁵ tasks took 5× longer than loading the data and reducing in memory.
        per_time = max(1, values[:1].nbytes)
        target = max(max(values.chunks[0]), CHUNK_BYTES // per_time)
        rechunked = values.rechunk({0: min(target, values.shape[0])})
        cuts = _group_aligned_cuts(starts, sorted_group.size, target)
        shuffled = rechunked[order].rechunk({0: tuple(np.diff(cuts))})
        groups_per_chunk = tuple(np.diff(np.searchsorted(starts, cuts)))
        sums = shuffled.map_blocks(
            _chunk_group_sums,
            starts=starts,
            chunks=(groups_per_chunk, *rechunked.chunks[1:]),
            dtype=np.float64,
        )  # (n_present, *field)
        zero = dask.array.zeros((1, *values.shape[1:]), chunks=(1, *rechunked.chunks[1:]), dtype=np.float64)
        sums = dask.array.concatenate([sums, zero])
    else:
        sums = np.concatenate([_reduce_sorted(values[order], starts), np.zeros((1, *values.shape[1:]))])
    row_of_group = np.full(n_groups, present.size)  # groups without samples read the zero row
    row_of_group[present] = np.arange(present.size)
    return sums[row_of_group]


def _group_aligned_cuts(starts: np.ndarray, n_times: int, target: int) -> np.ndarray:
    """Chunk edges in the sorted time axis: group starts spaced at least ``target`` apart, plus the end."""
    cuts = [0]
    for start in starts[1:]:
        if start - cuts[-1] >= target:
            cuts.append(int(start))
    cuts.append(n_times)
    return np.asarray(cuts)


def _reduce_sorted(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    finite = np.array(values, dtype=np.float64)  # a copy, zeroed in place where NaN
    finite[np.isnan(finite)] = 0.0
    return np.add.reduceat(finite, starts, axis=0)


def _chunk_group_sums(values: np.ndarray, starts: np.ndarray, block_info: dict) -> np.ndarray:
    first, last = block_info[0]["array-location"][0]
    local = starts[(starts >= first) & (starts < last)] - first
    return _reduce_sorted(values, local)


def _circular_running_sum(data: xr.Dataset, window: int) -> xr.Dataset:
    """Running sum over ``dayofyear`` with a centred window of ``window`` days that wraps the year.

    From cumulative sums of the wrap-padded series, R[d] = C[d + window] − C[d] (O(366) per
    point; a rolling-window view would hold window × 366 values per point).
    """
    half = window // 2
    days = data["dayofyear"]
    padded = data.drop_vars("dayofyear").pad(dayofyear=(half + 1, half), mode="wrap")
    cumulative = padded.cumsum("dayofyear")
    upper = cumulative.isel(dayofyear=slice(window, window + days.size))
    lower = cumulative.isel(dayofyear=slice(0, days.size))
    return (upper - lower).assign_coords(dayofyear=days)


def climatology_at(climatology: xr.Dataset, valid_time: xr.DataArray) -> xr.Dataset:
    """The climatology at each valid time, selected by its day of year and hour (those of the two
    dims the climatology has).

    climatology: ([dayofyear], [hour], [level], latitude, longitude); valid_time: datetime64
    DataArray of any dims, e.g. (time, prediction_timedelta). Returns valid_time's dims followed by
    ([level], latitude, longitude). Raises if a needed day of year or hour is absent.
    """
    indexers = {}
    if "dayofyear" in climatology.dims:
        indexers["dayofyear"] = valid_time.dt.dayofyear
    if "hour" in climatology.dims:
        indexers["hour"] = valid_time.dt.hour
    if not indexers:
        raise ValueError(
            "climatology needs a 'dayofyear' or an 'hour' dim (or both), "
            f"got dims {tuple(climatology.dims)}; build one with compute_climatology"
        )
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
