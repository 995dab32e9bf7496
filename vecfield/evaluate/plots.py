"""Evaluation figures, drawn on ``matplotlib.figure.Figure`` (Agg, no pyplot state) and saved atomically.

Fixed margins rather than a layout engine: constrained layout made each map figure ~3× slower.

- :func:`plot_scores_vs_lead`: a score against lead, one panel per (variable, level) titled like
  "500 hPa geopotential", one line per system (model and baselines), the score's units on the y
  axis, lead ticks every 24 h; used for RMSE, CRPS, ACC…;
- :func:`plot_acc_vs_lead`: ACC with the 0.6 line of a useful forecast and one y-range for all panels;
- :func:`plot_spread_skill_vs_lead`: the spread–skill ratio against lead with the ideal line at 1;
- :func:`plot_maps`: truth, forecast and error maps at chosen leads for one init time, with the
  initialization and valid times, °N/°E axes, units on every colour bar, and the coastline drawn
  as the 0.5 contour of a land–sea mask when one is given or the truth has ``land_sea_mask``.
  Geopotential and mean sea level pressure are drawn as labelled contours of the field over shading
  of its departure from the truth's zonal mean, so the pole-to-equator gradient does not hide the
  waves; other variables are shaded.

No map data are downloaded: the outline comes from the dataset's own mask.
"""

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from vecfield.data.catalogue import CATALOGUE, display_units, variable_units
from vecfield.evaluate.align import ENSEMBLE_DIM, INIT_DIM, LEAD_DIM, align_truth
from vecfield.evaluate.scorecard import format_lead, score_units
from vecfield.files import save_figure_atomic

ACC_USEFUL = 0.6  # the conventional ACC threshold of a useful (synoptically skilful) forecast
CONTOURED = ("geopotential", "mean_sea_level_pressure")  # drawn as contours over zonal anomalies
LAND_SEA_MASK = "land_sea_mask"


def field_title(variable: str, level: float | None = None) -> str:
    """A readable name: ("geopotential", 500) → "500 hPa geopotential", "2m_temperature" → "2 m
    temperature" (the catalogue's long name; other names as given)."""
    entry = CATALOGUE.get(variable)
    name = entry.long_name if entry is not None and entry.long_name else variable
    return name if level is None else f"{level:g} hPa {name}"


def _with_units(label: str, units: str | None) -> str:
    return label if units in (None, "", "1") else f"{label} ({units})"


def _degrees(axis: str) -> FuncFormatter:
    """Tick labels 30°N / 30°S / 0° for latitude (axis "lat"), 90°E / 90°W / 180° for longitude
    (0…360 or −180…180)."""

    def latitude(value: float, _: object) -> str:
        return "0°" if value == 0 else f"{abs(value):g}°{'N' if value > 0 else 'S'}"

    def longitude(value: float, _: object) -> str:
        wrapped = (value + 180.0) % 360.0 - 180.0
        if wrapped in (0.0, -180.0):
            return f"{abs(wrapped):g}°"
        return f"{abs(wrapped):g}°{'E' if wrapped > 0 else 'W'}"

    return FuncFormatter(latitude if axis == "lat" else longitude)


def _lead_ticks(ax: Axes, hours: np.ndarray) -> None:
    """Major ticks every 24 h (every 6 h for forecasts shorter than a day), minor ticks at 6 h."""
    span = float(np.nanmax(hours)) if hours.size else 0.0
    ax.xaxis.set_major_locator(MultipleLocator(24 if span > 24 else 6))
    ax.xaxis.set_minor_locator(MultipleLocator(6))
    ax.set_xlim(left=0)


def _lead_hours(dataset: xr.Dataset | xr.DataArray) -> np.ndarray:
    return dataset[LEAD_DIM].values / np.timedelta64(1, "h")


def _panels(scores: Mapping[str, xr.Dataset]) -> list[tuple[str, float | None]]:
    """(variable, level or None) of every panel, in the order of the first system's variables."""
    panels: list[tuple[str, float | None]] = []
    for dataset in scores.values():
        for name, variable in dataset.data_vars.items():
            levels = variable["level"].values.tolist() if "level" in variable.dims else [None]
            panels.extend((str(name), level) for level in levels if (str(name), level) not in panels)
    return panels


def plot_scores_vs_lead(
    scores: Mapping[str, xr.Dataset],
    path: str | os.PathLike,
    metric: str = "RMSE",
    reference_line: float | None = None,
    columns: int = 3,
    units: str | Mapping[str, str] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Plot each system's score against lead (hours): scores maps system → Dataset (lead, [level]).

    One panel per (variable, level), titled e.g. "500 hPa geopotential"; the y axis reads
    "<metric> (<units>)" with the units from ``units`` (one string, e.g. "1" for a dimensionless
    score, or one per variable), else each score's ``units`` attribute, else the catalogue's (the
    variable's units, right for RMSE, MAE and CRPS). reference_line draws a horizontal line (e.g. 1
    for ratios); ylim gives every panel the same y-range. Lead ticks every 24 h. Writes ``path``
    (format from its suffix) atomically and returns it.
    """
    if not scores:
        raise ValueError("scores is empty; pass {system name: score Dataset}")
    for name, dataset in scores.items():
        if LEAD_DIM not in dataset.dims:
            raise ValueError(
                f"scores[{name!r}] has no {LEAD_DIM!r} dim; pass per-lead scores such as rmse(...)"
            )
    scores = {name: dataset.compute() for name, dataset in scores.items()}  # evaluate each graph once
    panels = _panels(scores)
    columns = min(columns, len(panels))
    rows = math.ceil(len(panels) / columns)
    height = 3.2 * rows
    figure = Figure(figsize=(4.2 * columns, height))
    figure.subplots_adjust(
        left=0.09, right=0.98, bottom=0.6 / height, top=1 - 0.35 / height, wspace=0.4, hspace=0.5
    )
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (variable, level) in zip(axes, panels, strict=False):
        hours = np.zeros(0)
        for system, dataset in scores.items():
            if variable not in dataset.data_vars:
                continue
            field = dataset[variable]
            if level is not None:
                if "level" not in field.dims or level not in field["level"].values:
                    continue
                field = field.sel(level=level)
            hours = np.union1d(hours, _lead_hours(field))
            ax.plot(_lead_hours(field), field.values, marker="o", markersize=3, label=system)
        if reference_line is not None:
            ax.axhline(reference_line, color="grey", linestyle="--", linewidth=1)
        if ylim is not None:
            ax.set_ylim(*ylim)
        first = next(d for d in scores.values() if variable in d.data_vars)
        ax.set_title(field_title(variable, level))
        ax.set_xlabel("lead time (h)")
        ax.set_ylabel(_with_units(metric, score_units(first, variable, units)))
        _lead_ticks(ax, hours)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return save_figure_atomic(figure, path)


def plot_acc_vs_lead(acc: Mapping[str, xr.Dataset], path: str | os.PathLike, columns: int = 3) -> Path:
    """ACC (from ``acc``) against lead with the line at 0.6, the conventional limit of a useful
    forecast, and one y-range for every panel: from 0 (or the lowest ACC, to the tenth below) to 1."""
    lowest = min((float(d[v].min()) for d in acc.values() for v in d.data_vars), default=0.0)
    bottom = min(0.0, math.floor(lowest * 10) / 10) if np.isfinite(lowest) else 0.0
    return plot_scores_vs_lead(acc, path, metric="ACC", reference_line=ACC_USEFUL, columns=columns,
                               units="1", ylim=(bottom, 1.0))


def plot_spread_skill_vs_lead(ratios: Mapping[str, xr.Dataset], path: str | os.PathLike) -> Path:
    """Spread–skill ratio (from ``spread_skill_ratio``) against lead, with the calibrated value 1."""
    return plot_scores_vs_lead(ratios, path, metric="spread / skill", reference_line=1.0, units="1")


def _clock(time: np.datetime64) -> str:
    return pd.Timestamp(time).strftime("%Y-%m-%d %H:%M UTC")


def _outline(ax: Axes, mask: xr.DataArray | None) -> None:
    """The coast: the 0.5 contour of a land–sea mask (land fraction) on its own grid."""
    if mask is None:
        return
    mask = mask.transpose("latitude", "longitude")
    ax.contour(mask["longitude"].values, mask["latitude"].values, mask.values.astype(np.float64),
               levels=[0.5], colors="black", linewidths=0.7)


def _land_sea_mask(truth: xr.Dataset, land_sea_mask: xr.DataArray | None) -> xr.DataArray | None:
    mask = land_sea_mask if land_sea_mask is not None else truth.get(LAND_SEA_MASK)
    if mask is None:
        return None
    if set(mask.dims) != {"latitude", "longitude"}:
        raise ValueError(
            f"the land-sea mask must have dims (latitude, longitude), got {tuple(mask.dims)}; "
            "pass the static field land_sea_mask of the dataset"
        )
    return mask.compute()


def plot_maps(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    variable: str,
    init_time: np.datetime64 | str,
    leads: Sequence[np.timedelta64],
    path: str | os.PathLike,
    level: float | None = None,
    land_sea_mask: xr.DataArray | None = None,
) -> Path:
    """Maps of truth, forecast and forecast − truth (columns) at each lead (rows) for one init time.

    forecast: deterministic, in forecast layout (take ``.mean('realization')`` or one member of an
    ensemble); truth: canonical layout, looked up at the valid time. Truth and forecast share a
    colour scale; the error uses a symmetric diverging one; every colour bar states the units.
    Geopotential and mean sea level pressure (``CONTOURED``): labelled contours of the field over
    shading of its departure from the truth's zonal mean at that valid time. land_sea_mask: (latitude,
    longitude) land fraction whose 0.5 contour is drawn as the coast; default ``truth["land_sea_mask"]``
    when the truth has it (a dataset built by vecfield with that static field).
    """
    if ENSEMBLE_DIM in forecast.dims:
        raise ValueError(
            f"plot_maps draws one field per lead; reduce the {ENSEMBLE_DIM!r} dim first, "
            "e.g. forecast.mean('realization') or forecast.isel(realization=0)"
        )
    if variable not in forecast.data_vars:
        raise ValueError(
            f"variable {variable!r} is not in the forecast; choose from {sorted(map(str, forecast))}"
        )
    init = np.datetime64(pd.Timestamp(init_time))
    if init not in forecast[INIT_DIM].values:
        raise ValueError(f"init time {init} is not in the forecast's 'time' (initialization times)")
    lead_times = np.asarray(leads, dtype="timedelta64[ns]")
    absent = [format_lead(lead) for lead in lead_times if lead not in forecast[LEAD_DIM].values]
    if absent:
        available = [format_lead(lead) for lead in forecast[LEAD_DIM].values]
        raise ValueError(f"leads {absent} are not in the forecast; it has {available}")
    mask = _land_sea_mask(truth, land_sea_mask)
    selected = forecast[[variable]].sel({INIT_DIM: [init], LEAD_DIM: lead_times})
    selected, truth_at_valid = align_truth(selected, truth[[variable]])
    if "level" in selected.dims:
        if level is None:
            raise ValueError(f"{variable!r} has levels {selected['level'].values.tolist()}; pass level=")
        selected, truth_at_valid = selected.sel(level=level), truth_at_valid.sel(level=level)
    predicted = selected[variable].isel({INIT_DIM: 0}).compute()
    observed = truth_at_valid[variable].isel({INIT_DIM: 0}).compute()
    units = variable_units(variable, dict(forecast[variable].attrs))
    shown_units = display_units(units) if units is not None else None
    error = predicted - observed
    contoured = variable in CONTOURED
    if contoured:  # shade the departure from the truth's zonal mean; contour the field itself
        zonal = observed.mean("longitude")
        shaded_truth, shaded_forecast = observed - zonal, predicted - zonal
        limit = float(max(abs(shaded_truth).max(), abs(shaded_forecast).max())) or 1.0
        low, high, cmap = -limit, limit, "RdBu_r"
        field_label = _with_units("departure from the zonal mean", shown_units)
        contour_levels = MaxNLocator(nbins=12).tick_values(
            float(min(predicted.min(), observed.min())), float(max(predicted.max(), observed.max()))
        )
    else:
        shaded_truth, shaded_forecast = observed, predicted
        low = float(min(predicted.min(), observed.min()))
        high = float(max(predicted.max(), observed.max()))
        cmap, field_label, contour_levels = "viridis", _with_units(field_title(variable), shown_units), None
        if low < 0 < high:  # a signed field (a wind component): diverging colours centred on zero
            high = max(-low, high)
            low, cmap = -high, "RdBu_r"
    error_limit = float(abs(error).max()) or 1.0
    lon, lat = predicted["longitude"].values, predicted["latitude"].values
    figure = Figure(figsize=(15, 2.9 * len(leads) + 1.0))
    figure.subplots_adjust(left=0.06, right=0.97, bottom=0.07, top=1 - 0.75 / (2.9 * len(leads) + 1.0),
                           wspace=0.28, hspace=0.6)
    axes = figure.subplots(len(leads), 3, squeeze=False)
    figure.suptitle(f"{field_title(variable, level)}, initialized {_clock(init)}"
                    + (f"; contours every {contour_levels[1] - contour_levels[0]:g} {shown_units}"
                       if contour_levels is not None and len(contour_levels) > 1 else ""))
    for row, lead in enumerate(predicted[LEAD_DIM].values):
        valid = f"valid {_clock(init + lead)} (+{format_lead(lead).replace(' ', '')})"
        panels = [
            ("truth", shaded_truth.sel({LEAD_DIM: lead}), observed.sel({LEAD_DIM: lead}), cmap, low, high,
             field_label),
            ("forecast", shaded_forecast.sel({LEAD_DIM: lead}), predicted.sel({LEAD_DIM: lead}), cmap, low,
             high, field_label),
            ("forecast − truth", error.sel({LEAD_DIM: lead}), None, "RdBu_r", -error_limit, error_limit,
             _with_units("forecast − truth", shown_units)),
        ]
        for col, (label, shaded, full, colours, vmin, vmax, bar_label) in enumerate(panels):
            ax = axes[row, col]
            mesh = ax.pcolormesh(lon, lat, shaded.transpose("latitude", "longitude").values, cmap=colours,
                                 vmin=vmin, vmax=vmax, shading="auto")
            if contour_levels is not None and full is not None:
                lines = ax.contour(lon, lat, full.transpose("latitude", "longitude").values,
                                   levels=contour_levels, colors="black", linewidths=0.6)
                ax.clabel(lines, fontsize=6, fmt="%g")
            _outline(ax, mask)
            ax.set_title(f"{label}, {valid}", fontsize="small")
            ax.set_xlabel("longitude")
            ax.set_ylabel("latitude")
            ax.xaxis.set_major_formatter(_degrees("lon"))
            ax.yaxis.set_major_formatter(_degrees("lat"))
            ax.xaxis.set_major_locator(MultipleLocator(90))
            ax.yaxis.set_major_locator(MultipleLocator(30))
            figure.colorbar(mesh, ax=ax, shrink=0.85).set_label(bar_label, fontsize="small")
    return save_figure_atomic(figure, path)
