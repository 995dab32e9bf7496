"""Independent runs one after another on one time axis: the optional ``trajectory`` coordinate.

A dataset may hold several independent trajectories back to back on one regular time axis (the
default atmosphere integrates its calendar as runs side by side; reforecast and simulation
archives are built the same way). Its ``trajectory`` coordinate (integers along ``time``) names the
run of each time. Nothing that relates two times may cross a change of run: training windows, a
forecast's initial states and verifying leads, and the time differences of the statistics.
A dataset without the coordinate is one run.
"""

import numpy as np
import xarray as xr

TRAJECTORY_COORD = "trajectory"


def run_labels(ds: xr.Dataset | xr.DataArray) -> np.ndarray:
    """(T,) int64 labels, non-decreasing along time, that step by one exactly where the trajectory
    changes (all 0 without the coordinate). Two time indices i ≤ j lie in one run iff their labels
    are equal."""
    if TRAJECTORY_COORD not in ds.coords:
        return np.zeros(ds.sizes["time"], dtype=np.int64)
    ids = np.asarray(ds[TRAJECTORY_COORD].values)
    if ids.shape != (ds.sizes["time"],):
        raise ValueError(
            f"the {TRAJECTORY_COORD!r} coordinate must lie along time alone, got dims "
            f"{ds[TRAJECTORY_COORD].dims}"
        )
    return np.concatenate([[0], np.cumsum(ids[1:] != ids[:-1])]).astype(np.int64)


def same_run(ds: xr.Dataset | xr.DataArray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Whether the times ``first`` and ``last`` (datetime64, same shape, first ≤ last) lie in one run
    of ``ds``. A time outside the data counts as the run of its nearest stored time, so a forecast
    that runs past the end of the data stays in the last run."""
    times = ds["time"].values.astype("datetime64[ns]")
    labels = run_labels(ds)

    def label(values: np.ndarray) -> np.ndarray:
        index = np.searchsorted(times, np.asarray(values, dtype="datetime64[ns]"), side="right") - 1
        return labels[np.clip(index, 0, times.size - 1)]

    return label(first) == label(last)


def within_run_differences(x: xr.DataArray) -> xr.DataArray:
    """x(t + Δt) − x(t) along time, NaN where the two times belong to different runs."""
    difference = x.diff("time")
    if TRAJECTORY_COORD not in x.coords:
        return difference
    labels = run_labels(x)
    return difference.where(xr.DataArray(labels[1:] == labels[:-1], dims="time"))
