"""Lateral boundary forcing of a limited-area forecaster: the rim of the box is told, not predicted.

A limited-area model forgets its boundaries: weather that enters the box from outside is unknown to
it, so without boundary data its skill decays from the edges inwards (about one box-crossing time).
With boundary forcing of rim width w (``model.boundary_rim``), after every autoregressive step

    S(t + Δt)[n] ← B(t + Δt)[n]   for every node n of the rim R_w                               (1)

R_w = {(i, j) : i < w or i ≥ H − w or j < w or j ≥ W − w} on the (H latitudes × W longitudes) box,
and B the boundary data: the truth during training (the window's targets) and, at inference, the
truth or a coarser global forecast (anemoi's limited-area models do the same). The rim's own
predictions are overwritten before anything reads them, so the training loss weighs them 0 (the
loss is on the interior); scores are taken on the interior too, since the rim is the boundary data.

:class:`Boundary` imposes (1) inside :func:`vecfield.forecast.rollout.autoregressive`;
:class:`BoundarySource` reads B from a dataset, either in the canonical layout (``time`` = valid
time) or in WeatherBench2's forecast layout (``time`` = initialization, ``prediction_timedelta``),
on the box's grid or on a coarser one that covers it (interpolated linearly onto the box).
"""

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import Tensor

from vecfield.data.catalogue import LEAD_DIM
from vecfield.data.channels import ChannelLayout


def check_rim(width: int, n_latitude: int, n_longitude: int, is_global: bool = False) -> None:
    """ValueError unless a rim of ``width`` cells leaves an interior in an (n_latitude × n_longitude)
    limited-area box."""
    if width < 0:
        raise ValueError(f"model.boundary_rim must be ≥ 0 grid cells (0: no boundary forcing), got {width}")
    if width == 0:
        return
    if is_global:
        raise ValueError("model.boundary_rim > 0 forces the rim of a limited-area box, but this grid is "
                         "global (it has no lateral boundary); set model.boundary_rim=0")
    if 2 * width >= min(n_latitude, n_longitude):
        raise ValueError(
            f"model.boundary_rim={width} cells leaves no interior in a box of {n_latitude} latitudes × "
            f"{n_longitude} longitudes; use a rim narrower than {(min(n_latitude, n_longitude) + 1) // 2} "
            "cells (1–3 is usual) or a larger box"
        )


def rim_mask(width: int, n_latitude: int, n_longitude: int) -> Tensor:
    """(n_latitude · n_longitude,) bool, True on the rim R_w of eq. (1), nodes latitude-major."""
    check_rim(width, n_latitude, n_longitude)
    i = torch.arange(n_latitude)[:, None]
    j = torch.arange(n_longitude)[None, :]
    rim = (i < width) | (i >= n_latitude - width) | (j < width) | (j >= n_longitude - width)
    return rim.reshape(-1)


@dataclass
class Boundary:
    """Boundary data for a k-step rollout: mask (N,) bool (the rim), values (B, ≥ k, N, C) the states
    at t + Δt … t + kΔt (only the rim is read)."""

    mask: Tensor
    values: Tensor

    def impose(self, state: Tensor, step: int) -> Tensor:
        """Eq. (1) for step ``step`` (0-based): ``state`` (B, N, C) with its rim replaced."""
        return torch.where(self.mask.to(state.device)[:, None], self.values[:, step].to(state), state)


class BoundarySource:
    """Boundary states on a box's grid read from ``data`` (see the module docstring).

    data: canonical (time = valid time, [level], latitude, longitude) or forecast layout (time =
    initialization, prediction_timedelta, ...) holding the state variables of ``layout``; its grid is
    the box's or one that covers it (coarser global forecasts are interpolated linearly).
    latitude, longitude: the box's coordinates (degrees). Missing variables, levels or grid coverage
    are ValueErrors here; missing times when :meth:`values` asks for them.
    """

    def __init__(self, data: xr.Dataset, layout: ChannelLayout, latitude: np.ndarray,
                 longitude: np.ndarray, step_hours: int) -> None:
        if not isinstance(data, xr.Dataset):
            raise TypeError(f"boundary data must be an xarray.Dataset, got {type(data).__name__}")
        missing = [name for name in layout.variables if name not in data.data_vars]
        if missing:
            raise ValueError(f"the boundary data lacks the state variable(s) {missing}; it needs "
                             f"{list(layout.variables)} (it has {sorted(map(str, data.data_vars))})")
        for dim in ("time", "latitude", "longitude"):
            if dim not in data.dims:
                raise ValueError(f"the boundary data has no {dim!r} dimension; open it with "
                                 "vecfield.data.sources.open_dataset for the canonical layout")
        levels = sorted({level for _, level in layout.channels if level is not None})
        data = data[list(layout.variables)]
        if levels:
            have = data["level"].values.tolist() if "level" in data.coords else []
            lacking = [level for level in levels if level not in have]
            if lacking:
                raise ValueError(f"the boundary data lacks pressure level(s) {lacking} hPa; "
                                 f"it needs {levels}")
            data = data.sel(level=levels)
        self.layout = layout
        self.forecast_layout = LEAD_DIM in data.dims
        self.step = np.timedelta64(step_hours, "h").astype("timedelta64[ns]")
        self.data = _onto_box(data, np.asarray(latitude, np.float64), np.asarray(longitude, np.float64))

    def values(self, inits: np.ndarray, first_lead: int, steps: int) -> Tensor:
        """(B, steps, N, C) float32 boundary states at leads ``first_lead`` … ``first_lead + steps − 1``
        (in steps of Δt) of the initializations ``inits`` (B,)."""
        inits = np.asarray(inits, dtype="datetime64[ns]")
        leads = (first_lead + np.arange(steps)) * self.step
        if self.forecast_layout:
            selected = self._select_forecast(inits, leads)
        else:
            valid = (inits[:, None] + leads[None, :]).reshape(-1)
            absent = valid[~np.isin(valid, self.data["time"].values.astype("datetime64[ns]"))]
            if absent.size:
                raise ValueError(
                    f"the boundary data has no state at {absent.size} valid time(s) the rollout reaches, "
                    f"e.g. {str(absent[0])[:16]}; it covers {_span(self.data['time'].values)}. Give boundary "
                    "data over the whole forecast (every initialization + every lead)"
                )
            selected = self.data.sel(time=valid)
        stacked = self.layout.stack(selected.load())  # (B · steps, N, C)
        if not np.isfinite(stacked).all():
            raise ValueError("the boundary data holds NaN or infinite values on the box; fill them or "
                             "choose other times")
        return torch.from_numpy(stacked).reshape(inits.size, steps, *stacked.shape[1:])

    def _select_forecast(self, inits: np.ndarray, leads: np.ndarray) -> xr.Dataset:
        have_inits = self.data["time"].values.astype("datetime64[ns]")
        have_leads = self.data[LEAD_DIM].values.astype("timedelta64[ns]")
        if not np.isin(inits, have_inits).all():
            absent = inits[~np.isin(inits, have_inits)]
            raise ValueError(f"the boundary forecast has no initialization {str(absent[0])[:16]} "
                             f"({absent.size} missing); it has {_span(have_inits)}")
        if not np.isin(leads, have_leads).all():
            hours = (leads / np.timedelta64(1, "h")).astype(int).tolist()
            raise ValueError(f"the boundary forecast lacks some of the leads {hours} h; it has "
                             f"{(have_leads / np.timedelta64(1, 'h')).astype(int).tolist()} h")
        rows = [self.data.sel(time=init).sel({LEAD_DIM: leads}).drop_vars(["time", LEAD_DIM])
                .rename_dims({LEAD_DIM: "time"}) for init in inits]
        return xr.concat(rows, dim="time")  # (B · steps, ...) initialization-major


def _span(times: np.ndarray) -> str:
    times = np.asarray(times, dtype="datetime64[ns]")
    return f"{str(times.min())[:16]} … {str(times.max())[:16]}" if times.size else "no times"


def _onto_box(data: xr.Dataset, latitude: np.ndarray, longitude: np.ndarray) -> xr.Dataset:
    """``data`` on the box's grid: selected when it has the box's points, else interpolated linearly
    from a grid that covers the box. Longitudes are compared on one circle: both are unwrapped to
    the 360° window centred on the box, so a box across 0° and a global source in any convention
    (0…360 or −180…180) line up without a seam."""
    data = data.sortby("latitude")
    source_lat = data["latitude"].values.astype(np.float64)
    west = float(longitude[0])
    box_lon = west + np.mod(longitude - west, 360.0)  # increasing across 0°
    window = (box_lon.min() + box_lon.max()) / 2.0 - 180.0
    source_lon = window + np.mod(data["longitude"].values.astype(np.float64) - window, 360.0)
    data = data.assign_coords(longitude=source_lon).sortby("longitude")
    source_lon = data["longitude"].values
    if latitude.min() < source_lat.min() - 1e-6 or latitude.max() > source_lat.max() + 1e-6:
        raise ValueError(
            f"the boundary data's latitudes ({source_lat.min():g}…{source_lat.max():g}) do not cover the "
            f"box ({latitude.min():g}…{latitude.max():g}); give boundary data over a larger area"
        )
    inside = source_lon[(source_lon >= box_lon.min() - 1e-6) & (source_lon <= box_lon.max() + 1e-6)]
    spacing = np.median(np.diff(source_lon)) if source_lon.size > 1 else np.inf
    edges = np.r_[source_lon[source_lon < box_lon.min() - 1e-6][-1:], inside,
                  source_lon[source_lon > box_lon.max() + 1e-6][:1]]
    covered = (edges.size >= 1 and edges.min() <= box_lon.min() + 1e-6 and edges.max() >= box_lon.max() - 1e-6
               and (edges.size == 1 or np.diff(edges).max() <= 1.5 * spacing + 1e-6))
    if not covered:
        raise ValueError(
            f"the boundary data's longitudes do not cover the box ({longitude[0]:g}…{longitude[-1]:g}) "
            "without a gap; give boundary data over a larger area"
        )
    same_lon = inside.size == box_lon.size and np.allclose(inside, box_lon, atol=1e-6)
    same_lat = np.isin(np.round(latitude, 6), np.round(source_lat, 6)).all()
    data = data.sel(longitude=inside) if same_lon else data.interp(longitude=box_lon, method="linear")
    data = data.sel(latitude=latitude, method="nearest") if same_lat else data.interp(latitude=latitude,
                                                                                      method="linear")
    return data.assign_coords(latitude=latitude, longitude=longitude)
