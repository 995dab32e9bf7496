"""A tiny, seeded training run used by the trainer tests, in-process and as a subprocess script.

As a script (also under torchrun): ``python tests/train/tiny_training.py RUN_DIR [options]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from vecfield.nn import MLP
from vecfield.train import Trainer, TrainerConfig


class NoisyRegression:
    """Mean-squared error of ``model(x + noise·ε)`` against y, ε ~ N(0, I) from the global torch RNG
    (so exact resumption needs the RNG state); ``delay`` seconds of sleep per loss slow it down
    for the kill test."""

    def __init__(self, noise: float = 0.05, delay: float = 0.0) -> None:
        self.noise, self.delay = noise, delay
        self.curriculum_values: list[int] = []

    def loss(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch
        if self.delay:
            time.sleep(self.delay)
        if self.noise:
            x = x + self.noise * torch.randn_like(x)
        return torch.mean((model(x, None) - y) ** 2)

    def validate(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
        x, y = batch
        return {"mse": float(torch.mean((model(x, None) - y) ** 2))}

    def set_curriculum(self, value: int) -> None:
        self.curriculum_values.append(value)


def dataset(n: int = 64, features: int = 4, seed: int = 1,
            dtype: torch.dtype = torch.float32) -> TensorDataset:
    """y = sin(x·w) + 0.1·|x|² on x ~ N(0, I): (n, features) → (n, 1)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator, dtype=torch.float64)
    w = torch.randn(features, 1, generator=generator, dtype=torch.float64)
    y = torch.sin(x @ w) + 0.1 * (x**2).sum(dim=1, keepdim=True)
    return TensorDataset(x.to(dtype), y.to(dtype))


def model(dtype: torch.dtype = torch.float32, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(4, out_features=1, hidden_features=16, depth=2, time_features=0).to(dtype)


def config(run_dir: str, **overrides: Any) -> TrainerConfig:
    base = TrainerConfig(run_dir=run_dir, max_steps=40, batch_size=8, lr=1e-2, warmup_steps=5,
                         checkpoint_every=3, keep_last=2, ema_decay=0.9, progress_bar=False, device="cpu")
    return replace(base, **overrides)


def trainer(run_dir: str, *, noise: float = 0.05, delay: float = 0.0, dtype: torch.dtype = torch.float32,
            validate: bool = False, **overrides: Any) -> Trainer:
    if validate:
        overrides = {"validate_every": 5, "best_metric": "mse", **overrides}
    return Trainer(NoisyRegression(noise, delay), model(dtype), dataset(dtype=dtype),
                   config(run_dir, **overrides),
                   val_data=dataset(n=20, seed=2, dtype=dtype) if validate else None,
                   metadata={"note": "tiny", "stats": {"mean": torch.zeros(4, dtype=dtype)}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--validate", action="store_true")
    args = parser.parse_args()
    dtype = torch.float64 if args.float64 else torch.float32
    with trainer(args.run_dir, noise=args.noise, delay=args.delay, dtype=dtype, validate=args.validate,
                 max_steps=args.steps, checkpoint_every=args.checkpoint_every,
                 batch_size=args.batch_size) as run:
        run.fit()


if __name__ == "__main__":
    main()
