"""Fair CRPS spread: vecfield's O(M log M) sorted estimator against the direct O(M²) pair sum.

Both compute the unbiased E|X − X'| = ΣΣ_{i≠j}|X_i − X_j| / (M(M − 1)) at every point of a
(points, M) ensemble:
- vecfield: ``vecfield.evaluate.probabilistic.pointwise_fair_spread`` (sort the members, then
  2/(M − 1)·mean_k[(2k − M − 1)·X_(k)], as WeatherBench2 does);
- reference: the direct pair sum of GenCast's demo notebook, mean over all ordered pairs of
  |X_i − X_j|, written with numpy broadcasting (one (points, M, M) array per block of points).

The run checks that both agree (max relative difference) and reports time per call and the speed-up.

    python benchmarks/crps_spread.py [--quick] [--points 65536]

Prints a table and writes benchmarks/results/crps_spread.json.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import xarray as xr

from vecfield.evaluate.probabilistic import pointwise_fair_spread
from vecfield.files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def direct_pair_spread(members: np.ndarray, block: int = 4096) -> np.ndarray:
    """Reference: ΣΣ_{i≠j}|X_i − X_j| / (M(M − 1)) by broadcasting; members (points, M) → (points,)."""
    m = members.shape[1]
    out = np.empty(members.shape[0])
    for start in range(0, members.shape[0], block):
        x = members[start : start + block]
        out[start : start + block] = np.abs(x[:, :, None] - x[:, None, :]).sum(axis=(1, 2)) / (m * (m - 1))
    return out


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few points and sizes (CI smoke run)")
    parser.add_argument("--points", type=int, default=65_536, help="grid points per ensemble field")
    args = parser.parse_args()
    points = 4_096 if args.quick else args.points
    sizes = (4, 16) if args.quick else (4, 10, 20, 50, 100)
    repeats = 1 if args.quick else 3
    rng = np.random.default_rng(0)
    rows = []
    for m in sizes:
        members = rng.normal(size=(points, m))
        field = xr.Dataset({"x": (("point", "realization"), members)})
        ours = pointwise_fair_spread(field)["x"].values
        reference = direct_pair_spread(members)
        agreement = float(np.max(np.abs(ours - reference) / np.abs(reference)))
        t_ours = best_time(lambda field=field: pointwise_fair_spread(field)["x"].values, repeats)
        t_reference = best_time(lambda members=members: direct_pair_spread(members), repeats)
        rows.append(
            {
                "members": m,
                "points": points,
                "vecfield_s": t_ours,
                "direct_pairs_s": t_reference,
                "speedup": t_reference / t_ours,
                "max_relative_difference": agreement,
            }
        )
    print(f"fair CRPS spread on {points} points (best of {repeats}; timings on a possibly shared machine)")
    print(f"{'M':>5} {'vecfield [ms]':>14} {'direct O(M²) [ms]':>18} {'speed-up':>9} {'max rel diff':>13}")
    for row in rows:
        print(
            f"{row['members']:>5} {1e3 * row['vecfield_s']:>14.2f} {1e3 * row['direct_pairs_s']:>18.2f} "
            f"{row['speedup']:>9.2f} {row['max_relative_difference']:>13.1e}"
        )
    report = {"benchmark": "crps_spread", "quick": args.quick, "machine": platform.platform(), "rows": rows}
    path = write_text_atomic(RESULTS / "crps_spread.json", json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
