"""Forecast, then score against simple baselines: what pipelines/rollout.py,
pipelines/evaluate.py and pipelines/quickstart.py run.

Initializations are the times of a split, one every ``rollout.init_every_hours``, whose
predecessor and whose whole forecast (``steps`` leads) lie in the split (``rollout.inits:
complete``), or every such time of the split (``rollout.inits: all``): leads past the split are
then scored only where the dataset has their valid time (``missing="drop"``, per lead). Either way
the predecessor, the initialization and every lead lie in one run of a dataset with a
``trajectory`` coordinate. The scorecard and ``scores.json`` state how many initializations each
lead was scored over. An interrupted forecast store (fewer ``completed_leads`` than leads) is
refused, or, with ``completed_only``, scored on its finished leads with a note saying so. The
baselines are persistence, the climatology (day of year × hour,
``vecfield.evaluate.compute_climatology``), the per-hour-of-day climatology and damped anomaly
persistence (``vecfield.evaluate.simple_baselines``), all fitted on the ``train`` split only, and
``best_baseline``, the lowest RMSE of those at each lead; the scorecard names which one that is
per lead and gives the model's ratio to it. Outputs in ``rollout.output``: ``forecast.zarr``,
``scorecard.md`` (the evaluation period and number of initializations, then RMSE, ACC and bias
tables with the units of every row), ``rmse_vs_lead.png``, ``acc_vs_lead.png``,
``maps_<variable><level>.png`` and ``scores.json``, which holds the same: ``evaluation`` (first
and last initialization, their number, the last valid time, the climatology's period), ``units``
per channel (of RMSE and bias; ACC is dimensionless), and per system, channel and lead ``scores``
(RMSE, with ``best_baseline``), ``acc`` (model and persistence) and ``bias`` (forecast − truth),
``best_baseline_choice`` (the baseline picked per channel and lead) and
``damped_persistence_coefficients`` (a_L per channel and lead).

Ensembles (a ``realization`` dim, ``rollout.members`` > 1 of a generative forecaster): the RMSE
scorecard and plots score the ensemble mean, and ``crps_scorecard.md``, ``crps_vs_lead.png`` and
``spread_skill.png`` add the probabilistic scores (``vecfield.evaluate.probabilistic``): the fair
CRPS against the baselines' MAE (the CRPS of a single-valued forecast), and the spread–skill ratio
with the finite-ensemble correction. ``scores.json`` then also holds ``ensemble`` (members, and per
channel and lead: crps, crps_spread, spread_skill_ratio, ensemble_mean_rmse, and the baselines' mae).
"""

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import xarray as xr

from vecfield import evaluate as ev
from vecfield.data.build import open_built_dataset
from vecfield.data.catalogue import variable_units
from vecfield.data.checks import check_physical_units
from vecfield.data.sources import open_dataset
from vecfield.data.streaming import split_range
from vecfield.data.trajectories import same_run
from vecfield.evaluate.align import ENSEMBLE_DIM, LEAD_DIM, MissingPolicy
from vecfield.evaluate.plots import (
    plot_acc_vs_lead,
    plot_maps,
    plot_scores_vs_lead,
    plot_spread_skill_vs_lead,
)
from vecfield.evaluate.scorecard import evaluation_period, format_lead, scorecard_markdown, write_scorecard
from vecfield.files import write_text_atomic
from vecfield.forecast.config import ForecastConfig
from vecfield.forecast.forecaster import Forecaster
from vecfield.forecast.generative import GenerativeOneStepForecaster
from vecfield.forecast.store import COMPLETED

logger = logging.getLogger(__name__)
Gridded = TypeVar("Gridded", xr.Dataset, xr.DataArray)
MODEL = "vecfield"
BEST = "best_baseline"
BASELINES_EXPLAINED = (
    "Baselines: persistence (the initial state); climatology (day of year × hour, train split); "
    "hourly_climatology (by hour of day alone, train split); damped_persistence (hourly_climatology at "
    "the valid time + a_L × the initial anomaly, a_L fitted per lead on the train split); best_baseline "
    "(the lowest RMSE of those four at each lead)."
)


def initialization_times(truth: xr.Dataset, config: ForecastConfig) -> np.ndarray:
    """The initializations of ``config.rollout`` within its split of ``truth`` (see the module docstring)."""
    rollout, step = config.rollout, np.timedelta64(config.dataset.time.step_hours, "h")
    start, end = split_range(truth, rollout.split)
    times = truth["time"].values.astype("datetime64[ns]")
    first = start + step
    last = end - rollout.steps * step if rollout.inits == "complete" else end
    candidates = np.arange(
        first, last + np.timedelta64(1, "ns"), np.timedelta64(rollout.init_every_hours, "h")
    )
    inits = candidates[np.isin(candidates, times) & np.isin(candidates - step, times)]
    inits = inits[same_run(truth, inits - step, inits + rollout.steps * step)]
    if rollout.max_inits is not None:
        inits = inits[: rollout.max_inits]
    if inits.size == 0:
        raise ValueError(
            f"no initialization fits a {rollout.steps}-step forecast in the split "
            f"{rollout.split!r} [{start}, {end}]; use fewer rollout.steps or a longer split, or "
            "rollout.inits=all (every initialization; leads past the data are scored where truth exists)"
        )
    return inits


def forecast_split(forecaster: Forecaster, config: ForecastConfig, output: Path | None = None) -> Path:
    """Roll out from every initialization of the split into ``<rollout.output>/forecast.zarr``
    (streamed lead by lead; resumes after an interruption). Returns the store's path."""
    rollout = config.rollout
    sampler: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    chosen = (rollout.sampling_steps, rollout.sampling_churn, rollout.sampling_churn_noise)
    if any(value is not None for value in chosen):
        if not isinstance(forecaster.module, GenerativeOneStepForecaster):
            method = forecaster.spec.model.method
            raise ValueError("rollout.sampling_steps, sampling_churn and sampling_churn_noise choose a "
                             f"generative sampler; this checkpoint's method is {method!r}, which has none "
                             "(one network call per step and member): set them to null")
        sampler = forecaster.module.sampling(*chosen)
    truth = open_built_dataset(config.dataset.output)
    dataset_step = int(truth.attrs.get("time_step_hours", config.dataset.time.step_hours))
    if dataset_step != forecaster.spec.step_hours:
        raise ValueError(
            f"the time step does not match: the checkpoint forecasts {forecaster.spec.step_hours}-hour "
            f"steps but the dataset {config.dataset.output} holds states {dataset_step} hours apart; "
            f"roll it out on a dataset built with dataset.time.step_hours={forecaster.spec.step_hours}, "
            f"or train a {dataset_step}-hour forecaster on this one"
        )
    inits = initialization_times(truth, config)
    output = output or Path(config.rollout.output) / "forecast.zarr"
    output.parent.mkdir(parents=True, exist_ok=True)
    step = np.timedelta64(config.dataset.time.step_hours, "h")
    needed = np.union1d(inits, inits - step)
    initial = truth[list(forecaster.spec.state_layout.variables)].sel(time=needed).load()
    boundary = open_boundary(rollout.boundary, truth)
    with sampler:
        return forecaster.rollout_to_zarr(
            initial, rollout.steps, output, init_times=list(inits), batch_size=rollout.batch_size,
            members=rollout.members, member_chunk=rollout.member_chunk, seed=rollout.seed, boundary=boundary,
        )


def open_boundary(boundary: str | None, truth: xr.Dataset) -> xr.Dataset | None:
    """The boundary data named by ``rollout.boundary``: None for none, ``truth`` (the dataset itself),
    a WeatherBench2 forecast-layout zarr (``prediction_timedelta``; e.g. a coarser global forecast of
    pipelines/rollout.py), or any source ``vecfield.data.sources.open_dataset`` reads (canonical)."""
    if boundary is None:
        return None
    if boundary == "truth":
        return truth
    path = Path(boundary)
    if not path.exists() and "://" not in boundary:
        raise ValueError(f"rollout.boundary: {boundary} does not exist; give 'truth', the path of a dataset "
                         "with the state variables over the box, or null (no boundary data)")
    if path.suffix == ".zarr" and path.is_dir():
        raw = xr.open_zarr(path)
        if LEAD_DIM in raw.dims:
            return raw
    return open_dataset(boundary)


def interior(dataset: Gridded, rim: int) -> Gridded:
    """``dataset`` without the outer ``rim`` rows and columns of its box (the boundary data)."""
    if rim == 0:
        return dataset
    return dataset.isel(latitude=slice(rim, dataset.sizes["latitude"] - rim),
                        longitude=slice(rim, dataset.sizes["longitude"] - rim))


def open_forecast_store(path: Path, completed_only: bool = False) -> tuple[xr.Dataset, list[str]]:
    """The forecast store at ``path`` (lazy) and notes for the scorecard.

    A store of ``pipelines/rollout.py`` whose rollout was interrupted has fewer ``completed_leads``
    than leads; its later leads hold no forecast. It is refused (ValueError saying how to finish it),
    or with ``completed_only`` cut to its finished leads, with a note saying so.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no forecast at {path}; make one with pipelines/rollout.py")
    try:
        forecast = xr.open_zarr(path)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path} is not a readable forecast store ({error}); make it again") from None
    total = forecast.sizes.get(LEAD_DIM, 0)
    completed = int(forecast.attrs.get(COMPLETED, total))
    if completed >= total:
        return forecast, []
    if completed == 0:
        raise ValueError(f"{path} holds no finished lead ({COMPLETED}=0 of {total}): its rollout stopped "
                         "before the first lead; run pipelines/rollout.py again with the same config")
    if not completed_only:
        raise ValueError(
            f"{path} is incomplete: {completed} of {total} leads were written before its rollout stopped. "
            "Finish it by running pipelines/rollout.py again with the same config (it resumes), or score "
            f"the {completed} finished leads only (pipelines/evaluate.py --completed-leads-only)"
        )
    note = (f"Incomplete forecast store: only the first {completed} of {total} leads were completed "
            "(the rollout was interrupted); the later leads are not scored.")
    return forecast.isel({LEAD_DIM: slice(0, completed)}), [note]


def initializations_per_lead(truth: xr.Dataset, inits: np.ndarray, leads: np.ndarray) -> np.ndarray:
    """(leads,) number of ``inits`` whose valid time init + lead is a time of ``truth``."""
    times = truth["time"].values.astype("datetime64[ns]")
    valid = inits.astype("datetime64[ns]")[:, None] + leads.astype("timedelta64[ns]")[None, :]
    return np.isin(valid, times).sum(axis=0)


def _scored(metric: Callable[..., Any], forecast: xr.Dataset, truth: xr.Dataset, *extra: Any,
            missing: MissingPolicy) -> Any:
    """``metric(forecast, truth, *extra)``; with missing="drop" each lead is scored over the
    initializations whose valid time the truth has (the API's missing="drop" applied lead by lead),
    and the per-lead results (Datasets, or dicts of them) are concatenated along the lead."""
    if missing == "raise":
        return metric(forecast, truth, *extra)
    parts = [metric(forecast.isel({LEAD_DIM: [j]}), truth, *extra, missing="drop")
             for j in range(forecast.sizes[LEAD_DIM])]
    if isinstance(parts[0], dict):
        return {key: xr.concat([part[key] for part in parts], LEAD_DIM) for key in parts[0]}
    return xr.concat(parts, LEAD_DIM)


def evaluate_forecast(
    forecast_path: Path, config: ForecastConfig, missing: MissingPolicy | None = None,
    completed_only: bool = False,
) -> dict[str, Path]:
    """Score the forecast at ``forecast_path`` against the baselines; write the scorecard,
    plots and scores.json into ``rollout.output``. Returns name → written path.

    missing: "raise" (an error when the truth lacks a valid time the forecasts reach) or "drop"
    (each lead scored over the initializations the truth covers); default "drop" when
    ``rollout.inits`` is "all", else "raise". completed_only: score an interrupted store's finished
    leads instead of refusing it (see :func:`open_forecast_store`)."""
    if missing is None:
        missing = "drop" if config.rollout.inits == "all" else "raise"
    output = Path(config.rollout.output)
    output.mkdir(parents=True, exist_ok=True)
    forecast, notes = open_forecast_store(forecast_path, completed_only)
    truth_all = open_built_dataset(config.dataset.output)
    absent = [str(name) for name in forecast.data_vars if name not in truth_all.data_vars]
    if absent:
        raise ValueError(
            f"the dataset {config.dataset.output} lacks the forecast variable(s) {absent} (it has "
            f"{sorted(map(str, truth_all.data_vars))}); evaluate against the dataset the forecaster was "
            "trained on (dataset.output of its config)"
        )
    rim = int(forecast.attrs.get("boundary_rim", 0))
    if rim:
        notes.append(f"Boundary forcing: the outer {rim} grid cell(s) of the box hold the boundary data, so "
                     "every score is over the interior only.")
    forecast = interior(forecast, rim).load()
    truth = interior(truth_all[list(forecast.data_vars)], rim).load()
    check_physical_units(truth, f"the dataset {config.dataset.output}")
    check_physical_units(forecast, f"the forecast {forecast_path}")
    train_start, train_end = split_range(truth_all, "train")
    training = truth.sel(time=slice(train_start, train_end))
    climatology = ev.compute_climatology(training)
    inits, leads = forecast["time"].values, forecast[LEAD_DIM].values
    counts = initializations_per_lead(truth, inits, leads)
    if missing == "raise" and (counts < inits.size).any():
        first = int(np.argmax(counts < inits.size))
        raise ValueError(
            f"the dataset {config.dataset.output} ends before some forecasts do: at lead "
            f"{format_lead(leads[first])} only {counts[first]} of {inits.size} initializations have "
            "their valid time in it. Score each lead over the initializations it has with "
            "pipelines/evaluate.py --missing drop, or roll out fewer rollout.steps"
        )
    if (counts == 0).any():
        notes.append(f"Leads from {format_lead(leads[counts == 0][0])} run past the data for every "
                     "initialization and are not scored.")
        forecast, leads, counts = forecast.isel({LEAD_DIM: counts > 0}), leads[counts > 0], counts[counts > 0]
    notes.append(f"{inits.size} initializations ({str(inits[0])[:13]} … {str(inits[-1])[:13]}); "
                 "initializations per lead: "
                 + ", ".join(f"{format_lead(lead)}: {n}" for lead, n in zip(leads, counts, strict=True)))
    ensemble = forecast if ENSEMBLE_DIM in forecast.dims else None
    if ensemble is not None:
        forecast = ensemble.mean(ENSEMBLE_DIM)
    simple, coefficients = ev.simple_baselines(truth, training, inits, leads)
    systems = {
        MODEL: forecast,
        "persistence": simple["persistence"],
        "climatology": ev.climatology_forecast(climatology, inits, leads),
        "hourly_climatology": simple["hourly_climatology"],
        "damped_persistence": simple["damped_persistence"],
    }
    rmse = {name: _scored(ev.rmse, system, truth, missing=missing).compute()
            for name, system in systems.items()}
    best = ev.best_baseline({name: scores for name, scores in rmse.items() if name != MODEL})
    rmse[BEST] = best[list(rmse[MODEL].data_vars)]
    acc = {name: _scored(ev.acc, systems[name], truth, climatology, missing=missing).compute()
           for name in (MODEL, "persistence")}
    bias = {name: _scored(ev.bias, system, truth, missing=missing).compute()
            for name, system in systems.items()}
    for note in notes:
        logger.info("note: %s", note)
    period = evaluation_period(inits, leads)
    climatology_period = [str(np.datetime_as_string(np.asarray(time, dtype="datetime64[ns]"), "m"))
                          for time in (train_start, train_end)]
    scorecard = "\n".join([
        f"# Scorecard: {MODEL} against simple baselines",
        "",
        *(f"**Note:** {note}\n" for note in notes),
        period,
        f"Truth: {config.dataset.output}; climatology: the train split {' to '.join(climatology_period)}.",
        "",
        BASELINES_EXPLAINED,
        "",
        *best_baseline_summary(best, leads),
        "",
        scorecard_markdown(rmse, MODEL, metric="RMSE"),
        scorecard_markdown(acc, MODEL, metric="ACC (anomaly correlation; above 0.6 = useful)", units="1",
                           ratios=False),
        scorecard_markdown(bias, MODEL, metric="Bias (mean of forecast − truth)", ratios=False),
    ])
    written = {
        "scorecard": write_text_atomic(output / "scorecard.md", scorecard),
        "rmse_plot": plot_scores_vs_lead(rmse, output / "rmse_vs_lead.png"),
        "acc_plot": plot_acc_vs_lead(acc, output / "acc_vs_lead.png"),
    }
    map_leads = [np.timedelta64(h, "h").astype("timedelta64[ns]") for h in config.rollout.map_leads_hours]
    truth_times = truth["time"].values
    map_leads = [lead for lead in map_leads if lead in leads and inits[0] + lead in truth_times]
    if map_leads:
        for name in forecast.data_vars:
            levels = forecast["level"].values.tolist() if "level" in forecast[name].dims else [None]
            for level in levels:
                suffix = "" if level is None else str(level)
                written[f"maps_{name}{suffix}"] = plot_maps(
                    forecast,
                    truth,
                    str(name),
                    inits[0],
                    map_leads,
                    output / f"maps_{name}{suffix}.png",
                    level=level,
                    land_sea_mask=interior(truth_all["land_sea_mask"], rim) if "land_sea_mask" in truth_all
                    else None,
                )
    record = {
        "metric": "rmse",
        "lead_hours": (leads / np.timedelta64(1, "h")).tolist(),
        "evaluation": {
            "summary": period,
            "first_init": str(np.datetime_as_string(inits.min(), "m")),
            "last_init": str(np.datetime_as_string(inits.max(), "m")),
            "initializations": int(inits.size),
            "initializations_per_lead": counts.tolist(),
            "last_valid_time": str(np.datetime_as_string(inits.max() + leads.max(), "m")),
            "climatology_period": climatology_period,
            "notes": notes,
        },
        "units": {channel: variable_units(name) for name, channel in _channels(forecast)},
        "scores": {name: _plain(dataset) for name, dataset in rmse.items()},
        "best_baseline_choice": _plain(best[[f"{name}_baseline" for name in rmse[MODEL].data_vars]],
                                       suffix="_baseline"),
        "damped_persistence_coefficients": _plain(coefficients),
        "acc": {name: _plain(dataset) for name, dataset in acc.items()},
        "bias": {name: _plain(dataset) for name, dataset in bias.items()},
    }
    if ensemble is not None:
        record["ensemble"], ensemble_files = _evaluate_ensemble(ensemble, truth, systems, output, missing)
        written.update(ensemble_files)
    written["scores"] = write_text_atomic(output / "scores.json", json.dumps(record, indent=1))
    return written


def best_baseline_summary(best: xr.Dataset, leads: np.ndarray) -> list[str]:
    """Markdown lines naming the best baseline of each variable (and level) over runs of leads, e.g.
    "- 2m_temperature: damped_persistence 1 h–9 h, hourly_climatology 10 h–72 h"."""
    lines = ["Best baseline (the row *best_baseline* below) by lead:"]
    for channel, names in _plain(best[[n for n in best.data_vars if str(n).endswith("_baseline")]],
                                 suffix="_baseline").items():
        runs: list[tuple[str, int, int]] = []  # (name, first lead index, last lead index)
        for index, name in enumerate(names):
            if runs and runs[-1][0] == name:
                runs[-1] = (name, runs[-1][1], index)
            else:
                runs.append((name, index, index))
        spans = [f"{name} {format_lead(leads[first])}"
                 + ("" if first == last else f"–{format_lead(leads[last])}") for name, first, last in runs]
        lines.append(f"- {channel}: " + ", ".join(spans))
    return lines


def _evaluate_ensemble(
    ensemble: xr.Dataset, truth: xr.Dataset, systems: dict[str, xr.Dataset], output: Path,
    missing: MissingPolicy,
) -> tuple[dict, dict[str, Path]]:
    """Probabilistic scores of ``ensemble`` (with ``realization``): the CRPS scorecard and plots, and
    the plain record for scores.json (see the module docstring)."""
    scores = _scored(ev.probabilistic_scores, ensemble, truth, missing=missing)
    scores = {name: value.compute() for name, value in scores.items()}
    mae = {name: _scored(ev.mae, system, truth, missing=missing).compute()
           for name, system in systems.items() if name != MODEL}
    crps = {MODEL: scores["crps"], **mae}
    written = {
        "crps_scorecard": write_scorecard(output / "crps_scorecard.md", crps, model=MODEL,
                                          metric="CRPS (baselines: MAE)"),
        "crps_plot": plot_scores_vs_lead(crps, output / "crps_vs_lead.png", metric="CRPS / MAE"),
    }
    record: dict[str, object] = {"members": int(ensemble.sizes[ENSEMBLE_DIM])}
    for name in ("crps", "crps_spread", "ensemble_mean_rmse", "spread_skill_ratio"):
        if name in scores:
            record[name] = _plain(scores[name])
    record["mae"] = {name: _plain(value) for name, value in mae.items()}
    if "spread_skill_ratio" in scores:
        written["spread_skill_plot"] = plot_spread_skill_vs_lead(
            {MODEL: scores["spread_skill_ratio"]}, output / "spread_skill.png"
        )
    return record, written


def _channels(dataset: xr.Dataset) -> list[tuple[str, str]]:
    """(variable, channel name ``<variable><level>``) of every variable and level of ``dataset``."""
    out: list[tuple[str, str]] = []
    for name, var in dataset.data_vars.items():
        levels = var["level"].values.tolist() if "level" in var.dims else [""]
        out.extend((str(name), f"{name}{level}") for level in levels)
    return out


def _plain(scores: xr.Dataset, suffix: str = "") -> dict[str, list]:
    """variable[level] → score per lead (``suffix`` is cut from the variable names)."""
    out = {}
    for long_name, var in scores.data_vars.items():
        name = str(long_name).removesuffix(suffix)
        if "level" in var.dims:
            for level in var["level"].values.tolist():
                out[f"{name}{level}"] = var.sel(level=level).values.tolist()
        else:
            out[str(name)] = var.values.tolist()
    return out


def skill_table(scores_path: Path, leads_hours: tuple[int, ...] = (24, 72, 120)) -> str:
    """A markdown table of model / persistence / climatology RMSE at chosen leads from scores.json."""
    data = json.loads(Path(scores_path).read_text())
    hours = data["lead_hours"]
    leads = [h for h in leads_hours if h in hours]
    header = "| variable | " + " | ".join(f"{h} h model / pers. / clim." for h in leads) + " |"
    lines = [header, "|---|" + "---|" * len(leads)]
    scores = data["scores"]
    for channel in scores[MODEL]:
        cells = []
        for h in leads:
            i = hours.index(h)
            cells.append(
                " / ".join(f"{scores[s][channel][i]:.3g}" for s in (MODEL, "persistence", "climatology"))
            )
        lines.append(f"| {channel} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
