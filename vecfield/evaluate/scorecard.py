"""Markdown scorecards: one score per variable, level and lead for a model and its baselines.

Rows are (variable, level, units, system); columns are leads. The model's row gives its score; for
error scores (RMSE, MAE, CRPS) each baseline's row gives the baseline's score followed by the ratio
model / baseline in brackets, so a ratio below 1 means the model beats that baseline. Scores such as
ACC and bias are tabulated without ratios (``ratios=False``). :func:`evaluation_period` states what
was scored: the initializations (first, last, how many) and the leads.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vecfield.data.catalogue import display_units, variable_units
from vecfield.evaluate.align import LEAD_DIM
from vecfield.files import write_text_atomic


def format_lead(lead: np.timedelta64) -> str:
    """A lead as hours, e.g. numpy 36 h → '36 h'."""
    return f"{pd.Timedelta(lead) / pd.Timedelta(hours=1):g} h"


def _check_scores(scores: Mapping[str, xr.Dataset], model: str) -> None:
    if model not in scores:
        raise ValueError(f"model {model!r} is not among the scored systems {list(scores)}")
    for name, dataset in scores.items():
        if not isinstance(dataset, xr.Dataset) or LEAD_DIM not in dataset.dims:
            raise ValueError(
                f"scores[{name!r}] must be a Dataset with a {LEAD_DIM!r} dim (e.g. the output of rmse), "
                f"got {type(dataset).__name__}"
            )
        extra = {str(dim) for dim in dataset.dims} - {LEAD_DIM, "level"}
        if extra:
            raise ValueError(
                f"scores[{name!r}] has dims {sorted(extra)} besides lead and level; reduce them first"
            )


def _rows(dataset: xr.Dataset) -> list[tuple[str, object]]:
    """(variable, level or None) for every row of a score dataset."""
    out: list[tuple[str, object]] = []
    for name, variable in dataset.data_vars.items():
        if "level" in variable.dims:
            out.extend((str(name), level.item()) for level in variable["level"])
        else:
            out.append((str(name), None))
    return out


def _value(dataset: xr.Dataset, variable: str, level: object, lead: np.timedelta64) -> float | None:
    if variable not in dataset.data_vars:
        return None
    field = dataset[variable]
    if level is not None:
        if "level" not in field.dims or level not in field["level"].values:
            return None
        field = field.sel(level=level)
    if lead not in field[LEAD_DIM].values:
        return None
    return float(field.sel({LEAD_DIM: lead}))


def evaluation_period(
    inits: Sequence[np.datetime64] | np.ndarray, leads: Sequence[np.timedelta64] | np.ndarray
) -> str:
    """One line saying what was scored, e.g. "Evaluation period: 3 initializations from 2020-01-11 06:00
    to 2020-01-13 06:00 UTC (every 24 h); leads 6 h to 24 h; valid times to 2020-01-14 06:00 UTC."."""
    times = np.sort(np.asarray(inits, dtype="datetime64[ns]"))
    lead_values = np.sort(np.asarray(leads, dtype="timedelta64[ns]"))
    if times.size == 0 or lead_values.size == 0:
        raise ValueError("evaluation_period needs at least one initialization and one lead")

    def clock(time: np.datetime64) -> str:
        return pd.Timestamp(time).strftime("%Y-%m-%d %H:%M")

    steps = np.unique(np.diff(times))
    spacing = f" (every {format_lead(steps[0])})" if steps.size == 1 else ""
    count = f"{times.size} initialization{'s' if times.size != 1 else ''}"
    return (
        f"Evaluation period: {count} from {clock(times[0])} to {clock(times[-1])} UTC{spacing}; "
        f"leads {format_lead(lead_values[0])} to {format_lead(lead_values[-1])}; "
        f"valid times to {clock(times[-1] + lead_values[-1])} UTC."
    )


def score_units(
    dataset: xr.Dataset, variable: str, units: str | Mapping[str, str] | None = None
) -> str | None:
    """The units of ``variable``'s score for people (``m² s⁻²``; "1" when dimensionless; None when
    unknown): ``units`` when given (one string for all variables or one per variable), else the score
    variable's ``units`` attribute, else the variable's catalogue units (right for RMSE, MAE, bias and
    CRPS, which have the variable's units)."""
    if isinstance(units, str):
        found: str | None = units
    elif units is not None and variable in units:
        found = units[variable]
    else:
        attrs = dict(dataset[variable].attrs) if variable in dataset.data_vars else {}
        found = variable_units(variable, attrs)
    if found is None:
        return None
    return display_units(found) or "1"


def scorecard_markdown(
    scores: Mapping[str, xr.Dataset],
    model: str,
    metric: str = "RMSE",
    leads: Sequence[np.timedelta64] | None = None,
    units: str | Mapping[str, str] | None = None,
    ratios: bool = True,
    notes: Sequence[str] = (),
) -> str:
    """A markdown table of ``scores`` (system name → score Dataset with dims (lead, [level])).

    model: the key of the model's scores; the other keys are baselines. leads: the columns,
    default the model's leads. units: the score's units, one string for every row (e.g. "1" for
    ACC) or one per variable; by default each variable's ``units`` attribute, else its catalogue
    units (right for RMSE, MAE, bias and CRPS, which have the variable's units); "?" when unknown.
    ratios: add (model / baseline) to the baseline rows (for error scores). notes: lines printed
    above the table (e.g. how many initializations each lead used, or that a forecast store was
    incomplete). Missing entries print as '–'. Computes the (small) score arrays.
    """
    _check_scores(scores, model)
    scores = {name: dataset.compute() for name, dataset in scores.items()}
    lead_values = (
        scores[model][LEAD_DIM].values if leads is None else np.asarray(leads, dtype="timedelta64[ns]")
    )
    header = ["variable", "level", "units", "system", *(format_lead(lead) for lead in lead_values)]
    explanation = (
        "; baseline rows show (model / baseline): below 1 = model better" if ratios else ""
    )
    lines = [
        *(f"**Note:** {note}\n" for note in notes),
        f"{metric} by lead{explanation}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 4 + ["---:"] * len(lead_values)) + "|",
    ]
    for variable, level in _rows(scores[model]):
        for system, dataset in scores.items():
            cells = []
            for lead in lead_values:
                value = _value(dataset, variable, level, lead)
                reference = _value(scores[model], variable, level, lead)
                if value is None or not np.isfinite(value):
                    cells.append("–")
                elif (not ratios or system == model or reference is None or not np.isfinite(reference)
                      or value == 0):
                    cells.append(f"{value:.4g}")
                else:
                    cells.append(f"{value:.4g} ({reference / value:.2f})")
            level_text = "" if level is None else f"{level:g}"
            system_text = f"**{system}**" if system == model else system
            unit_text = score_units(scores[model], variable, units) or "?"
            lines.append("| " + " | ".join([variable, level_text, unit_text, system_text, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_scorecard(path: str | os.PathLike, scores: Mapping[str, xr.Dataset], model: str,
                    metric: str = "RMSE", leads: Sequence[np.timedelta64] | None = None,
                    units: str | Mapping[str, str] | None = None, ratios: bool = True,
                    notes: Sequence[str] = ()) -> Path:
    """Write :func:`scorecard_markdown` to ``path`` atomically and return the path."""
    table = scorecard_markdown(scores, model, metric=metric, leads=leads, units=units, ratios=ratios,
                               notes=notes)
    return write_text_atomic(path, table)
