"""Normalization statistics, computed with dask over the training period only.

For every variable x (per pressure level when it has one), over time and the grid:

    mean = E[x],   std = sqrt(E[(x − mean)²]),   diff_std = std of Δx(t) = x(t + Δt) − x(t)     (1)

with Δt the dataset's time step, over pairs of times of one run when the dataset holds several
(:mod:`vecfield.data.trajectories`) (population statistics, ddof = 0, accumulated in float64).
``diff_std`` scales the residual a one-step forecaster predicts (GraphCast's
``diffs_stddev_by_level``); it is computed for time-dependent variables only. Static fields get
mean and std over the grid.
"""

from pathlib import Path

import dask
import numpy as np
import xarray as xr

from vecfield.data.canonical import load_coordinates
from vecfield.data.trajectories import within_run_differences

STATISTICS = ("mean", "std", "diff_std")
_GROUP = "statistics"
#: time-chunk size of dask input while reducing: a store written one time step per chunk (as the
#: build writes it) gives ~10⁵ tiny tasks, 3× slower than ~64 MiB chunks on the quickstart's data
CHUNK_BYTES = 64 * 2**20


def compute_statistics(ds: xr.Dataset, train: tuple[str, str] | None = None) -> dict[str, xr.Dataset]:
    """Eq. (1) for every data variable of ``ds`` (canonical layout), restricted to ``train``.

    train: inclusive (start, end) time labels; None uses all times. Returns
    {"mean": Dataset, "std": Dataset, "diff_std": Dataset}, each variable reduced to its
    ``level`` dimension (or a scalar). Everything is computed in one dask pass, over time chunks
    of about ``CHUNK_BYTES`` (float64).
    """
    if train is not None and "time" in ds.dims:
        ds = ds.sel(time=slice(*train))
        if ds.sizes["time"] < 2:
            raise ValueError(f"the training period {train} holds {ds.sizes['time']} time steps; need ≥ 2")
    ds = load_coordinates(ds)  # e.g. trajectory, stored in one chunk: the rechunk below needs it whole
    if ds.chunks and "time" in ds.dims:
        per_step = sum(8 * var.isel(time=0).size for var in ds.data_vars.values() if "time" in var.dims)
        ds = ds.chunk({"time": max(1, min(ds.sizes["time"], CHUNK_BYTES // max(1, per_step)))})
    means, stds, diff_stds = {}, {}, {}
    for name, var in ds.data_vars.items():
        x = var.astype(np.float64)
        dims = [d for d in x.dims if d != "level"]
        means[name] = x.mean(dims)
        stds[name] = x.std(dims)
        if "time" in x.dims:
            diff_stds[name] = within_run_differences(x).std(dims)
    means, stds, diff_stds = dask.compute(means, stds, diff_stds)
    return {"mean": xr.Dataset(means), "std": xr.Dataset(stds), "diff_std": xr.Dataset(diff_stds)}


def write_statistics(store: str | Path, statistics: dict[str, xr.Dataset]) -> None:
    """Write the statistics as zarr (v2) groups ``statistics/{mean,std,diff_std}`` of ``store``."""
    for kind in STATISTICS:
        statistics[kind].drop_encoding().to_zarr(
            store, group=f"{_GROUP}/{kind}", mode="w", consolidated=False, zarr_format=2
        )


def load_statistics(store: str | Path) -> dict[str, xr.Dataset]:
    """The statistics stored with a built dataset (see :func:`write_statistics`), loaded in memory."""
    try:
        return {k: xr.open_zarr(store, group=f"{_GROUP}/{k}").load() for k in STATISTICS}
    except (OSError, KeyError, FileNotFoundError) as error:
        raise ValueError(
            f"{store} has no normalization statistics; build it with pipelines/build_dataset.py"
        ) from error
