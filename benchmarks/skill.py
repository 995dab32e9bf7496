"""Skill of the quickstart forecaster on the default atmosphere's held-out period, against
persistence and climatology, with the S1 targets checked, and a 400-step stability check.

Runs the main job's four stages (build, train, roll out 5 days, evaluate; ``configs/quickstart.yaml``)
into ``--run-dir``, or scores an existing run (``--from-run runs/quickstart``), then prints per
channel and lead the model's RMSE and its ratios to persistence and to the climatology, and checks:

1. RMSE below persistence and climatology at every lead ≤ 5 days, for every channel;
2. at 24 h, ≤ 0.5× persistence for every channel;
3. the 6-hour error is the smallest, and the errors grow monotonically with lead;
4. after 400 steps (100 days) from the first test initialization, each field's range and spatial
   variance lie within the truth's (the range of the whole dataset; the spatial variances of
   every stored time), and so does its power at zonal wavenumbers 11–21 (no grid-scale noise).

    PYTHONPATH=. python benchmarks/skill.py                     # the full main job (~12 min)
    PYTHONPATH=. python benchmarks/skill.py --quick             # 300 training steps, 8 inits
    PYTHONPATH=. python benchmarks/skill.py --from-run runs/quickstart   # score an existing run

Results go to benchmarks/results/skill.json (written atomically).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vecfield.data.build import build_dataset, open_built_dataset
from vecfield.data.streaming import split_range
from vecfield.files import write_text_atomic
from vecfield.forecast.config import load_forecast_config
from vecfield.forecast.forecaster import Forecaster
from vecfield.forecast.training import train_forecaster
from vecfield.pipelines.forecast_evaluation import evaluate_forecast, forecast_split

LONG_STEPS = 400
HIGH_WAVENUMBERS = (11, 21)
SHOWN_LEADS_H = (6, 12, 24, 48, 72, 96, 120)


def run_main_job(config_path: str, run_dir: Path, quick: bool) -> Path:
    """The quickstart's stages with every output under ``run_dir``; returns the checkpoint."""
    overrides = [
        f"dataset.output={run_dir / 'dataset.zarr'}",
        f"train.run_dir={run_dir / 'train'}",
        f"rollout.output={run_dir}",
    ]
    if quick:
        overrides += [
            "train.max_steps=300",
            "train.curriculum=[[0, 1], [200, 2]]",
            "train.validate_every=150",
            "rollout.max_inits=8",
        ]
    config = load_forecast_config(config_path, overrides)
    build_dataset(config.dataset, reuse=True)
    checkpoint = train_forecaster(config)
    evaluate_forecast(forecast_split(Forecaster.load(checkpoint), config), config)
    return checkpoint


def target_table(scores: dict) -> tuple[list[dict], dict[str, bool]]:
    """Per channel and lead: model RMSE, ratios to persistence and climatology; the targets 1–3."""
    hours = scores["lead_hours"]
    model, persistence, climatology = (
        scores["scores"][k] for k in ("vecfield", "persistence", "climatology")
    )
    rows, met = [], {"1_below_both": True, "2_half_persistence_24h": True, "3_monotonic": True}
    for channel, errors in model.items():
        errors = np.asarray(errors)
        row = {
            "channel": channel,
            "lead_hours": hours,
            "rmse": errors.tolist(),
            "over_persistence": (errors / np.asarray(persistence[channel])).tolist(),
            "over_climatology": (errors / np.asarray(climatology[channel])).tolist(),
        }
        within = [i for i, h in enumerate(hours) if h <= 120]
        row["below_both"] = bool(
            all(row["over_persistence"][i] < 1 and row["over_climatology"][i] < 1 for i in within)
        )
        row["half_persistence_24h"] = bool(
            24.0 in hours and row["over_persistence"][hours.index(24.0)] <= 0.5
        )
        row["monotonic"] = bool(np.all(np.diff(errors) > 0))
        met["1_below_both"] &= row["below_both"]
        met["2_half_persistence_24h"] &= row["half_persistence_24h"]
        met["3_monotonic"] &= row["monotonic"]
        rows.append(row)
    return rows, met


def _high_wavenumber_power(field: np.ndarray) -> np.ndarray:
    """Mean power at zonal wavenumbers ``HIGH_WAVENUMBERS`` of (..., latitude, longitude) fields."""
    coefficients = np.fft.rfft(field, axis=-1) / field.shape[-1]
    low, high = HIGH_WAVENUMBERS
    return (np.abs(coefficients[..., low : high + 1]) ** 2).mean(axis=(-1, -2))


def long_rollout_check(checkpoint: Path, dataset: Path) -> tuple[list[dict], bool]:
    """Target 4: range, spatial variance and high-wavenumber power after ``LONG_STEPS`` steps."""
    forecaster = Forecaster.load(checkpoint)
    truth = open_built_dataset(dataset)
    start, _ = split_range(truth, "test")
    inits = forecaster.init_times(truth.sel(time=slice(start, None)))
    forecast = forecaster.rollout(truth, LONG_STEPS, init_times=inits[:1], batch_size=1)
    final = forecast.isel(time=0, prediction_timedelta=-1)
    rows, met = [], True
    weights = np.cos(np.deg2rad(truth.latitude.values))[:, None]
    for name in forecast.data_vars:
        for level in forecast["level"].values if "level" in forecast[name].dims else [None]:
            f = final[name] if level is None else final[name].sel(level=level)
            t = truth[name] if level is None else truth[name].sel(level=level)
            t = t.values.astype(np.float64)
            f = f.values.astype(np.float64)
            truth_var = (
                (t - (t * weights).mean(axis=(1, 2), keepdims=True) / weights.mean()) ** 2 * weights
            ).mean(axis=(1, 2)) / weights.mean()
            f_var = float(
                (((f - (f * weights).mean() / weights.mean()) ** 2) * weights).mean() / weights.mean()
            )
            truth_power, f_power = _high_wavenumber_power(t), float(_high_wavenumber_power(f))
            row = {
                "channel": f"{name}{'' if level is None else int(level)}",
                "forecast_min": float(f.min()),
                "forecast_max": float(f.max()),
                "truth_min": float(t.min()),
                "truth_max": float(t.max()),
                "forecast_variance": f_var,
                "truth_variance_range": [float(truth_var.min()), float(truth_var.max())],
                "forecast_high_k_power": f_power,
                "truth_high_k_power_range": [float(truth_power.min()), float(truth_power.max())],
            }
            row["within"] = bool(
                t.min() <= f.min()
                and f.max() <= t.max()
                and truth_var.min() <= f_var <= truth_var.max()
                and truth_power.min() <= f_power <= truth_power.max()
            )
            met &= row["within"]
            rows.append(row)
    return rows, met


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--run-dir", type=Path, default=Path("benchmarks/results/skill_run"))
    parser.add_argument("--from-run", type=Path, help="score this finished run instead of training")
    parser.add_argument("--quick", action="store_true", help="300 training steps and 8 initializations")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/skill.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    run_dir = args.from_run or args.run_dir
    if args.from_run is None:
        checkpoint = run_main_job(args.config, run_dir, args.quick)
    else:
        checkpoints = run_dir / "train" / "checkpoints"
        best = checkpoints / "best.pt"
        checkpoint = best if best.exists() else max(checkpoints.glob("step_*.pt"))
    scores = json.loads((run_dir / "scores.json").read_text())
    rows, met = target_table(scores)
    hours = scores["lead_hours"]
    shown = [hours.index(float(h)) for h in SHOWN_LEADS_H if float(h) in hours]
    print(scores["evaluation"]["summary"])
    print("per lead: model RMSE / persistence, model RMSE / climatology")
    print(f"{'channel':<26}" + "".join(f"{f'{hours[i]:.0f} h':>16}" for i in shown))
    for row in rows:
        cells = "".join(
            f"{row['over_persistence'][i]:>8.2f}{row['over_climatology'][i]:>8.2f}" for i in shown
        )
        print(f"{row['channel']:<26}{cells}")
    long_rows, long_met = long_rollout_check(checkpoint, run_dir / "dataset.zarr")
    met["4_stays_in_climate_400_steps"] = long_met
    print(
        f"\nafter {LONG_STEPS} steps: range, spatial variance and power at zonal wavenumbers "
        f"{HIGH_WAVENUMBERS[0]}–{HIGH_WAVENUMBERS[1]} against the truth's"
    )
    for row in long_rows:
        print(
            f"  {row['channel']:<26}[{row['forecast_min']:.4g}, {row['forecast_max']:.4g}] in "
            f"[{row['truth_min']:.4g}, {row['truth_max']:.4g}];  var {row['forecast_variance']:.4g} in "
            f"[{row['truth_variance_range'][0]:.4g}, {row['truth_variance_range'][1]:.4g}];  high-k "
            f"{row['forecast_high_k_power']:.3g} in [{row['truth_high_k_power_range'][0]:.3g}, "
            f"{row['truth_high_k_power_range'][1]:.3g}]  {'ok' if row['within'] else 'MISSED'}"
        )
    print("\ntargets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "run_dir": str(run_dir),
        "quick": args.quick,
        "targets": met,
        "channels": rows,
        "long_rollout": long_rows,
        "wall_s": time.perf_counter() - started,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
