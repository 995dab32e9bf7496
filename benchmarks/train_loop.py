"""Benchmark of the training engine's overhead (vecfield.train).

The reference is a bare PyTorch loop doing the same arithmetic per step — forward, backward,
gradient clipping, AdamW, LambdaLR and the EMA update — with no logging, checkpoints or progress
bar. The Trainer runs the same model on the same data with a CSV row every step (its default),
the tqdm bar off and checkpoints every ``--checkpoint-every`` steps; the table reports steps/s of
both and their ratio. In the same run it times one checkpoint write (atomic, fsynced) and one
weights-only load of that checkpoint, and reports its size.

    PYTHONPATH=. python benchmarks/train_loop.py            # full run
    PYTHONPATH=. python benchmarks/train_loop.py --quick    # CI smoke test (seconds)

Results go to benchmarks/results/train_loop.json (written atomically).
"""

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from vecfield.files import atomic_write
from vecfield.nn import MLP
from vecfield.train import Trainer, TrainerConfig, load_checkpoint
from vecfield.train.ema import build_ema
from vecfield.train.optim import build_optimizer, build_scheduler

FEATURES, HIDDEN, DEPTH, BATCH = 32, 256, 3, 256


class Regression:
    def loss(self, model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return torch.mean((model(x, None) - y) ** 2)


def data(n: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, FEATURES, generator=generator)
    return TensorDataset(x, torch.sin(x).sum(dim=1, keepdim=True))


def model() -> MLP:
    torch.manual_seed(0)
    return MLP(FEATURES, out_features=1, hidden_features=HIDDEN, depth=DEPTH, time_features=0)


def bare_loop(steps: int, config: TrainerConfig) -> float:
    """Seconds for ``steps`` updates of the reference loop (same arithmetic as the Trainer)."""
    net, task = model(), Regression()
    dataset = data(BATCH * 8)
    optimizer, ema = build_optimizer(net, config), build_ema(net, config.ema_decay)
    scheduler = build_scheduler(optimizer, config)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True)
    start, done = time.perf_counter(), 0
    while done < steps:
        for batch in loader:
            loss = task.loss(net, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip_norm)
            loss.item()
            optimizer.step()
            scheduler.step()
            ema.update_parameters(net)
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start


def trainer_loop(steps: int, config: TrainerConfig) -> tuple[float, Trainer]:
    run = Trainer(Regression(), model(), data(BATCH * 8), config)
    start = time.perf_counter()
    run.fit()
    return time.perf_counter() - start, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps, one repeat (CI smoke test)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/train_loop.json")
    args = parser.parse_args()
    steps, repeats = (30, 1) if args.quick else (args.steps, args.repeats)

    bare_times, trainer_times, save_times, load_times, size = [], [], [], [], 0
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats + 1):  # the first round warms up (imports, allocator)
            config = TrainerConfig(run_dir=f"{folder}/run{repeat}", max_steps=steps, batch_size=BATCH,
                                   warmup_steps=steps // 10, checkpoint_every=args.checkpoint_every,
                                   progress_bar=False, device="cpu")
            bare = bare_loop(steps, config)
            elapsed, run = trainer_loop(steps, config)
            start = time.perf_counter()
            run.save_checkpoint()
            save = time.perf_counter() - start
            path = run.store.latest()
            start = time.perf_counter()
            load_checkpoint(path)
            load = time.perf_counter() - start
            size = path.stat().st_size
            run.close()
            if repeat:
                bare_times.append(bare)
                trainer_times.append(elapsed)
                save_times.append(save)
                load_times.append(load)

    bare_rate = steps / statistics.median(bare_times)
    trainer_rate = steps / statistics.median(trainer_times)
    checkpoints = math.ceil(steps / args.checkpoint_every)
    result = {
        "model": f"MLP {FEATURES}->{HIDDEN}x{DEPTH}->1", "batch": BATCH, "steps": steps, "repeats": repeats,
        "checkpoints_per_run": checkpoints, "threads": torch.get_num_threads(),
        "bare_steps_per_s": bare_rate, "trainer_steps_per_s": trainer_rate,
        "trainer_over_bare_time_ratio": bare_rate / trainer_rate,
        "checkpoint_save_s": statistics.median(save_times),
        "checkpoint_load_s": statistics.median(load_times),
        "checkpoint_bytes": size, "quick": args.quick,
    }
    print(f"{'loop':<40} {'steps/s':>10}")
    print(f"{'bare PyTorch (reference)':<40} {bare_rate:>10.1f}")
    print(f"{f'vecfield Trainer ({checkpoints} checkpoints, CSV)':<40} {trainer_rate:>10.1f}")
    print(f"time ratio Trainer / bare: {result['trainer_over_bare_time_ratio']:.3f}")
    print(f"checkpoint: save {result['checkpoint_save_s'] * 1e3:.1f} ms, "
          f"load {result['checkpoint_load_s'] * 1e3:.1f} ms, {size / 1e6:.2f} MB")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2).encode()
    atomic_write(out, lambda file: file.write(text))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
