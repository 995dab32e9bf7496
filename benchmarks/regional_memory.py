"""Peak memory of one training update of the regional preset's model, by unrolled hourly steps.

The regional recipe back-propagates through up to 72 hourly steps (docs/forecast.md, "Regional
use"). This measures what one update costs at the size of ``configs/regional_surface_hourly.yaml``:
its model section, on its box (56° N–44° N, 0°–20° E at 0.25°: 49 × 81 cells) with its four
surface variables, static fields and forcings (random values: the memory does not depend on them).
Each (steps, batch, ``model.checkpoint_layers``) case runs in its own process, which builds the
forecaster, then does one forward and backward pass of a k-step training rollout; the peak is that
process's maximum resident set (CPU). The memory of a GPU run is of the same order.

    PYTHONPATH=. python benchmarks/regional_memory.py [--steps 1 24 72] [--batch 1]

Prints a table (peak GiB over the process's size before the update) and writes
``benchmarks/results/regional_memory.json``.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vecfield.files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"
PRESET = Path(__file__).resolve().parents[1] / "configs" / "regional_surface_hourly.yaml"


def one_case(steps: int, batch: int, checkpoint_layers: bool) -> dict:
    """One update of the preset's model at ``steps`` unrolled steps and ``batch`` windows (run in a
    fresh process: ru_maxrss is the process's peak)."""
    import torch
    import xarray as xr

    from vecfield.data.forcings import add_forcings
    from vecfield.data.statistics import compute_statistics
    from vecfield.data.streaming import WindowedDataset
    from vecfield.forecast.build import ForecasterSpec
    from vecfield.forecast.config import load_forecast_config

    torch.manual_seed(0)
    config = load_forecast_config(PRESET, [f"model.checkpoint_layers={str(checkpoint_layers).lower()}"])
    north, west, south, east = config.dataset.grid.area
    lat, lon = np.arange(south, north + 1e-9, 0.25), np.arange(west, east + 1e-9, 0.25)
    times = np.datetime64("2022-01-01T00", "ns") + np.arange(steps + 2 + batch) * np.timedelta64(1, "h")
    rng = np.random.default_rng(0)
    field = ("time", "latitude", "longitude")
    ds = xr.Dataset(
        {name: (field, rng.standard_normal((times.size, lat.size, lon.size)).astype(np.float32))
         for name in config.dataset.variables}
        | {name: (("latitude", "longitude"), rng.random((lat.size, lon.size)).astype(np.float32))
           for name in config.dataset.static},
        coords={"time": times, "latitude": lat, "longitude": lon},
        attrs={"state_variables": list(config.dataset.variables),
               "static_variables": list(config.dataset.static)},
    )
    ds = add_forcings(ds)
    windows = WindowedDataset(ds, n_inputs=2, n_leads=steps, step_hours=1)
    spec = ForecasterSpec.from_dataset(windows, compute_statistics(ds), config.model, 1)
    module = spec.build()
    window = torch.utils.data.default_collate([windows[i] for i in range(batch)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB (Linux)
    start = time.perf_counter()
    module(window.inputs, window.forcings, window.static, window.targets).backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"steps": steps, "batch": batch, "checkpoint_layers": checkpoint_layers,
            "grid": [lat.size, lon.size], "update_gib": round(peak - before, 2),
            "process_peak_gib": round(peak, 2), "seconds": round(time.perf_counter() - start, 1)}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="*", type=int, default=[1, 24, 72])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # steps batch checkpoint: one case
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(int(args.case[0]), int(args.case[1]), args.case[2] == "1")))
        return {}
    cases = []
    for steps in args.steps:
        for checkpoint in (False, True):
            out = subprocess.run([sys.executable, __file__, "--case", str(steps), str(args.batch),
                                  str(int(checkpoint))], capture_output=True, text=True, check=True)
            cases.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'steps':>5} {'batch':>5} {'checkpoint_layers':>17} {'update GiB':>10} {'GiB / sample':>12} "
          f"{'s':>6}")
    for case in cases:
        print(f"{case['steps']:5d} {case['batch']:5d} {case['checkpoint_layers']!s:>17} "
              f"{case['update_gib']:10.2f} {case['update_gib'] / case['batch']:12.2f} {case['seconds']:6.1f}")
    record = {"preset": str(PRESET.name), "cases": cases}
    RESULTS.mkdir(exist_ok=True)
    print("wrote", write_text_atomic(RESULTS / "regional_memory.json", json.dumps(record, indent=1)))
    return record


if __name__ == "__main__":
    main()
