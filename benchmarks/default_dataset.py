"""Benchmark of the embedded default atmosphere: generation time, climate against reanalysis, and
how hard it is to forecast.

1. Generation: wall and CPU time of :func:`simulate_default_dataset` (no caching), against its share
   of the main job's 15-minute budget (``BUDGET_S``; the ratio is reported).
2. Climate against ERA-Interim (``../shared/data/era5/eraint_uvz.nc``, monthly means of January
   and July), per hemisphere and month: the peak of the zonal-mean u at 500 hPa and its latitude
   (target: both within 30 %). The simulated months are the means over every January / July.
3. Storm tracks: the transient variance of v at 500 hPa (about each run's monthly means), zonal
   mean, its peak over 25–70° in each hemisphere. Reference: reanalysis climatologies put it at
   100–200 m² s⁻² in the storm tracks (Peixoto & Oort 1992, *Physics of Climate*, ch. 7; Chang,
   Lee & Swanson 2002, J. Climate 15, 2163); target within a factor 2 of the band's middle.
4. Kinetic-energy spectrum at 500 hPa: zonal-wavenumber spectrum of ½(u² + v²) along the latitude
   circles of 30–60° (both hemispheres, every time), its log-log slope over wavenumbers 6–15 (the
   resolved synoptic range at T21). Target −3 ± 0.5 (Nastrom & Gage 1985, J. Atmos. Sci. 42, 950).
5. Forecast baselines on the held-out last year, every variable and level, area weighted: the RMSE
   of the climatology (annual harmonics 1–3 and diurnal 1–2 per grid point, fitted on the other
   years) and of persistence at 6, 24 and 120 h as a fraction of it; pairs of times never span two
   runs (``trajectory``).
6. Fast-oscillation bursts: the RMS per calendar month of r_t = S_t − (S_(t−Δt) + S_(t+Δt))/2, the
   part that flips sign every output step; a month far above the median is a burst a forecaster
   cannot phase (the old shallow-water default had one in its test period).

    PYTHONPATH=. python benchmarks/default_dataset.py            # 3 simulated years (the default)
    PYTHONPATH=. python benchmarks/default_dataset.py --quick    # smoke test (0.1 year)
    PYTHONPATH=. python benchmarks/default_dataset.py --cached   # the cached store (the wall time is
                                                                 # then the generation's only if absent)

Results go to benchmarks/results/default_dataset.json (written atomically).
"""

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr

from vecfield.data.synthetic.default_dataset import (
    DefaultDatasetConfig,
    load_default_dataset,
    simulate_default_dataset,
)
from vecfield.data.trajectories import run_labels
from vecfield.files import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
ERA_INTERIM = ROOT.parent / "shared" / "data" / "era5" / "eraint_uvz.nc"
BUDGET_S = 240.0  # generation's share of the main job's 15 minutes (training takes ~10)
LEADS_H = (6, 24, 120)
STORM_TRACK_REFERENCE = (100.0, 200.0)  # m² s⁻², reanalysis transient v variance at 500 hPa
VARIABLES = ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind")


def _area_weights(latitude: np.ndarray) -> np.ndarray:
    weights = np.cos(np.deg2rad(latitude))[:, None]
    return weights / weights.mean()


def jet_peaks(u500: xr.DataArray) -> dict[str, dict[str, float]]:
    """Peak zonal-mean u (m/s) and its latitude per hemisphere of a (latitude, longitude) field,
    the peak refined by a parabola through the three highest rows."""
    profile = u500.mean("longitude")
    result = {}
    for name, inside in (("south", profile.latitude < 0), ("north", profile.latitude > 0)):
        part = profile.where(inside, drop=True)
        values, lats = part.values, part.latitude.values
        i = int(np.clip(np.argmax(values), 1, values.size - 2))
        a, b, c = values[i - 1 : i + 2]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
        step = lats[i + 1] - lats[i]
        result[name] = {"u_max": float(b - 0.25 * (a - c) * shift), "latitude": float(lats[i] + shift * step)}
    return result


def era_interim_jets() -> dict[str, dict[str, dict[str, float]]] | None:
    """{"january"|"july": jet_peaks} of ERA-Interim's monthly-mean u500, or None without the file."""
    if not ERA_INTERIM.exists():
        return None
    real = xr.open_dataset(ERA_INTERIM).sortby("latitude")
    return {
        name: jet_peaks(real["u"].sel(level=500, month=month))
        for name, month in (("january", 1), ("july", 7))
    }


def simulated_jets(ds: xr.Dataset) -> dict[str, dict[str, dict[str, float]]]:
    months = ds["time"].dt.month.values
    u = ds["u_component_of_wind"].sel(level=500)
    return {
        name: jet_peaks(u.isel(time=months == month).mean("time"))
        for name, month in (("january", 1), ("july", 7))
    }


def storm_track_variance(ds: xr.Dataset) -> dict[str, dict[str, float]]:
    """Peak over 25–70° of the zonal mean of var(v500) about each run's monthly means."""
    v = ds["v_component_of_wind"].sel(level=500).astype(np.float64)
    group = xr.DataArray(
        [f"{r}-{m}" for r, m in zip(run_labels(ds), ds["time"].values.astype("datetime64[M]"), strict=True)],
        dims="time",
    )
    anomaly = v.groupby(group) - v.groupby(group).mean("time")
    variance = (anomaly**2).mean(("time", "longitude"))
    result = {}
    for name, sign in (("south", -1), ("north", 1)):
        band = variance.where((sign * variance.latitude >= 25) & (sign * variance.latitude <= 70), drop=True)
        result[name] = {"peak": float(band.max()), "latitude": float(band.latitude[band.argmax()])}
    return result


def kinetic_energy_slope(ds: xr.Dataset, wavenumbers: tuple[int, int] = (6, 15)) -> dict[str, float]:
    """Log-log slope of the mean zonal-wavenumber KE spectrum of (u, v) at 500 hPa over 30–60°."""
    band = np.abs(ds.latitude.values)
    rows = (band >= 30) & (band <= 60)
    spectrum = np.zeros(ds.sizes["longitude"] // 2 + 1)
    for name in ("u_component_of_wind", "v_component_of_wind"):
        values = ds[name].sel(level=500).values[:, rows].astype(np.float64)
        coefficients = np.fft.rfft(values, axis=-1) / values.shape[-1]
        spectrum += 0.5 * (np.abs(coefficients) ** 2).mean(axis=(0, 1)) * 2
    k = np.arange(spectrum.size)
    fit = (k >= wavenumbers[0]) & (k <= wavenumbers[1])
    slope = float(np.polyfit(np.log(k[fit]), np.log(spectrum[fit]), 1)[0])
    return {"slope": slope, "wavenumbers": list(wavenumbers), "spectrum": spectrum.tolist()}


def _climatology_design(times: np.ndarray, annual: bool) -> np.ndarray:
    """(T, 5 or 11) regressors: constant, annual harmonics 1–3 (if ``annual``), diurnal harmonics 1–2."""
    days = (times - times[0]) / np.timedelta64(1, "D")
    columns = [np.ones_like(days)]
    for k in (1, 2, 3) if annual else ():
        columns += [np.sin(2 * np.pi * k * days / 365.2422), np.cos(2 * np.pi * k * days / 365.2422)]
    for k in (1, 2):
        columns += [np.sin(2 * np.pi * k * days), np.cos(2 * np.pi * k * days)]
    return np.stack(columns, axis=1)


def forecast_baselines(ds: xr.Dataset, held_out_days: float) -> list[dict]:
    """Climatology and persistence RMSE on the last ``held_out_days`` of ``ds``, per variable and level."""
    times = ds.time.values
    test = times >= times[-1] - np.timedelta64(round(held_out_days * 24), "h")
    design = _climatology_design(times, annual=(times[~test][-1] - times[0]) >= np.timedelta64(365, "D"))
    weights = _area_weights(ds.latitude.values)
    labels = run_labels(ds)[test]
    step_h = (times[1] - times[0]) / np.timedelta64(1, "h")
    rows = []
    for name in VARIABLES:
        for level in ds.level.values:
            values = ds[name].sel(level=level).values.astype(np.float64)
            flat = values.reshape(len(times), -1)
            coefficients, *_ = np.linalg.lstsq(design[~test], flat[~test], rcond=None)
            anomaly = (flat - design @ coefficients).reshape(values.shape)[test]
            climatology_rmse = float(np.sqrt((anomaly**2 * weights).mean()))
            row = {"variable": name, "level": int(level), "climatology_rmse": climatology_rmse}
            held = values[test]
            for lead in LEADS_H:
                lag = round(lead / step_h)
                same = labels[lag:] == labels[:-lag]
                error = (held[lag:] - held[:-lag])[same]
                rmse = float(np.sqrt((error**2 * weights).mean()))
                row[f"persistence_rmse_{lead}h"] = rmse
                row[f"persistence_over_climatology_{lead}h"] = rmse / climatology_rmse
            rows.append(row)
    return rows


def fast_oscillation_bursts(ds: xr.Dataset, ratio: float = 3.0) -> list[dict]:
    """Monthly area-weighted RMS of r_t = S_t − (S_(t−1) + S_(t+1))/2 (within runs) per variable and
    level, with the months whose RMS exceeds ``ratio`` × the median month (the bursts)."""
    weights = _area_weights(ds.latitude.values)
    labels = run_labels(ds)
    inside = labels[:-2] == labels[2:]
    months = ds.time.values[1:-1].astype("datetime64[M]")[inside]
    rows = []
    for name in VARIABLES:
        for level in ds.level.values:
            values = ds[name].sel(level=level).values.astype(np.float64)
            flip = (values[1:-1] - (values[:-2] + values[2:]) / 2)[inside]
            monthly = {
                str(m): float(np.sqrt((flip[months == m] ** 2 * weights).mean())) for m in np.unique(months)
            }
            median = float(np.median(list(monthly.values())))
            rows.append(
                {
                    "variable": name,
                    "level": int(level),
                    "median_month_rms": median,
                    "monthly_rms": monthly,
                    "bursts": {m: v / median for m, v in monthly.items() if v > ratio * median},
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="0.1 simulated year in 2 runs, 5 days of spin-up"
    )
    parser.add_argument("--cached", action="store_true",
                        help="read the cached dataset (generated first if absent) instead of simulating anew")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/default_dataset.json"))
    args = parser.parse_args()
    config = (
        DefaultDatasetConfig(years=0.1, segments=2, segment_spinup_days=5.0)
        if args.quick
        else DefaultDatasetConfig()
    )

    wall, cpu = time.perf_counter(), time.process_time()
    ds = load_default_dataset(config=config).load() if args.cached else simulate_default_dataset(config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    generation = {
        "simulated_years": config.years,
        "runs": config.segments,
        "states": ds.sizes["time"],
        "wall_s": wall,
        "cpu_s": cpu,
        "budget_s": BUDGET_S,
        "wall_over_budget": wall / BUDGET_S,
        "cpus": os.cpu_count(),
    }
    print(
        f"generation of {config.years} simulated years in {config.segments} runs ({ds.sizes['time']} states)"
    )
    print(f"  wall {wall:.1f} s   cpu {cpu:.1f} s   wall / budget ({BUDGET_S:.0f} s) = {wall / BUDGET_S:.2f}")

    simulated, reference = simulated_jets(ds), era_interim_jets()
    print("\nzonal-mean u500 jets: simulated vs ERA-Interim (peak m/s @ latitude)")
    jets = []
    for month in ("january", "july"):
        for side in ("south", "north"):
            sim = simulated[month][side]
            row = {"month": month, "hemisphere": side, "u_max": sim["u_max"], "latitude": sim["latitude"]}
            text = f"  {month:<8}{side:<6}{sim['u_max']:6.1f} @ {sim['latitude']:6.1f}°"
            if reference is not None:
                era = reference[month][side]
                row |= {
                    "era_u_max": era["u_max"],
                    "era_latitude": era["latitude"],
                    "speed_ratio": sim["u_max"] / era["u_max"],
                    "latitude_ratio": sim["latitude"] / era["latitude"],
                }
                row["within_30pct"] = bool(
                    abs(row["speed_ratio"] - 1) <= 0.3 and abs(row["latitude_ratio"] - 1) <= 0.3
                )
                text += (
                    f"   ERA-I {era['u_max']:5.1f} @ {era['latitude']:6.1f}°   "
                    f"ratios {row['speed_ratio']:.2f}, {row['latitude_ratio']:.2f}   "
                    f"{'ok' if row['within_30pct'] else 'MISSED'}"
                )
            jets.append(row)
            print(text)

    storms = storm_track_variance(ds)
    middle = sum(STORM_TRACK_REFERENCE) / 2
    print(f"\ntransient v500 variance, peak of the zonal mean (reference {STORM_TRACK_REFERENCE} m² s⁻²)")
    for side, row in storms.items():
        row["ratio_to_reference_middle"] = row["peak"] / middle
        row["within_factor_2"] = bool(0.5 <= row["ratio_to_reference_middle"] <= 2.0)
        print(
            f"  {side:<6}{row['peak']:7.1f} m² s⁻² @ {row['latitude']:6.1f}°   / {middle:.0f} = "
            f"{row['ratio_to_reference_middle']:.2f}   {'ok' if row['within_factor_2'] else 'MISSED'}"
        )

    spectrum = kinetic_energy_slope(ds)
    spectrum["within_target"] = bool(abs(spectrum["slope"] + 3) <= 0.5)
    print(
        f"\nKE spectrum at 500 hPa, 30–60°: slope {spectrum['slope']:.2f} over zonal wavenumbers "
        f"{spectrum['wavenumbers'][0]}–{spectrum['wavenumbers'][1]} (target −3 ± 0.5: "
        f"{'ok' if spectrum['within_target'] else 'MISSED'})"
    )

    held_out_days = 365.25 if config.years > 1.5 else config.years * 365.25 / 3
    rows = forecast_baselines(ds, held_out_days)
    print(f"\nforecast baselines on the last {held_out_days:.0f} days (persistence / climatology RMSE)")
    print(f"{'variable':<22}{'level':>6}{'clim RMSE':>11}" + "".join(f"{f'pers {h}h':>11}" for h in LEADS_H))
    for row in rows:
        ratios = "".join(f"{row[f'persistence_over_climatology_{h}h']:>11.2f}" for h in LEADS_H)
        print(f"{row['variable']:<22}{row['level']:>6}{row['climatology_rmse']:>11.2f}{ratios}")

    oscillations = fast_oscillation_bursts(ds)
    print("\n12-hour (every-other-step) oscillation: median monthly RMS and the months above 3× it")
    for row in oscillations:
        bursts = ", ".join(f"{m} ×{r:.1f}" for m, r in row["bursts"].items()) or "none"
        print(f"{row['variable']:<22}{row['level']:>6}{row['median_month_rms']:>11.3g}   bursts: {bursts}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "config": dataclasses.asdict(config),
        "generation": generation,
        "jets": jets,
        "storm_tracks": storms,
        "kinetic_energy_spectrum": spectrum,
        "baselines": rows,
        "fast_oscillations": oscillations,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
