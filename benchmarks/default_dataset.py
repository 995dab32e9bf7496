"""Benchmark of the embedded default dataset: generation time and how hard it is to forecast.

1. Generation: wall and CPU time of :func:`simulate_default_dataset` (no caching) and the CPU cost
   per model time step, against the issue's budget of 120 s on 2 cores (the ratio is reported).
2. Forecast baselines on the last simulated year (held out), every variable and level, area
   weighted (cos φ): the standard deviation of the anomaly from a climatology fitted on the other
   years (per grid point: annual harmonics 1–3 and diurnal harmonics 1–2), the RMSE of persistence
   at 6 h, 24 h and 120 h, and both as fractions of that anomaly standard deviation (= the RMSE of
   the climatology forecast). A learned forecaster has to beat both baselines.
3. Fast-oscillation bursts: the RMS, per calendar month, of the part of each field that flips
   sign every output step, r_t = S_t − (S_(t−Δt) + S_(t+Δt))/2 (the 2Δt = 12 h period at 6-hourly
   output, where short waves swept by a fast jet alias). A month far above the median is a burst a
   forecaster cannot phase: it makes the one-step error larger than the two-step one (the
   quickstart's test period holds one, in August of the third year; see docs/default_dataset.md).
4. Intrinsic predictability: twin experiments with the model itself from slightly perturbed
   initial states (z500 RMSE after 0–5 days), the ceiling a learned forecaster can approach.

    PYTHONPATH=. python benchmarks/default_dataset.py            # 3 simulated years (the default)
    PYTHONPATH=. python benchmarks/default_dataset.py --quick    # CI smoke test (0.1 year)

Results go to benchmarks/results/default_dataset.json (written atomically).
"""

import argparse
import dataclasses
import json
import os
import time
from collections import deque
from pathlib import Path

import numpy as np
import xarray as xr

from vecfield.data.synthetic.default_dataset import (
    WB2_LATITUDES,
    WB2_NLON,
    DefaultDatasetConfig,
    build_default_model,
    forced_trajectory,
    initial_state,
    simulate_default_dataset,
)
from vecfield.files import write_text_atomic

BUDGET_S = 120.0  # issue 5: generated in ≤ 2 minutes on 2 cores
LEADS_H = (6, 24, 120)


def _climatology_design(times: np.ndarray, annual: bool) -> np.ndarray:
    """(T, 11) regressors: constant, annual harmonics 1–3 (if ``annual``), diurnal harmonics 1–2."""
    days = (times - times[0]) / np.timedelta64(1, "D")
    year = 2 * np.pi * days / 365.2422
    day = 2 * np.pi * days
    columns = [np.ones_like(days)]
    for k in (1, 2, 3) if annual else ():
        columns += [np.sin(k * year), np.cos(k * year)]
    for k in (1, 2):
        columns += [np.sin(k * day), np.cos(k * day)]
    return np.stack(columns, axis=1)


def forecast_baselines(ds: xr.Dataset, held_out_days: float) -> list[dict]:
    """Climatology and persistence RMSE on the last ``held_out_days`` of ``ds``, per variable and level."""
    times = ds.time.values
    test = times >= times[-1] - np.timedelta64(round(held_out_days * 24), "h")
    train = ~test
    # annual harmonics need a year of training data; shorter (--quick) runs fit the diurnal cycle only
    design = _climatology_design(times, annual=(times[train][-1] - times[0]) >= np.timedelta64(365, "D"))
    weights = np.cos(np.deg2rad(ds.latitude.values))[:, None]
    weights = weights / weights.mean()
    step_h = (times[1] - times[0]) / np.timedelta64(1, "h")
    rows = []
    for name in ("geopotential", "u_component_of_wind", "v_component_of_wind"):
        for level in ds.level.values:
            values = ds[name].sel(level=level).values.astype(np.float64)  # (T, H, W)
            flat = values.reshape(len(times), -1)
            coefficients, *_ = np.linalg.lstsq(design[train], flat[train], rcond=None)
            anomaly = (flat - design @ coefficients).reshape(values.shape)[test]
            climatology_rmse = float(np.sqrt((anomaly**2 * weights).mean()))
            row = {"variable": name, "level": int(level), "climatology_rmse": climatology_rmse}
            test_values = values[test]
            for lead in LEADS_H:
                lag = round(lead / step_h)
                error = test_values[lag:] - test_values[:-lag]
                rmse = float(np.sqrt((error**2 * weights).mean()))
                row[f"persistence_rmse_{lead}h"] = rmse
                row[f"persistence_over_climatology_{lead}h"] = rmse / climatology_rmse
            rows.append(row)
    return rows


def fast_oscillation_bursts(ds: xr.Dataset, ratio: float = 3.0) -> list[dict]:
    """Monthly area-weighted RMS of r_t = S_t − (S_(t−1) + S_(t+1))/2 per variable and level, with the
    months whose RMS exceeds ``ratio`` × the median month (the bursts)."""
    weights = np.cos(np.deg2rad(ds.latitude.values))[:, None]
    weights = weights / weights.mean()
    months = ds.time.values[1:-1].astype("datetime64[M]")
    rows = []
    for name in ("geopotential", "u_component_of_wind", "v_component_of_wind"):
        for level in ds.level.values:
            values = ds[name].sel(level=level).values.astype(np.float64)  # (T, H, W)
            flip = values[1:-1] - (values[:-2] + values[2:]) / 2
            monthly = {str(m): float(np.sqrt((flip[months == m] ** 2 * weights).mean()))
                       for m in np.unique(months)}
            median = float(np.median(list(monthly.values())))
            rows.append({"variable": name, "level": int(level), "median_month_rms": median,
                         "monthly_rms": monthly,
                         "bursts": {m: v / median for m, v in monthly.items() if v > ratio * median}})
    return rows


def perfect_model_predictability(
    config: DefaultDatasetConfig,
    cases: int,
    spinup_days: float,
    separation_days: float,
    amplitude: float = 1e-3,
) -> dict:
    """Twin experiments: z500 RMSE between a run and a copy whose vorticity was perturbed by a relative
    ``amplitude`` (random, seeded), after 0–5 days; the model itself as the forecaster (its upper bound)."""
    model, _, forcing = build_default_model(config)
    grid = model.transform.at_latitudes(WB2_LATITUDES, WB2_NLON)
    weights = np.cos(np.deg2rad(WB2_LATITUDES))[:, None]
    weights = weights / weights.mean()
    steps_per_day = round(86400 / config.time_step_seconds)
    dt = np.timedelta64(round(config.time_step_seconds), "s")
    time = np.datetime64(config.start, "s") - np.timedelta64(round(spinup_days * 86400), "s")
    state = initial_state(model, config)
    state = deque(
        forced_trajectory(model, forcing, state, time, round(spinup_days * steps_per_day)), maxlen=1
    )[0]
    time = time + round(spinup_days * steps_per_day) * dt
    rng = np.random.default_rng(0)
    rmse = np.zeros((cases, 6))
    for case in range(cases):
        noise = rng.standard_normal(state.shape) + 1j * rng.standard_normal(state.shape)
        perturbed = state.copy()
        perturbed[:, 0] = state[:, 0] * (1 + amplitude * noise[:, 0])
        n_steps = 5 * steps_per_day
        pairs = zip(
            forced_trajectory(model, forcing, state, time, n_steps),
            forced_trajectory(model, forcing, perturbed, time, n_steps),
            strict=True,
        )
        difference = [model.grid_from_state(perturbed, grid)[2][0] - model.grid_from_state(state, grid)[2][0]]
        for step, (a, b) in enumerate(pairs, start=1):
            if step % steps_per_day == 0:
                difference.append(model.grid_from_state(b, grid)[2][0] - model.grid_from_state(a, grid)[2][0])
        rmse[case] = [float(np.sqrt((d**2 * weights).mean())) for d in difference]
        advance = round(separation_days * steps_per_day)
        state = deque(forced_trajectory(model, forcing, state, time, advance), maxlen=1)[0]
        time = time + advance * dt
    return {"amplitude": amplitude, "cases": cases, "z500_rmse_by_day": rmse.mean(axis=0).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="0.1 simulated year after 10 days of spin-up")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/default_dataset.json"))
    args = parser.parse_args()
    config = DefaultDatasetConfig(years=0.1, spinup_days=10.0) if args.quick else DefaultDatasetConfig()

    wall, cpu = time.perf_counter(), time.process_time()
    ds = simulate_default_dataset(config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    steps = (
        config.spinup_days * 86400 + (ds.sizes["time"] - 1) * config.output_hours * 3600
    ) / config.time_step_seconds
    generation = {
        "simulated_years": config.years,
        "spinup_days": config.spinup_days,
        "states": ds.sizes["time"],
        "model_steps": round(steps),
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_ms_per_step": 1e3 * cpu / steps,
        "budget_s": BUDGET_S,
        "wall_over_budget": wall / BUDGET_S,
        "cpus": os.cpu_count(),
    }
    print(f"generation of {config.years} simulated years ({ds.sizes['time']} states, {round(steps)} steps)")
    print(f"  wall {wall:.1f} s   cpu {cpu:.1f} s   {generation['cpu_ms_per_step']:.2f} ms/step (cpu)")
    print(f"  wall / budget ({BUDGET_S:.0f} s) = {generation['wall_over_budget']:.2f}")

    held_out_days = 365.25 if config.years > 1.5 else config.years * 365.25 / 3
    rows = forecast_baselines(ds, held_out_days)
    header = f"{'variable':<22}{'level':>6}{'clim RMSE':>11}" + "".join(
        f"{f'pers {h}h':>11}" for h in LEADS_H
    )
    print(f"\nforecast baselines on the last {held_out_days:.0f} days (persistence / climatology RMSE)")
    print(header)
    for row in rows:
        ratios = "".join(f"{row[f'persistence_over_climatology_{h}h']:>11.2f}" for h in LEADS_H)
        print(f"{row['variable']:<22}{row['level']:>6}{row['climatology_rmse']:>11.1f}{ratios}")

    oscillations = fast_oscillation_bursts(ds)
    print("\n12-hour (every-other-step) oscillation: median monthly RMS and the months above 3× it")
    for row in oscillations:
        bursts = ", ".join(f"{m} ×{r:.1f}" for m, r in row["bursts"].items()) or "none"
        print(f"{row['variable']:<22}{row['level']:>6}{row['median_month_rms']:>11.3g}   bursts: {bursts}")

    twin = perfect_model_predictability(
        config, cases=1 if args.quick else 4, spinup_days=10 if args.quick else 120, separation_days=15
    )
    z500 = next(r for r in rows if r["variable"] == "geopotential" and r["level"] == 500)
    twin["z500_rmse_over_climatology_by_day"] = [
        e / z500["climatology_rmse"] for e in twin["z500_rmse_by_day"]
    ]
    print(f"\nperfect-model twin experiments (vorticity perturbed by {twin['amplitude']:.0e} relative)")
    print("day              " + "".join(f"{d:>9}" for d in range(6)))
    print("z500 RMSE        " + "".join(f"{e:>9.1f}" for e in twin["z500_rmse_by_day"]))
    print("  / climatology  " + "".join(f"{e:>9.3f}" for e in twin["z500_rmse_over_climatology_by_day"]))

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "config": dataclasses.asdict(config),
        "generation": generation,
        "baselines": rows,
        "fast_oscillations": oscillations,
        "perfect_model_twin": twin,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
