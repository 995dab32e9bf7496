"""``compute_climatology`` on a lazily opened store laid out as vecfield's build writes it.

The build writes one time step per zarr chunk. The store here has the quickstart's layout
(5.625° grid of 64 × 32, 6-hourly, geopotential and u, v at 500/850 hPa and the forcings, plus a
static land-sea mask without a time dim) over ``--years`` years of seeded noise. It times, on the
same store: loading the variables into memory; the climatology of the loaded data; and the
climatology of the lazy (dask) store, the way docs/evaluate.md used to call it.

    PYTHONPATH=. python benchmarks/climatology.py [--years 2] [--store /tmp/vecfield_climatology.zarr]

Prints the three times and the dask graph size, and writes benchmarks/results/climatology.json.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from vecfield import evaluate as ev
from vecfield.data.forcings import compute_forcings
from vecfield.files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def make_store(path: Path, years: int) -> None:
    """The store described in the module docstring, one time step per chunk."""
    times = np.arange(np.datetime64("2000-01-01T00", "ns"), np.datetime64(f"{2000 + years}-01-01T00", "ns"),
                      np.timedelta64(6, "h"))
    lat, lon = np.linspace(-87.1875, 87.1875, 32), np.arange(64) * 5.625
    rng = np.random.default_rng(0)
    dims = ("time", "level", "latitude", "longitude")
    state = {name: (dims, rng.normal(size=(times.size, 2, 32, 64)).astype(np.float32))
             for name in ("geopotential", "u_component_of_wind", "v_component_of_wind")}
    ds = xr.Dataset(state, coords={"time": times, "level": [500, 850], "latitude": lat, "longitude": lon})
    ds = ds.merge(compute_forcings(times, lat, lon))
    ds["land_sea_mask"] = (("latitude", "longitude"), (rng.random((32, 64)) > 0.7).astype(np.float32))
    ds.chunk({"time": 1}).to_zarr(path, mode="w", zarr_format=2)


def main() -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--store", type=Path, default=Path("/tmp/vecfield_climatology.zarr"))
    args = parser.parse_args()
    if not args.store.exists():
        make_store(args.store, args.years)
    lazy = xr.open_zarr(args.store)
    start = time.perf_counter()
    loaded = lazy.load()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    ev.compute_climatology(loaded)
    eager_s = time.perf_counter() - start
    lazy = xr.open_zarr(args.store)
    climatology = ev.compute_climatology(lazy)
    tasks = len(dict(climatology.__dask_graph__()))
    start = time.perf_counter()
    climatology.compute()
    dask_s = time.perf_counter() - start
    result = {"years": args.years, "times": int(lazy.sizes["time"]), "load_s": load_s,
              "climatology_in_memory_s": eager_s, "climatology_dask_s": dask_s, "dask_tasks": tasks}
    for key, value in result.items():
        print(f"{key:<28}{value:>12.1f}" if isinstance(value, float) else f"{key:<28}{value:>12}")
    write_text_atomic(RESULTS / "climatology.json", json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
