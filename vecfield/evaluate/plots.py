"""Evaluation figures, drawn on ``matplotlib.figure.Figure`` (Agg, no pyplot state) and saved atomically.

Fixed margins rather than a layout engine: constrained layout made each map figure ~3× slower.

- :func:`plot_scores_vs_lead`: a score against lead, one panel per (variable, level), one line per
  system (model and baselines); used for RMSE, CRPS, ACC…;
- :func:`plot_spread_skill_vs_lead`: the spread–skill ratio against lead with the ideal line at 1;
- :func:`plot_maps`: truth, forecast and error maps at chosen leads for one init time.
"""

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from vecfield.evaluate.align import ENSEMBLE_DIM, INIT_DIM, LEAD_DIM, align_truth
from vecfield.evaluate.io import save_figure_atomic
from vecfield.evaluate.scorecard import format_lead


def _lead_hours(dataset: xr.Dataset | xr.DataArray) -> np.ndarray:
    return dataset[LEAD_DIM].values / np.timedelta64(1, "h")


def _panels(scores: Mapping[str, xr.Dataset]) -> list[tuple[str, object]]:
    """(variable, level or None) of every panel, in the order of the first system's variables."""
    panels: list[tuple[str, object]] = []
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
) -> Path:
    """Plot each system's score against lead (hours): scores maps system → Dataset (lead, [level]).

    One panel per (variable, level); reference_line draws a horizontal line (e.g. 1 for ratios).
    Writes ``path`` (format from its suffix) atomically and returns it.
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
        left=0.08, right=0.98, bottom=0.6 / height, top=1 - 0.35 / height, wspace=0.35, hspace=0.5
    )
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (variable, level) in zip(axes, panels, strict=False):
        for system, dataset in scores.items():
            if variable not in dataset.data_vars:
                continue
            field = dataset[variable]
            if level is not None:
                if "level" not in field.dims or level not in field["level"].values:
                    continue
                field = field.sel(level=level)
            ax.plot(_lead_hours(field), field.values, marker="o", markersize=3, label=system)
        if reference_line is not None:
            ax.axhline(reference_line, color="grey", linestyle="--", linewidth=1)
        ax.set_title(variable if level is None else f"{variable} {level:g}")
        ax.set_xlabel("lead (h)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return save_figure_atomic(figure, path)


def plot_spread_skill_vs_lead(ratios: Mapping[str, xr.Dataset], path: str | os.PathLike) -> Path:
    """Spread–skill ratio (from ``spread_skill_ratio``) against lead, with the calibrated value 1."""
    return plot_scores_vs_lead(ratios, path, metric="spread / skill", reference_line=1.0)


def plot_maps(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    variable: str,
    init_time: np.datetime64 | str,
    leads: Sequence[np.timedelta64],
    path: str | os.PathLike,
    level: float | None = None,
) -> Path:
    """Maps of truth, forecast and forecast − truth (columns) at each lead (rows) for one init time.

    forecast: deterministic, in forecast layout (take ``.mean('realization')`` or one member of an
    ensemble); truth: canonical layout, looked up at the valid time. Truth and forecast share a
    colour scale; the error uses a symmetric diverging one.
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
    selected = forecast[[variable]].sel({INIT_DIM: [init], LEAD_DIM: lead_times})
    selected, truth_at_valid = align_truth(selected, truth)
    if "level" in selected.dims:
        if level is None:
            raise ValueError(f"{variable!r} has levels {selected['level'].values.tolist()}; pass level=")
        selected, truth_at_valid = selected.sel(level=level), truth_at_valid.sel(level=level)
    predicted = selected[variable].isel({INIT_DIM: 0}).compute()
    observed = truth_at_valid[variable].isel({INIT_DIM: 0}).compute()
    error = predicted - observed
    low, high = float(min(predicted.min(), observed.min())), float(max(predicted.max(), observed.max()))
    error_limit = float(abs(error).max()) or 1.0
    lon, lat = predicted["longitude"].values, predicted["latitude"].values
    figure = Figure(figsize=(13, 2.8 * len(leads) + 0.8))
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.9, wspace=0.3, hspace=0.55)
    axes = figure.subplots(len(leads), 3, squeeze=False)
    title = variable if level is None else f"{variable} {level:g}"
    figure.suptitle(f"{title}, init {str(init)[:16]}")
    for row, lead in enumerate(predicted[LEAD_DIM].values):
        panels = [
            ("truth", observed.sel({LEAD_DIM: lead}), "viridis", low, high),
            ("forecast", predicted.sel({LEAD_DIM: lead}), "viridis", low, high),
            ("forecast − truth", error.sel({LEAD_DIM: lead}), "RdBu_r", -error_limit, error_limit),
        ]
        for col, (label, field, cmap, vmin, vmax) in enumerate(panels):
            ax = axes[row, col]
            mesh = ax.pcolormesh(
                lon,
                lat,
                field.transpose("latitude", "longitude").values,
                cmap=cmap,
                vmin=vmin,
                vmax=vmax,
                shading="auto",
            )
            ax.set_title(f"{label}, lead {format_lead(lead)}", fontsize="small")
            ax.set_xlabel("longitude")
            ax.set_ylabel("latitude")
            figure.colorbar(mesh, ax=ax, shrink=0.85)
    return save_figure_atomic(figure, path)
