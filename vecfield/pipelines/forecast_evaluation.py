"""Forecast, then score against persistence and climatology: what pipelines/rollout.py,
pipelines/evaluate.py and pipelines/quickstart.py run.

Initializations are the times of a split, one every ``rollout.init_every_hours``, whose predecessor
and whose whole forecast (``steps`` leads) lie in the dataset. The climatology (day of year × hour,
``vecfield.evaluate.compute_climatology``) comes from the ``train`` split only. Outputs in
``rollout.output``: ``forecast.zarr``, ``scorecard.md``, ``rmse_vs_lead.png``, ``acc_vs_lead.png``,
``maps_<variable><level>.png`` and ``scores.json`` (RMSE per system, variable, level, lead).

Ensembles (a ``realization`` dim, ``rollout.members`` > 1 of a generative forecaster): the RMSE
scorecard and plots score the ensemble mean, and ``crps_scorecard.md``, ``crps_vs_lead.png`` and
``spread_skill.png`` add the probabilistic scores (``vecfield.evaluate.probabilistic``): the fair
CRPS against the baselines' MAE (the CRPS of a single-valued forecast), and the spread–skill ratio
with the finite-ensemble correction. ``scores.json`` then also holds ``ensemble`` (members, and per
channel and lead: crps, crps_spread, spread_skill_ratio, ensemble_mean_rmse, and the baselines' mae).
"""

import contextlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from vecfield import evaluate as ev
from vecfield.config.forecast import ForecastConfig
from vecfield.data.streaming import split_range
from vecfield.evaluate.plots import plot_maps, plot_scores_vs_lead, plot_spread_skill_vs_lead
from vecfield.evaluate.scorecard import write_scorecard
from vecfield.forecast.ensemble import ENSEMBLE_DIM
from vecfield.forecast.forecaster import Forecaster
from vecfield.forecast.generative import GenerativeOneStepForecaster

MODEL = "vecfield"


def initialization_times(truth: xr.Dataset, config: ForecastConfig) -> np.ndarray:
    """The initializations of ``config.rollout`` within its split of ``truth`` (see the module docstring)."""
    rollout, step = config.rollout, np.timedelta64(config.dataset.time.step_hours, "h")
    start, end = split_range(truth, rollout.split)
    times = truth["time"].values.astype("datetime64[ns]")
    first, last = start + step, end - rollout.steps * step
    candidates = np.arange(
        first, last + np.timedelta64(1, "ns"), np.timedelta64(rollout.init_every_hours, "h")
    )
    inits = candidates[np.isin(candidates, times) & np.isin(candidates - step, times)]
    if rollout.max_inits is not None:
        inits = inits[: rollout.max_inits]
    if inits.size == 0:
        raise ValueError(
            f"no initialization fits a {rollout.steps}-step forecast in the split "
            f"{rollout.split!r} [{start}, {end}]; use fewer rollout.steps or a longer split"
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
            raise ValueError("rollout.sampling_steps, sampling_churn and sampling_churn_noise choose a "
                             "generative sampler; this checkpoint is deterministic: set them to null")
        sampler = forecaster.module.sampling(*chosen)
    truth = xr.open_zarr(config.dataset.output)
    inits = initialization_times(truth, config)
    output = output or Path(config.rollout.output) / "forecast.zarr"
    output.parent.mkdir(parents=True, exist_ok=True)
    step = np.timedelta64(config.dataset.time.step_hours, "h")
    needed = np.union1d(inits, inits - step)
    initial = truth[list(forecaster.spec.state_layout.variables)].sel(time=needed).load()
    with sampler:
        return forecaster.rollout_to_zarr(
            initial, rollout.steps, output, init_times=list(inits), batch_size=rollout.batch_size,
            members=rollout.members, member_chunk=rollout.member_chunk, seed=rollout.seed,
        )


def evaluate_forecast(forecast_path: Path, config: ForecastConfig) -> dict[str, Path]:
    """Score the forecast at ``forecast_path`` with persistence and climatology; write the scorecard,
    plots and scores.json into ``rollout.output``. Returns name → written path."""
    output = Path(config.rollout.output)
    output.mkdir(parents=True, exist_ok=True)
    forecast = xr.open_zarr(forecast_path).load()
    truth_all = xr.open_zarr(config.dataset.output)
    truth = truth_all[list(forecast.data_vars)].load()
    train_start, train_end = split_range(truth_all, "train")
    climatology = ev.compute_climatology(truth.sel(time=slice(train_start, train_end)))
    inits, leads = forecast["time"].values, forecast["prediction_timedelta"].values
    ensemble = forecast if ENSEMBLE_DIM in forecast.dims else None
    if ensemble is not None:
        forecast = ensemble.mean(ENSEMBLE_DIM)
    systems = {
        MODEL: forecast,
        "persistence": ev.persistence_forecast(truth, inits, leads),
        "climatology": ev.climatology_forecast(climatology, inits, leads),
    }
    rmse = {name: ev.rmse(system, truth).compute() for name, system in systems.items()}
    acc = {name: ev.acc(systems[name], truth, climatology).compute() for name in (MODEL, "persistence")}
    written = {
        "scorecard": write_scorecard(output / "scorecard.md", rmse, model=MODEL),
        "rmse_plot": plot_scores_vs_lead(rmse, output / "rmse_vs_lead.png"),
        "acc_plot": plot_scores_vs_lead(acc, output / "acc_vs_lead.png", metric="ACC"),
    }
    map_leads = [np.timedelta64(h, "h").astype("timedelta64[ns]") for h in config.rollout.map_leads_hours]
    map_leads = [lead for lead in map_leads if lead in leads]
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
                )
    scores = {name: _plain(dataset) for name, dataset in rmse.items()}
    record = {"metric": "rmse", "lead_hours": (leads / np.timedelta64(1, "h")).tolist(), "scores": scores}
    if ensemble is not None:
        record["ensemble"], ensemble_files = _evaluate_ensemble(ensemble, truth, systems, output)
        written.update(ensemble_files)
    path = output / "scores.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=1))
    temporary.replace(path)
    written["scores"] = path
    return written


def _evaluate_ensemble(
    ensemble: xr.Dataset, truth: xr.Dataset, systems: dict[str, xr.Dataset], output: Path
) -> tuple[dict, dict[str, Path]]:
    """Probabilistic scores of ``ensemble`` (with ``realization``): the CRPS scorecard and plots, and
    the plain record for scores.json (see the module docstring)."""
    scores = {name: value.compute() for name, value in ev.probabilistic_scores(ensemble, truth).items()}
    mae = {name: ev.mae(system, truth).compute() for name, system in systems.items() if name != MODEL}
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


def _plain(scores: xr.Dataset) -> dict[str, list[float]]:
    """variable[level] → RMSE per lead."""
    out = {}
    for name, var in scores.data_vars.items():
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
