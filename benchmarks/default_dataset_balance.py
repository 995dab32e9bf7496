"""Is the default dataset's wind balanced? Divergence against vorticity, and sub-daily variance.

1. rms divergence / rms vorticity (centred differences on the sphere, 15°–80° in both hemispheres,
   cos φ weights) at 500 and 850 hPa, for the default dataset's first simulated year and for the
   real ERA-Interim monthly means in ../shared/data/era5/eraint_uvz.nc block-averaged to 4.5°.
   Fast, unbalanced gravity waves would make the first ratio large.
2. Per variable at 500 hPa, in the held-out year: the largest fraction (over latitudes) of the
   variance at periods shorter than one day, after removing each grid point's mean diurnal cycle
   (the tide, which the forcing features predict), and the tide's own variance fraction.
3. Per variable at 500 hPa, in the held-out year: the latitude where the rms second time
   difference x(t + Δt) − 2x(t) + x(t − Δt) (what a smooth extrapolation from two states misses)
   peaks, that rms, and the dominant zonal wavenumber of the second difference on that row.
4. The strongest seasonal-mean zonal-mean u500 (the jet core) in June–August and December–
   February of the first year, and its latitude: a wave of zonal wavenumber m carried by a jet U
   at latitude φ passes a grid point with period ≈ 2π a cos φ / (m U). The same for ERA-Interim's
   July and January means.

    PYTHONPATH=. python benchmarks/default_dataset_balance.py [--quick]

Prints a table and writes benchmarks/results/default_dataset_balance.json. ``--quick`` uses 60
days of the default dataset and skips nothing else.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import xarray as xr

from vecfield.data.synthetic.default_dataset import load_default_dataset
from vecfield.files import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EARTH_RADIUS = 6.371e6


def divergence_vorticity(
    u: np.ndarray, v: np.ndarray, latitude: np.ndarray, longitude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """δ = (∂u/∂λ + ∂(v cos φ)/∂φ) / (a cos φ) and ζ = (∂v/∂λ − ∂(u cos φ)/∂φ) / (a cos φ), centred
    differences (periodic in λ), for u, v of shape (..., latitude, longitude) on a regular grid."""
    phi = np.deg2rad(latitude)[:, None]
    step = np.deg2rad(longitude[1] - longitude[0])

    def d_lambda(x: np.ndarray) -> np.ndarray:
        return (np.roll(x, -1, -1) - np.roll(x, 1, -1)) / (2 * step)

    def d_phi(x: np.ndarray) -> np.ndarray:
        return np.gradient(x, np.deg2rad(latitude), axis=-2)

    metric = EARTH_RADIUS * np.cos(phi)
    divergence = (d_lambda(u) + d_phi(v * np.cos(phi))) / metric
    vorticity = (d_lambda(v) - d_phi(u * np.cos(phi))) / metric
    return divergence, vorticity


def divergence_ratio(u: np.ndarray, v: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> float:
    """rms δ / rms ζ over 15°–80° latitude (cos φ weights); u, v (time, latitude, longitude)."""
    divergence, vorticity = divergence_vorticity(u, v, latitude, longitude)
    band = (np.abs(latitude) > 15) & (np.abs(latitude) < 80)
    weight = (np.cos(np.deg2rad(latitude)) * band)[:, None]
    return float(np.sqrt((divergence**2 * weight).sum() / (vorticity**2 * weight).sum()))


def subdaily_fractions(x: np.ndarray, hours: np.ndarray) -> tuple[float, float]:
    """(largest over latitudes of the variance fraction at periods < 1 day once the mean diurnal
    cycle is removed, the mean diurnal cycle's variance fraction) of 6-hourly x (time, lat, lon)."""
    anomaly = x - x.mean(0)
    tide = np.zeros_like(anomaly)
    for hour in np.unique(hours):
        tide[hours == hour] = anomaly[hours == hour].mean(0)
    rest = anomaly - tide
    power = np.abs(np.fft.rfft(rest, axis=0)) ** 2  # (frequency, latitude, longitude)
    frequency = np.fft.rfftfreq(rest.shape[0], d=0.25)  # cycles per day
    per_latitude = power[frequency > 1.0].sum(axis=(0, 2)) / power[1:].sum(axis=(0, 2))
    return float(per_latitude.max()), float((tide**2).sum() / (anomaly**2).sum())


def second_difference_peak(x: np.ndarray, latitude: np.ndarray) -> tuple[float, float, int]:
    """(latitude of the peak, peak rms, dominant zonal wavenumber there) of the second time
    difference of x (time, latitude, longitude)."""
    second = x[2:] - 2 * x[1:-1] + x[:-2]
    rms = np.sqrt((second**2).mean(axis=(0, 2)))
    row = int(np.argmax(rms))
    spectrum = (np.abs(np.fft.rfft(second[:, row], axis=-1)) ** 2).mean(axis=0)
    return float(latitude[row]), float(rms[row]), int(np.argmax(spectrum[1:]) + 1)


def main() -> None:
    """Compute both checks, print the table and write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="60 days of the default dataset")
    args = parser.parse_args()
    ds = load_default_dataset()
    first = ds.isel(time=slice(0, 240 if args.quick else 1460))
    held_out = ds.isel(time=slice(-240, None)) if args.quick else ds.sel(time=slice("2002-03-01", None))
    result: dict[str, float] = {}
    lat, lon = ds["latitude"].values, ds["longitude"].values
    for level in (500, 850):
        level_ds = first.sel(level=level)
        result[f"default_div_vort_{level}"] = divergence_ratio(
            level_ds["u_component_of_wind"].values, level_ds["v_component_of_wind"].values, lat, lon
        )
    era = Path(ROOT.parent / "shared" / "data" / "era5" / "eraint_uvz.nc")
    if era.exists():
        real = xr.open_dataset(era).sortby("latitude").isel(latitude=slice(0, 240))  # 240 = 40 blocks
        real = real.coarsen(latitude=6, longitude=6).mean()
        for month, season in ((7, "jja"), (1, "djf")):
            profile = real["u"].sel(level=500, month=month).mean("longitude")
            result[f"eraint_jet_u500_{season}"] = float(profile.max())
            result[f"eraint_jet_latitude_{season}"] = float(profile["latitude"][profile.argmax()])
        for level in (500, 850):
            level_ds = real.sel(level=level)
            result[f"eraint_div_vort_{level}"] = divergence_ratio(
                level_ds["u"].values, level_ds["v"].values, level_ds["latitude"].values,
                level_ds["longitude"].values,
            )
    months = first["time"].dt.month.values
    for season, chosen in (("jja", (6, 7, 8)), ("djf", (12, 1, 2))):
        jet = first["u_component_of_wind"].sel(level=500).isel(time=np.isin(months, chosen))
        profile = jet.mean(("time", "longitude")).values
        result[f"jet_u500_{season}"], result[f"jet_latitude_{season}"] = float(profile.max()), float(
            lat[np.argmax(profile)]
        )
    hours = held_out["time"].dt.hour.values
    for name in ("geopotential", "u_component_of_wind", "v_component_of_wind"):
        values = held_out[name].sel(level=500).values.astype(np.float64)
        result[f"{name}500_subdaily_max"], result[f"{name}500_tide"] = subdaily_fractions(values, hours)
        peak = second_difference_peak(values, lat)
        result[f"{name}500_d2_peak_latitude"], result[f"{name}500_d2_peak_rms"] = peak[:2]
        result[f"{name}500_d2_peak_wavenumber"] = peak[2]
    print(f"{'quantity':<48}{'value':>10}")
    for key, value in result.items():
        print(f"{key:<48}{value:>10.4f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "default_dataset_balance.json"
    write_text_atomic(path, json.dumps({**result, "quick": args.quick}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
