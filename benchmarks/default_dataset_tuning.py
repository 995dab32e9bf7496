"""Short runs of the default atmosphere with forcing overrides: the jets and storm tracks they give.

Four runs of ``--days`` days from the shipped monthly climate, started on 1 and 16 December and 1
and 16 June, side by side; from day 30 on, four times a day, the zonal-mean u at 500 hPa (peak per
hemisphere, ≈ January and July) and the transient v variance (peak over 25–70°), against
ERA-Interim's monthly means (``benchmarks/default_dataset.py``'s measures). How the default
forcing was chosen (docs/default_dataset.md, "Tuning the forcing").

    PYTHONPATH=. python benchmarks/default_dataset_tuning.py '{"equator_pole_k": 90, "seasonal_north_k": 12}'
    PYTHONPATH=. python benchmarks/default_dataset_tuning.py '{}' --days 100

The JSON holds ``HeldSuarezParameters`` fields. Prints a table; writes
benchmarks/results/default_dataset_tuning.json (one entry per call, appended).
"""

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from default_dataset import era_interim_jets, jet_peaks

from vecfield.data.synthetic import default_dataset as dd
from vecfield.data.synthetic.held_suarez import HeldSuarezParameters
from vecfield.files import write_text_atomic

STARTS = np.array(["1999-12-01", "1999-12-16", "2000-06-01", "2000-06-16"], dtype="datetime64[ns]")


def short_runs(parameters: HeldSuarezParameters, days: int) -> dict[str, dict]:
    """{"january"|"july": {"south"|"north": jet and storm-track peaks}} of the four runs."""
    config = dd.DefaultDatasetConfig(atmosphere=parameters)
    atmosphere, _ = dd.build_atmosphere(config)
    climate = dd.climate_at(dd.load_climate(), STARTS)
    initial = dd.state_from_zonal_mean(
        atmosphere, climate, dd.eddy_noise(config, atmosphere, [(2, k) for k in range(4)])
    )
    grid = dd.output_grid(parameters, dd.WB2_LATITUDES, dd.WB2_NLON)
    steps_per_day = round(24 * 60 / parameters.time_step_minutes)
    every = max(1, steps_per_day // 4)
    u, v = [], []
    for index, state in dd.integrate(atmosphere, initial, STARTS, days * steps_per_day, None):
        if index > 30 * steps_per_day and index % every == 0:
            levels = atmosphere.on_pressure_levels(state, grid, (500,))
            u.append(levels["u"][:, 0])
            v.append(levels["v"][:, 0])
    coords = {"latitude": dd.WB2_LATITUDES, "longitude": np.arange(dd.WB2_NLON) * 360 / dd.WB2_NLON}
    dims = ("time", "member", "latitude", "longitude")
    u_all, v_all = (
        xr.DataArray(np.stack(u), dims=dims, coords=coords),
        xr.DataArray(np.stack(v), dims=dims, coords=coords),
    )
    result = {}
    for month, members in (("january", [0, 1]), ("july", [2, 3])):
        jets = jet_peaks(u_all.isel(member=members).mean(("time", "member")))
        anomaly = v_all.isel(member=members) - v_all.isel(member=members).mean("time")
        variance = (anomaly**2).mean(("time", "member", "longitude"))
        for side, sign in (("south", -1), ("north", 1)):
            band = variance.where(
                (sign * variance.latitude >= 25) & (sign * variance.latitude <= 70), drop=True
            )
            jets[side] |= {
                "v_variance": float(band.max()),
                "v_variance_latitude": float(band.latitude[band.argmax()]),
            }
        result[month] = jets
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("overrides", help="JSON object of HeldSuarezParameters fields")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/default_dataset_tuning.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parameters = HeldSuarezParameters(**json.loads(args.overrides))
    result = short_runs(parameters, args.days)
    reference = era_interim_jets()
    print(f"{'month':<9}{'side':<7}{'jet (m/s @ lat)':>18}{'ERA-Interim':>16}{'v′² (m² s⁻² @ lat)':>22}")
    for month, sides in result.items():
        for side, row in sides.items():
            era = (
                ""
                if reference is None
                else f"{reference[month][side]['u_max']:.1f} @ {reference[month][side]['latitude']:.0f}"
            )
            print(
                f"{month:<9}{side:<7}{row['u_max']:>11.1f} @ {row['latitude']:>4.0f}{era:>16}"
                f"{row['v_variance']:>14.0f} @ {row['v_variance_latitude']:>4.0f}"
            )
    history = json.loads(args.out.read_text()) if args.out.exists() else []
    history.append({"parameters": dataclasses.asdict(parameters), "days": args.days, "result": result})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(history, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
