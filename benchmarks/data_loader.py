"""Data-loader throughput: windowed samples/s from a local zarr, against two references.

1. A raw read of the same bytes: the zarr arrays the loader reads (states and TISR; the loader
   recomputes the year/day progress features instead of reading them) for the same windows, read
   with zarr directly (no stacking into (nodes, channels), no torch). Goal: loader ≥ 70% of it.
2. The mesh GNN's training-step consumption at the quickstart configuration: the model section and
   batch size of ``configs/quickstart.yaml`` built on this store's channels, timed over
   forward + backward + AdamW steps on a batch already in memory, in the same run, as samples/s.
   Goal: loader ≥ 5× consumption.

Readers: ``WindowedDataset`` streaming in this process, a DataLoader with worker processes, and
``WindowedDataset(in_memory=True)`` (the split read once, windows sliced; its one-off load time
is reported separately). The loader/GNN ratio uses the fastest reader.

The store is built with vecfield's own builder from a synthetic source: 32×64 grid (5.625°),
geopotential and temperature on 3 levels, 2m_temperature, the 5 forcings and 2 static fields,
``--times`` 6-hourly states (time chunk 1, full spatial chunks, as the builder writes).

    python benchmarks/data_loader.py [--quick]

Prints a table and writes benchmarks/results/data_loader.json.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import zarr

from vecfield.config import from_dict
from vecfield.data.build import build_dataset
from vecfield.data.config import DatasetConfig
from vecfield.data.regrid import regular_grid
from vecfield.data.statistics import load_statistics
from vecfield.data.streaming import PROGRESS_FORCINGS, WindowedDataset, make_dataloader
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.config import load_forecast_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def synthetic_source(path: Path, times: int, seed: int = 0) -> None:
    """A 6-hourly canonical store at 5.625° with smooth random fields."""
    rng = np.random.default_rng(seed)
    lat, lon = regular_grid(5.625, include_poles=False)
    time_axis = np.datetime64("2000-01-01T00", "ns") + np.arange(times) * np.timedelta64(6, "h")
    shape3, shape2 = (times, 3, lat.size, lon.size), (times, lat.size, lon.size)
    dims3, dims2 = ("time", "level", "latitude", "longitude"), ("time", "latitude", "longitude")
    xr.Dataset(
        {
            "geopotential": (dims3, (5e4 + 1e3 * rng.standard_normal(shape3)).astype(np.float32)),
            "temperature": (dims3, (250 + 10 * rng.standard_normal(shape3)).astype(np.float32)),
            "2m_temperature": (dims2, (280 + 10 * rng.standard_normal(shape2)).astype(np.float32)),
            "land_sea_mask": (
                ("latitude", "longitude"),
                (rng.random((lat.size, lon.size)) > 0.7).astype(np.float32),
            ),
            "geopotential_at_surface": (
                ("latitude", "longitude"),
                rng.normal(1e3, 1e3, (lat.size, lon.size)),
            ),
        },
        coords={"time": time_axis, "level": [500, 850, 1000], "latitude": lat, "longitude": lon},
    ).to_zarr(path, zarr_format=2)


def build_store(folder: Path, times: int) -> Path:
    """The benchmark store, built by vecfield's builder."""
    synthetic_source(folder / "source.zarr", times)
    end = np.datetime64("2000-01-01T00") + (times - 1) * np.timedelta64(6, "h")
    config = from_dict(
        DatasetConfig,
        {
            "output": str(folder / "bench.zarr"),
            "sources": [{"path": str(folder / "source.zarr")}],
            "variables": ["geopotential", "temperature", "2m_temperature"],
            "static": ["land_sea_mask", "geopotential_at_surface"],
            "time": {"start": "2000-01-01T00", "end": str(end)},
            "splits": {"train": ["2000-01-01T00", str(end)]},
            "time_block": 128,
        },
    )
    return build_dataset(config, progress=False)


def raw_rate(store: Path, data: WindowedDataset, order: np.ndarray) -> float:
    """Windows/s reading the same chunks with zarr directly (orthogonal time selection)."""
    group = zarr.open_group(str(store), mode="r")
    forcings = [name for name in data.forcing_layout.variables if name not in PROGRESS_FORCINGS]
    names = [*data.state_layout.variables, *forcings]
    arrays = [group[name] for name in names]
    start = time.perf_counter()
    for index in order:
        indices = data.window_times(int(index))
        for array in arrays:
            array.get_orthogonal_selection((indices,) + (slice(None),) * (array.ndim - 1))
    return order.size / (time.perf_counter() - start)


def loader_rate(data: WindowedDataset, order: np.ndarray) -> float:
    """Windows/s from WindowedDataset.__getitem__ in this process."""
    start = time.perf_counter()
    for index in order:
        data[int(index)]
    return order.size / (time.perf_counter() - start)


def dataloader_rate(data: WindowedDataset, batches: int, workers: int) -> float:
    """Samples/s through a DataLoader (batch 1, shuffled) with ``workers`` worker processes."""
    loader = make_dataloader(data, batch_size=1, shuffle=True, num_workers=workers, prefetch_factor=4)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        try:
            next(iterator)
        except StopIteration:
            break
        count += 1
    return count / (time.perf_counter() - start)


def gnn_consumption(data: WindowedDataset, store: Path, steps: int) -> float:
    """Samples/s the quickstart forecaster consumes in training (forward, backward, AdamW step).

    The model section and batch size come from configs/quickstart.yaml; the network is built on
    this store's channel layout and statistics. One batch is read beforehand, so loading is excluded.
    """
    config = load_forecast_config(ROOT / "configs" / "quickstart.yaml")
    spec = ForecasterSpec.from_dataset(data, load_statistics(store), config.model, 6)
    torch.manual_seed(0)
    module = spec.build().train()
    batch_size = config.train.batch_size
    batch = torch.utils.data.default_collate([data[i] for i in range(batch_size)])
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)

    def update() -> None:
        loss = module(batch.inputs, batch.forcings, batch.static, batch.targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    update()  # warm-up: first-call allocations and lazy imports
    start = time.perf_counter()
    for _ in range(steps):
        update()
    return batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    """Run the benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small store and few samples (CI smoke run)")
    parser.add_argument("--times", type=int, default=None, help="6-hourly states in the store (default 400)")
    parser.add_argument(
        "--samples", type=int, default=None, help="windows read per measurement (default 300)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gnn-steps", type=int, default=None, help="timed GNN training steps (default 20)")
    args = parser.parse_args()
    times = args.times or (60 if args.quick else 400)
    samples = args.samples or (40 if args.quick else 300)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        store = build_store(Path(folder), times)
        build_seconds = time.perf_counter() - t0
        data = WindowedDataset(store, n_inputs=2, n_leads=1)
        order = np.random.default_rng(0).integers(0, len(data), size=samples)
        raw_rate(store, data, order[: min(10, samples)])  # warm the page cache for both readers
        raw = raw_rate(store, data, order)
        single = loader_rate(data, order)
        workers = dataloader_rate(data, samples, args.workers) if args.workers > 0 else float("nan")
        t0 = time.perf_counter()
        held = WindowedDataset(store, n_inputs=2, n_leads=1, in_memory=True)
        load_seconds = time.perf_counter() - t0
        in_memory = loader_rate(held, order)
        sample = data[0]
        consumption = gnn_consumption(data, store, args.gnn_steps or (3 if args.quick else 20))
    streamed = max(single, workers) if np.isfinite(workers) else single  # the ≥ 70 % of raw goal
    best = max(streamed, in_memory)  # the ≥ 5× consumption goal: the fastest reader
    rows = [
        ("raw zarr read of the same chunks", raw, 1.0),
        ("WindowedDataset, 1 process", single, single / raw),
        (f"DataLoader, {args.workers} workers, prefetch 4", workers, workers / raw),
        ("WindowedDataset in memory, 1 process", in_memory, in_memory / raw),
        ("mesh GNN training consumption (quickstart model)", consumption, consumption / raw),
    ]
    print(
        f"store: {times} states, 32×64 grid, sample inputs {tuple(sample.inputs.shape)}, "
        f"forcings {tuple(sample.forcings.shape)}; built in {build_seconds:.1f} s"
    )
    print(f"in-memory load of the whole split: {load_seconds:.2f} s, {held.memory_bytes / 2**20:.1f} MiB")
    print(f"{'reader':<52} {'samples/s':>10} {'vs raw':>8}")
    for name, rate, ratio in rows:
        print(f"{name:<52} {rate:>10.1f} {ratio:>8.2f}")
    print(
        f"streaming loader / raw (best): {streamed / raw:.2f} (goal ≥ 0.70); fastest loader / GNN "
        f"consumption: {best / consumption:.1f}× (goal ≥ 5×)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "times": times,
        "samples": samples,
        "workers": args.workers,
        "raw_samples_per_s": raw,
        "loader_samples_per_s": single,
        "dataloader_samples_per_s": workers,
        "in_memory_samples_per_s": in_memory,
        "in_memory_load_seconds": load_seconds,
        "in_memory_mib": held.memory_bytes / 2**20,
        "loader_vs_raw": streamed / raw,
        "gnn_samples_per_s": consumption,
        "loader_vs_gnn": best / consumption,
        "build_seconds": build_seconds,
        "quick": args.quick,
    }
    (RESULTS / "data_loader.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS / 'data_loader.json'}")


if __name__ == "__main__":
    main()
