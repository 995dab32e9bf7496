"""Forecasts as xarray in WeatherBench2's forecast layout, and their resumable zarr store.

Layout: (time = initialization time, prediction_timedelta, [realization,] [level,] latitude,
longitude), valid time = time + prediction_timedelta, with the catalogue's CF attributes. A
stream's store is laid out in full before the first lead (:func:`forecast_template`), each lead is
written into its region, and the attribute ``completed_leads`` counts the finished leads, so an
interrupted rollout resumes after the last one from the stored float32 states.
"""

import os
from pathlib import Path
from typing import Any

import dask.array
import numpy as np
import torch
import xarray as xr
import zarr

from vecfield.data.catalogue import ENSEMBLE_DIM, LEAD_DIM, cf_attributes
from vecfield.data.channels import ChannelLayout

COMPLETED = "completed_leads"


def forecast_dataset(layout: ChannelLayout, latitude: np.ndarray, longitude: np.ndarray, states: torch.Tensor,
                     inits: np.ndarray, leads: np.ndarray) -> xr.Dataset:
    """The forecast dataset of states (R, L, N, C) at ``leads`` (L,) timedelta64: one unstacking for
    all leads. An ensemble's M > 1 rows per initialization, i·M + m, become the ``realization`` dim."""
    members = states.shape[0] // len(inits)
    if members == 1:
        return layout.unstack(states, latitude, longitude, {"time": inits, LEAD_DIM: leads})
    grouped = states.reshape(len(inits), members, *states.shape[1:]).transpose(1, 2)
    dims = {"time": inits, LEAD_DIM: leads, ENSEMBLE_DIM: np.arange(members)}
    return layout.unstack(grouped, latitude, longitude, dims)


def forecast_template(layout: ChannelLayout, latitude: np.ndarray, longitude: np.ndarray, inits: np.ndarray,
                      leads: np.ndarray, members: int, attrs: dict[str, Any]) -> xr.Dataset:
    """The lazy (dask, zeros) layout of the full forecast, chunked one lead per chunk, with
    ``attrs`` and ``completed_leads`` = 0: what :class:`ForecastStore` writes before any lead."""
    ensemble = (ENSEMBLE_DIM,) if members > 1 else ()
    outer = (len(inits), len(leads), *((members,) if members > 1 else ()))
    grid = (latitude.size, longitude.size)
    data = {}
    for name in layout.variables:
        levels = [lv for n, lv in layout.channels if n == name and lv is not None]
        level_dim, level_size = (("level",), (len(levels),)) if levels else ((), ())
        dims = ("time", LEAD_DIM, *ensemble, *level_dim, "latitude", "longitude")
        chunks = (outer[0], 1, *outer[2:], *level_size, *grid)
        data[name] = (dims, dask.array.zeros((*outer, *level_size, *grid), chunks=chunks, dtype=np.float32))
    levels = sorted({lv for _, lv in layout.channels if lv is not None})
    coords = {
        "time": inits,
        LEAD_DIM: leads,
        "latitude": latitude,
        "longitude": longitude,
        **({"level": levels} if levels else {}),
        **({ENSEMBLE_DIM: np.arange(members)} if members > 1 else {}),
    }
    return cf_attributes(xr.Dataset(data, coords=coords, attrs={**attrs, COMPLETED: 0}))


class ForecastStore:
    """A forecast zarr store being streamed, lead by lead; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str], layout: ChannelLayout) -> None:
        self.path, self.layout = Path(path), layout

    def completed(self, template: xr.Dataset, identity: dict[str, Any]) -> int:
        """The leads already written to a store of this forecast (0 for a new store, which is then
        laid out from ``template``). ``identity``: attributes that must match to resume (sampler and
        noise seed); a store of another forecast is a ValueError."""
        if not self.path.exists():
            template.to_zarr(self.path, mode="w", compute=False, zarr_format=2)
            return 0
        existing = xr.open_zarr(self.path)
        same = (
            existing.sizes.get(LEAD_DIM) == template.sizes[LEAD_DIM]
            and existing.sizes.get(ENSEMBLE_DIM, 1) == template.sizes.get(ENSEMBLE_DIM, 1)
            and np.array_equal(existing["time"].values, template["time"].values)
            and all(existing.attrs.get(k) == v for k, v in identity.items())
        )
        if not same:
            raise ValueError(
                f"{self.path} holds another forecast (different initializations, steps, members, sampler "
                "or noise seed); choose a new output path or delete it"
            )
        done = int(existing.attrs.get(COMPLETED, 0))
        if done == 0:  # laid out but no lead written: lay it out again (the template may be newer)
            template.to_zarr(self.path, mode="w", compute=False, zarr_format=2)
        return done

    def write_lead(self, lead_dataset: xr.Dataset, lead: int) -> None:
        """Write lead ``lead`` (1-based; a dataset with one prediction_timedelta) into its region and
        count it finished."""
        values = lead_dataset.drop_vars(["time", "latitude", "longitude", "level", ENSEMBLE_DIM, LEAD_DIM],
                                        errors="ignore")
        values.to_zarr(self.path, region={LEAD_DIM: slice(lead - 1, lead)}, zarr_format=2)
        zarr.open_group(str(self.path), mode="r+").attrs[COMPLETED] = lead

    def state(self, index: int) -> torch.Tensor:
        """(rows, N, C) state of the stored lead ``index`` (0-based), exactly as the network produced
        it (float32); ensemble rows i·M + m."""
        lead = xr.open_zarr(self.path).isel({LEAD_DIM: index})
        if ENSEMBLE_DIM not in lead.dims:
            return torch.from_numpy(self.layout.stack(lead))
        members = range(lead.sizes[ENSEMBLE_DIM])
        per_member = [self.layout.stack(lead.isel({ENSEMBLE_DIM: m})) for m in members]
        stacked = np.stack(per_member, axis=1)  # (B, M, N, C)
        return torch.from_numpy(stacked.reshape(-1, *stacked.shape[2:]))
