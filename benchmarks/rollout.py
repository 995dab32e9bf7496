"""Forecaster rollout overhead against bare forward passes, and training samples/s.

1. Rollout: ``Forecaster.rollout`` (xarray in and out: stacking, forcings, normalization, the
   shared autoregressive generator, unstacking) for ``--inits`` initializations × ``--steps`` steps,
   against the reference: the same number of bare ``net(x, t, cond)`` calls on ready-made tensors
   of the same shapes. Overhead = rollout time / bare time − 1 (goal ≤ 10 %).
2. Training: optimizer updates per second of the quickstart model on its dataset windows
   (data loading, the k-step loss, backward, AdamW), reported as samples/s.

    PYTHONPATH=. python benchmarks/rollout.py [--quick] [--config configs/quickstart.yaml] [--threads 1]

Without the quickstart dataset (or with ``--quick``) it uses a small synthetic dataset on an 11.25°
grid. Prints a table and writes benchmarks/results/rollout.json.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _world(args: argparse.Namespace):
    """(dataset, spec, windows) of the quickstart config, or the tiny synthetic world."""
    from vecfield.data.statistics import load_statistics
    from vecfield.data.streaming import WindowedDataset
    from vecfield.forecast.build import ForecasterSpec
    from vecfield.forecast.config import load_forecast_config

    config = load_forecast_config(args.config)
    path = Path(config.dataset.output)
    if args.quick or not path.exists():
        sys.path.insert(0, str(ROOT))
        from tests.forecast.helpers import tiny_spec, wave_dataset

        ds = wave_dataset(days=12)
        spec, windows, _ = tiny_spec(ds, n_leads=1)
        spec = dataclasses.replace(spec, model=config.model)
        return ds, spec, windows, "synthetic 16x32"
    windows = WindowedDataset(  # as training reads them (train.in_memory)
        path, 2, 1, config.dataset.time.step_hours, split="train", in_memory=config.train.in_memory
    )
    spec = ForecasterSpec.from_dataset(
        windows, load_statistics(path), config.model, config.dataset.time.step_hours
    )
    return xr.open_zarr(path), spec, windows, str(path)


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _interleaved_best(first, second, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` times of two functions run alternately (fair under shared load)."""
    a, b = [], []
    for _ in range(repeats):
        a.append(_seconds(first))
        b.append(_seconds(second))
    return min(a), min(b)


def main(argv: list[str] | None = None) -> dict:
    """Run both measurements; print the table; write the JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny synthetic world, few steps (CI smoke)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--inits", type=int, default=8)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from vecfield.forecast import Forecaster

    steps = args.steps or (4 if args.quick else 20)
    repeats = 3 if args.quick else 5
    ds, spec, windows, source = _world(args)
    torch.manual_seed(0)
    module = spec.build().eval()
    forecaster = Forecaster(module, spec)
    times = ds["time"].values[: args.inits + 1]
    initial = ds[list(spec.state_layout.variables)].sel(time=times).load()

    net = module.field.net
    c = len(spec.state_layout)
    x = torch.zeros(args.inits, spec.latitude.size * spec.longitude.size, c)
    cond = torch.randn(x.shape[0], x.shape[1], net.cond_channels)
    t = torch.zeros(args.inits)

    def bare() -> None:
        with torch.no_grad():
            for _ in range(steps):
                net(x, t, cond)

    rollout_s, bare_s = _interleaved_best(
        lambda: forecaster.rollout(initial, steps, batch_size=args.inits), bare, repeats
    )

    batch_size, updates = (4, 3) if args.quick else (4, 20)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    module.train()
    order = np.random.default_rng(0).permutation(len(windows))

    def train() -> None:
        for k in range(updates):
            items = [windows[int(i)] for i in order[k * batch_size : (k + 1) * batch_size]]
            batch = torch.utils.data.default_collate(items)
            loss = module(batch.inputs, batch.forcings, batch.static, batch.targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    train_s = _seconds(train)
    result = {
        "source": source,
        "threads": args.threads,
        "inits": args.inits,
        "steps": steps,
        "rollout_s": rollout_s,
        "bare_forward_s": bare_s,
        "rollout_overhead": rollout_s / bare_s - 1,
        "train_samples_per_s": batch_size * updates / train_s,
        "train_updates_per_s": updates / train_s,
        "model": dataclasses.asdict(spec.model),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "note": "timed on a shared machine unless stated otherwise",
    }
    print(f"{'measurement':<40}{'value':>14}")
    print(f"{'rollout (xarray in/out) [s]':<40}{rollout_s:>14.3f}")
    print(f"{'bare forward passes, same count [s]':<40}{bare_s:>14.3f}")
    print(f"{'rollout overhead vs bare (goal ≤ 10%)':<40}{100 * result['rollout_overhead']:>13.1f}%")
    print(f"{'training samples/s':<40}{result['train_samples_per_s']:>14.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "rollout.json"
    from vecfield.files import write_text_atomic

    write_text_atomic(path, json.dumps(result, indent=1))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
