"""Ensembles against the deterministic forecaster on the held-out split (issues 7 and 23's must-shows).

For initializations of ``rollout.split`` (``rollout.init_every_hours`` apart, ``--inits`` of them)
it rolls out, ``rollout.steps`` leads each:
- the reference: the deterministic forecaster (``--deterministic``, e.g. the quickstart's best.pt);
- vecfield's ensemble: ``--members`` members of the generative forecaster (``--checkpoint``) with
  Heun on ``model.sampling_steps`` steps (``--sampling-steps``), with churn S_churn = ``--churn``
  and S_noise = ``--churn-noise`` (default the model's), timed (members per second of a whole rollout);
- the CRPS-trained ensemble (``--crps``, ``model.method: crps``), the same members and initializations,
  timed the same way (one network call per member and lead);
and reports per channel at 24 h … 120 h: the spread–skill ratio (finite-ensemble corrected), the
ensemble's fair CRPS against the deterministic MAE (the CRPS of a single-valued forecast), and the
ensemble-mean RMSE (and WeatherBench2's debiased ensemble-mean RMSE, the estimate for an infinite
ensemble) against the deterministic RMSE; for the CRPS ensemble also its CRPS against the
GenCast-like one's and the members-per-second ratio (issue 23's table). Then (unless ``--sweep
none``), on ``--sweep-inits`` initializations, the
same scores for each ``--sweep`` sampler, ``steps`` (the ODE), ``steps:S_churn`` (GenCast's
stochastic sampler) or ``steps:S_churn:S_noise`` (its noise inflated), i.e. quality against
cost; and the log-score of the verifying state (exact ODE likelihood, Hutchinson divergence) with
its time per state.

    PYTHONPATH=. python benchmarks/ensemble.py --config configs/generative_edm.yaml \
        --checkpoint runs/generative_edm/train/checkpoints/best.pt \
        --deterministic runs/quickstart/train/checkpoints/best.pt \
        [--crps runs/ensemble_crps/train/checkpoints/best.pt ...] [--members 8 --inits 12]
    PYTHONPATH=. python benchmarks/ensemble.py --quick        # untrained tiny models (CI smoke)

Prints tables and writes benchmarks/results/ensemble.json.
"""

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from vecfield import evaluate as ev
from vecfield.core.solvers import Churn
from vecfield.forecast import Forecaster
from vecfield.forecast.config import load_forecast_config
from vecfield.pipelines.forecast_evaluation import initialization_times

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LEADS_HOURS = (24, 48, 72, 96, 120)


def _quick_world() -> tuple[xr.Dataset, Forecaster, Forecaster, Forecaster, np.ndarray]:
    """Untrained tiny deterministic, EDM and CRPS forecasters on the synthetic 11.25° waves."""
    sys.path.insert(0, str(ROOT))
    from tests.forecast.helpers import TINY_MODEL, tiny_spec, wave_dataset

    ds = wave_dataset(days=6)
    spec, _, _ = tiny_spec(ds)
    torch.manual_seed(0)
    deterministic = Forecaster(spec.build(), spec)
    generative_spec = dataclasses.replace(
        spec, model=dataclasses.replace(TINY_MODEL, method="edm", sampling_steps=4)
    )
    generative = Forecaster(generative_spec.build(), generative_spec)
    crps_model = dataclasses.replace(TINY_MODEL, method="crps", noise_features=8)
    crps_spec = dataclasses.replace(spec, model=crps_model)
    stochastic = Forecaster(crps_spec.build(), crps_spec)
    return ds, deterministic, generative, stochastic, ds["time"].values[[2, 6]]


def _channels(scores: xr.Dataset) -> dict[str, np.ndarray]:
    """variable[level] → values along the lead dim."""
    out = {}
    for name, var in scores.data_vars.items():
        for level in var["level"].values.tolist() if "level" in var.dims else [None]:
            values = var if level is None else var.sel(level=level)
            out[f"{name}{'' if level is None else level}"] = np.asarray(values.values, dtype=float)
    return out


def _scores(ensemble: xr.Dataset, deterministic: xr.Dataset, truth: xr.Dataset) -> dict[str, dict]:
    probabilistic = {k: v.compute() for k, v in ev.probabilistic_scores(ensemble, truth).items()}
    return {
        "spread_skill_ratio": _channels(probabilistic["spread_skill_ratio"]),
        "crps": _channels(probabilistic["crps"]),
        "ensemble_mean_rmse": _channels(probabilistic["ensemble_mean_rmse"]),
        # WB2's DebiasedEnsembleMeanMSE = MSE(mean) − variance/M: the infinite ensemble's estimate
        "debiased_ensemble_mean_rmse": _channels(
            np.sqrt(probabilistic["debiased_ensemble_mean_mse"].clip(min=0))
        ),
        "deterministic_mae": _channels(ev.mae(deterministic, truth).compute()),
        "deterministic_rmse": _channels(ev.rmse(deterministic, truth).compute()),
    }


def _summary(scores: dict[str, dict], lead_hours: np.ndarray) -> dict[str, float]:
    """Channel means of the dimensionless ratios at every lead."""
    out = {}
    for h in LEADS_HOURS:
        if h not in lead_hours:
            continue
        i = int(np.flatnonzero(lead_hours == h)[0])
        channels = scores["crps"]
        out[f"ssr_{h}h"] = float(np.mean([scores["spread_skill_ratio"][c][i] for c in channels]))
        out[f"crps_over_det_mae_{h}h"] = float(
            np.mean([scores["crps"][c][i] / scores["deterministic_mae"][c][i] for c in channels])
        )
        for key, name in (("ensemble_mean_rmse", "ens"), ("debiased_ensemble_mean_rmse", "debiased_ens")):
            out[f"{name}_rmse_over_det_rmse_{h}h"] = float(
                np.mean([scores[key][c][i] / scores["deterministic_rmse"][c][i] for c in channels])
            )
    return out


def _table(scores: dict[str, dict], lead_hours: np.ndarray) -> str:
    leads = [h for h in LEADS_HOURS if h in lead_hours]
    lines = [
        "| channel | lead | SSR | CRPS | det. MAE | ens-mean RMSE | det. RMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for channel in scores["crps"]:
        for h in leads:
            i = int(np.flatnonzero(lead_hours == h)[0])
            row = [
                scores[k][channel][i]
                for k in (
                    "spread_skill_ratio",
                    "crps",
                    "deterministic_mae",
                    "ensemble_mean_rmse",
                    "deterministic_rmse",
                )
            ]
            crps_hit = "✓" if row[1] < row[2] else "✗"
            rmse_hit = "✓" if row[3] <= row[4] else "✗"
            ssr_hit = "✓" if 0.9 <= row[0] <= 1.1 else "✗"
            lines.append(
                f"| {channel} | {h} h | {row[0]:.2f} {ssr_hit} | {row[1]:.4g} {crps_hit} | {row[2]:.4g} | "
                f"{row[3]:.4g} {rmse_hit} | {row[4]:.4g} |"
            )
    return "\n".join(lines)


#: issue 23's goals: spread–skill band at every lead; CRPS against the GenCast-like one and ensemble-mean
#: RMSE against the deterministic one from 48 h; members per second against the GenCast-like one
SSR_BAND, CRPS_RATIO_GOAL, RMSE_RATIO_GOAL, GOALS_FROM_HOURS, SPEED_GOAL = (0.85, 1.15), 0.9, 1.0, 48, 20.0


def _crps_table(crps: dict[str, dict], gencast: dict[str, dict], lead_hours: np.ndarray) -> tuple[str, dict]:
    """Issue 23's table per channel and lead (✓/✗ against its goals) and the counts of cells that meet
    each goal."""
    leads = [h for h in LEADS_HOURS if h in lead_hours]
    lines = [
        "| channel | lead | SSR GenCast-like | SSR CRPS | CRPS / GenCast-like CRPS | CRPS / det. MAE | "
        "ens-mean RMSE / det. RMSE | debiased / det. RMSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    hits = {"ssr": [0, 0], "crps_vs_gencast": [0, 0], "crps_vs_det_mae": [0, 0], "rmse_vs_det": [0, 0]}

    def mark(goal: str, ok: bool, counted: bool = True) -> str:
        if counted:
            hits[goal][0] += int(ok)
            hits[goal][1] += 1
        return "✓" if ok else ("✗" if counted else "")

    for channel in crps["crps"]:
        for h in leads:
            i = int(np.flatnonzero(lead_hours == h)[0])
            ssr_gen, ssr = gencast["spread_skill_ratio"][channel][i], crps["spread_skill_ratio"][channel][i]
            vs_gen = crps["crps"][channel][i] / gencast["crps"][channel][i]
            vs_mae = crps["crps"][channel][i] / crps["deterministic_mae"][channel][i]
            det_rmse = crps["deterministic_rmse"][channel][i]
            rmse = crps["ensemble_mean_rmse"][channel][i] / det_rmse
            debiased = crps["debiased_ensemble_mean_rmse"][channel][i] / det_rmse
            late = h >= GOALS_FROM_HOURS
            lines.append(
                f"| {channel} | {h} h | {ssr_gen:.2f} | "
                f"{ssr:.2f} {mark('ssr', SSR_BAND[0] <= ssr <= SSR_BAND[1])} | "
                f"{vs_gen:.2f} {mark('crps_vs_gencast', vs_gen <= CRPS_RATIO_GOAL, late)} | "
                f"{vs_mae:.2f} {mark('crps_vs_det_mae', vs_mae < 1)} | "
                f"{rmse:.2f} {mark('rmse_vs_det', rmse <= RMSE_RATIO_GOAL, late)} | {debiased:.2f} |"
            )
    return "\n".join(lines), {goal: {"met": met, "cells": cells} for goal, (met, cells) in hits.items()}


def _sampler(entry: str) -> tuple[int, float, float]:
    """``"20"`` → (20, 0, 1.05): the ODE; ``"20:2.5"`` → (20, 2.5, 1.05): Heun with churn S_churn = 2.5
    and GenCast's S_noise; ``"20:10:1.2"`` → (20, 10, 1.2)."""
    fields = entry.split(":")
    defaults = ("", "0", str(Churn.s_noise))
    try:
        if len(fields) > len(defaults):
            raise ValueError(entry)
        steps, churn, noise = fields + list(defaults[len(fields):])
        return int(steps), float(churn), float(noise)
    except ValueError:
        raise SystemExit(f"--sweep entry {entry!r} must be steps, steps:S_churn or steps:S_churn:S_noise "
                         "(20, 20:2.5 or 20:10:1.2)") from None


def _log_score_cost(
    forecaster: Forecaster, initial: xr.Dataset, truth: xr.Dataset, inits: np.ndarray, steps: int
) -> dict[str, float]:
    """Log-score of the verifying state at the first lead for ``inits``; seconds per state."""
    start = time.perf_counter()
    score = forecaster.first_lead_log_score(initial, truth, inits, steps=steps)
    seconds = time.perf_counter() - start
    spec = forecaster.spec
    elements = spec.latitude.size * spec.longitude.size * len(spec.state_layout)
    return {
        "ode_steps": steps,
        "network_calls_per_state": 4 * steps,
        "seconds_per_state": seconds / len(inits),
        "log_score_nats_per_element_mean": float(score.mean()) / elements,
        "elements": elements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="untrained tiny models, synthetic data (CI smoke)"
    )
    parser.add_argument("--config", default=str(ROOT / "configs" / "generative_edm.yaml"))
    parser.add_argument("--checkpoint", help="generative forecaster checkpoint")
    parser.add_argument("--deterministic", help="deterministic forecaster checkpoint (the reference)")
    parser.add_argument("--crps", nargs="*", default=[],
                        help="CRPS-trained forecaster checkpoints (model.method crps), optional; several "
                        "(e.g. training variants) are each scored against the same two systems")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--inits", type=int, default=12, help="initializations of the held-out split")
    parser.add_argument("--sweep", default="4,8,20,10:2.5,20:2.5",
                        help="samplers to compare, comma-separated: steps (ODE), steps:S_churn or "
                        "steps:S_churn:S_noise; 'none' skips the sweep and the log-score")
    parser.add_argument("--sampling-steps", type=int, default=None, help="Heun steps (default model's)")
    parser.add_argument("--churn", type=float, default=None, help="S_churn (default the model's)")
    parser.add_argument("--churn-noise", type=float, default=None, help="S_noise (default the model's)")
    parser.add_argument("--sweep-inits", type=int, default=1)
    parser.add_argument("--sweep-members", type=int, default=4)
    parser.add_argument("--sweep-leads", type=int, default=8, help="leads of the sweep rollouts")
    parser.add_argument("--log-score-steps", type=int, default=8, help="RK4 steps of the likelihood ODE")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    stochastic: dict[str, Forecaster] = {}
    if args.quick:
        truth, deterministic, generative, quick_crps, inits = _quick_world()
        stochastic["untrained"] = quick_crps
        sweep = [_sampler(entry) for entry in ("2", "4", "4:2.5", "4:2.5:1.4")]
        steps, members, sweep_inits = 4, 3, inits[:1]
        args.sweep_members, args.sweep_leads = 3, 4
        where = "synthetic 16x32, untrained"
    else:
        if not (args.checkpoint and args.deterministic):
            parser.error("--checkpoint and --deterministic are required without --quick")
        config = load_forecast_config(args.config, args.overrides)
        truth = xr.open_zarr(config.dataset.output)
        config = dataclasses.replace(
            config, rollout=dataclasses.replace(config.rollout, max_inits=args.inits)
        )
        inits = initialization_times(truth, config)
        deterministic, generative = Forecaster.load(args.deterministic), Forecaster.load(args.checkpoint)
        steps, members = config.rollout.steps, args.members
        sweep = [] if args.sweep == "none" else [_sampler(entry) for entry in args.sweep.split(",")]
        sweep_inits = inits[: args.sweep_inits]
        where = str(config.dataset.output)
    variables = list(generative.spec.state_layout.variables)
    step = generative.step
    needed = np.union1d(inits, inits - step)
    initial = truth[variables].sel(time=needed).load()
    truth = truth[variables].load()

    path = RESULTS / ("ensemble_quick.json" if args.quick else "ensemble.json")
    reference = deterministic.rollout(initial, steps, init_times=inits, batch_size=16)
    with generative.module.sampling(args.sampling_steps, args.churn, args.churn_noise):
        start = time.perf_counter()
        ensemble = generative.rollout(initial, steps, init_times=inits, members=members, seed=0)
        seconds = time.perf_counter() - start
        module = generative.module
        sampling_steps, churn = module.sampling_steps, module.sampling_churn
        churn_noise = module.sampling_churn_noise
    lead_hours = ensemble["prediction_timedelta"].values / np.timedelta64(1, "h")
    scores = _scores(ensemble, reference, truth)
    result = {
        "benchmark": "ensemble",
        "data": where,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "inits": len(inits),
        "members": members,
        "leads": steps,
        "method": generative.spec.model.method,
        "sampling_steps": sampling_steps,
        "sampling_churn": churn,
        "sampling_churn_noise": churn_noise,
        "rollout_seconds": seconds,
        "members_per_second": len(inits) * members / seconds,
        "lead_hours": lead_hours.tolist(),
        "scores": {k: {c: v.tolist() for c, v in per.items()} for k, per in scores.items()},
        "summary": _summary(scores, lead_hours),
    }
    print(
        f"{result['method']} ensemble, {members} members × {len(inits)} inits × {steps} leads, "
        f"{result['sampling_steps']} Heun steps, S_churn {churn}, S_noise {churn_noise}: {seconds:.1f} s, "
        f"{result['members_per_second']:.3f} members/s (contended timings)"
    )
    print(_table(scores, lead_hours))
    _write(result, path)
    stochastic |= {checkpoint: Forecaster.load(checkpoint) for checkpoint in args.crps}
    for name, forecaster in stochastic.items():
        print(f"\n{name}:")
        result.setdefault("crps", {})[name] = _crps_system(
            forecaster, initial, inits, steps, members, reference, truth, scores, result["members_per_second"]
        )
        _write(result, path)
    if not sweep:
        print(f"wrote {path}")
        return
    sweep_rows = []
    sweep_leads = min(args.sweep_leads, steps)
    short_reference = reference.sel(time=sweep_inits).isel(prediction_timedelta=slice(0, sweep_leads))
    for heun_steps, sweep_churn, sweep_noise in sweep:
        with generative.module.sampling(heun_steps, sweep_churn, sweep_noise):
            start = time.perf_counter()
            small = generative.rollout(
                initial, sweep_leads, init_times=sweep_inits, members=args.sweep_members, seed=0
            )
            elapsed = time.perf_counter() - start
        summary = _summary(_scores(small, short_reference, truth), lead_hours[:sweep_leads])
        sweep_rows.append(
            {
                "sampling_steps": heun_steps,
                "sampling_churn": sweep_churn,
                "sampling_churn_noise": sweep_noise,
                "seconds": elapsed,
                "members_per_second": len(sweep_inits) * args.sweep_members / elapsed,
                **summary,
            }
        )
        result["sweep"] = sweep_rows
        _write(result, path)
    print(f"\nsweep: {args.sweep_members} members × {len(sweep_inits)} inits × {sweep_leads} leads")
    fixed = ("sampling_steps", "sampling_churn", "sampling_churn_noise", "seconds", "members_per_second")
    keys = [k for k in sweep_rows[0] if k not in fixed]
    print("| Heun steps | S_churn | S_noise | members/s | " + " | ".join(keys) + " |")
    for row in sweep_rows:
        cells = [f"{row[k]:.3f}" for k in keys]
        print(f"| {row['sampling_steps']} | {row['sampling_churn']} | {row['sampling_churn_noise']} | "
              f"{row['members_per_second']:.3f} | "
              + " | ".join(cells) + " |")
    result["log_score"] = _log_score_cost(generative, initial, truth, sweep_inits[:2], args.log_score_steps)
    print(
        f"\nlog-score: {result['log_score']['seconds_per_state']:.2f} s per state "
        f"({result['log_score']['network_calls_per_state']} forward+backward passes), "
        f"{result['log_score']['log_score_nats_per_element_mean']:.3f} nats per element"
    )
    _write(result, path)
    print(f"wrote {path}")


def _crps_system(stochastic: Forecaster, initial: xr.Dataset, inits: np.ndarray, steps: int, members: int,
                 reference: xr.Dataset, truth: xr.Dataset, gencast: dict[str, dict],
                 gencast_members_per_second: float) -> dict:
    """The CRPS-trained ensemble on the same initializations, members and seed: scores, issue 23's
    table (printed) and the members-per-second ratio against the GenCast-like ensemble."""
    if stochastic.spec.model.method != "crps":
        raise SystemExit(f"--crps needs a model.method crps checkpoint, got {stochastic.spec.model.method}")
    start = time.perf_counter()
    ensemble = stochastic.rollout(initial, steps, init_times=inits, members=members, seed=0)
    seconds = time.perf_counter() - start
    lead_hours = ensemble["prediction_timedelta"].values / np.timedelta64(1, "h")
    scores = _scores(ensemble, reference, truth)
    speed = len(inits) * members / seconds
    table, goals = _crps_table(scores, gencast, lead_hours)
    record = {
        "rollout_seconds": seconds,
        "members_per_second": speed,
        "members_per_second_over_gencast_like": speed / gencast_members_per_second,
        "noise_features": stochastic.spec.model.noise_features,
        "crps_members": stochastic.spec.model.crps_members,
        "crps_alpha": stochastic.spec.model.crps_alpha,
        "scores": {k: {c: v.tolist() for c, v in per.items()} for k, per in scores.items()},
        "summary": _summary(scores, lead_hours),
        "goals_met": goals,
    }
    print(f"\nCRPS ensemble, {members} members × {len(inits)} inits × {steps} leads: {seconds:.1f} s, "
          f"{speed:.3f} members/s, {record['members_per_second_over_gencast_like']:.1f}× the GenCast-like "
          f"(goal ≥ {SPEED_GOAL:g}×)")
    print(table)
    met = ", ".join(f"{goal} {v['met']}/{v['cells']}" for goal, v in goals.items())
    print(f"cells meeting each goal: {met}")
    return record


def _write(result: dict, path: Path) -> None:
    """Write the results so far (atomically: temporary name, then rename)."""
    from vecfield.files import write_text_atomic

    write_text_atomic(path, json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
