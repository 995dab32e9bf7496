"""Markdown scorecards: one score per variable, level and lead for a model and its baselines.

Rows are (variable, level, system); columns are leads. The model's row gives its score; each
baseline's row gives the baseline's score followed by the ratio model / baseline in brackets, so
for errors (RMSE, MAE, CRPS) a ratio below 1 means the model beats that baseline.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vecfield.evaluate.align import LEAD_DIM
from vecfield.evaluate.io import write_text_atomic


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


def scorecard_markdown(
    scores: Mapping[str, xr.Dataset],
    model: str,
    metric: str = "RMSE",
    leads: Sequence[np.timedelta64] | None = None,
) -> str:
    """A markdown table of ``scores`` (system name → score Dataset with dims (lead, [level])).

    model: the key of the model's scores; the other keys are baselines. leads: the columns,
    default the model's leads. Missing entries print as '–'. Computes the (small) score arrays.
    """
    _check_scores(scores, model)
    scores = {name: dataset.compute() for name, dataset in scores.items()}
    lead_values = (
        scores[model][LEAD_DIM].values if leads is None else np.asarray(leads, dtype="timedelta64[ns]")
    )
    header = ["variable", "level", "system", *(format_lead(lead) for lead in lead_values)]
    lines = [
        f"{metric} by lead; baseline rows show (model / baseline): below 1 = model better for error scores.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(lead_values)) + "|",
    ]
    for variable, level in _rows(scores[model]):
        for system, dataset in scores.items():
            cells = []
            for lead in lead_values:
                value = _value(dataset, variable, level, lead)
                reference = _value(scores[model], variable, level, lead)
                if value is None or not np.isfinite(value):
                    cells.append("–")
                elif system == model or reference is None or not np.isfinite(reference) or value == 0:
                    cells.append(f"{value:.4g}")
                else:
                    cells.append(f"{value:.4g} ({reference / value:.2f})")
            level_text = "" if level is None else f"{level:g}"
            system_text = f"**{system}**" if system == model else system
            lines.append("| " + " | ".join([variable, level_text, system_text, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_scorecard(
    path: str | os.PathLike,
    scores: Mapping[str, xr.Dataset],
    model: str,
    metric: str = "RMSE",
    leads: Sequence[np.timedelta64] | None = None,
) -> Path:
    """Write :func:`scorecard_markdown` to ``path`` atomically and return the path."""
    return write_text_atomic(path, scorecard_markdown(scores, model, metric=metric, leads=leads))
