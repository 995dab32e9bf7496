"""Train a vector-field generator on a 2-D toy density and plot its samples next to the data.

    python pipelines/train_toy_generator.py --dataset checkerboard --out runs/toy

Trains with ``vecfield.train.Trainer`` on steps × batch points drawn once (Adam, cosine decay to 0,
an EMA of the weights; the run in ``--out/train`` resumes when rerun). Writes into --out:
``samples.png`` (data | samples), ``model.pt`` (EMA weights, a state dict) and ``metrics.json``
(energy distance to fresh data with the data-vs-data floor, held-out NLL in nats against the true
entropy where it has a closed form). Every file is written to a temporary name in the same folder,
then renamed.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from vecfield import cli  # first: sets OpenMP's wait policy before torch loads

# isort: split
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from vecfield import VectorFieldModel
from vecfield.core.model import METHODS
from vecfield.core.solvers import SOLVERS
from vecfield.files import atomic_write, save_figure_atomic, write_text_atomic
from vecfield.nn import MLP
from vecfield.quality.point_clouds import energy_distance
from vecfield.toys import SAMPLERS, TRUE_ENTROPY, FieldTask, ToyDataset, sample_toy
from vecfield.train import Trainer, TrainerConfig

GENERATIVE_METHODS = sorted(name for name in METHODS if name != "deterministic")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(SAMPLERS), default="checkerboard")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if absent)")
    parser.add_argument("--method", choices=GENERATIVE_METHODS, default="flow_matching")
    parser.add_argument("--steps", type=int, default=6000, help="training steps")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=int, default=128, help="MLP width")
    parser.add_argument("--depth", type=int, default=3, help="MLP hidden layers")
    parser.add_argument("--fourier-features", type=int, default=64,
                        help="random Fourier features of the input (0: raw coordinates); they sharpen edges")
    parser.add_argument("--fourier-scale", type=float, default=0.5,
                        help="standard deviation of the Fourier frequencies, in cycles per unit")
    parser.add_argument("--ema", type=float, default=None,
                        help="EMA decay of the weights used to sample (default min(0.999, 1 − 10/steps))")
    parser.add_argument("--solver", choices=SOLVERS, default=None, help="sampler (default: the method's)")
    parser.add_argument("--sample-steps", type=int, default=None,
                        help="sampler steps (default: the method's)")
    parser.add_argument("--samples", type=int, default=5000, help="samples to plot and score")
    parser.add_argument("--nll-points", type=int, default=1000, help="held-out points for the NLL (0 skips)")
    parser.add_argument("--seed", type=int, default=0)
    args = cli.parse_args(parser, argv)
    for name in ("steps", "batch_size", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.fourier_features < 0 or not args.fourier_scale > 0:
        parser.error("--fourier-features must be ≥ 0 and --fourier-scale positive")
    return args


def ema_decay(steps: int) -> float:
    """0.999, shortened for short runs so that the average forgets the initial weights (≈ steps/10)."""
    return min(0.999, 1 - 10 / steps)


def plot(data: torch.Tensor, samples: torch.Tensor, title: str, path: Path) -> None:
    """Two square 2-D histograms side by side: data | samples."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    limit = float(data.abs().max()) * 1.05
    for ax, points, name in zip(axes, (data, samples), ("data", "samples"), strict=True):
        ax.hist2d(points[:, 0].numpy(), points[:, 1].numpy(), bins=120, range=[[-limit, limit]] * 2,
                  cmap="magma")
        ax.set_title(name)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    net = MLP(2, hidden_features=args.hidden, depth=args.depth, fourier_features=args.fourier_features,
              fourier_scale=args.fourier_scale)
    model = VectorFieldModel(net, args.method)
    data = ToyDataset(args.dataset, args.steps * args.batch_size, seed=args.seed + 1)
    config = TrainerConfig(  # Adam (AdamW without decay) on a cosine to 0, no clipping, as the toy needs
        run_dir=str(args.out / "train"), max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        betas=(0.9, 0.999), weight_decay=0.0, min_lr_ratio=0.0, grad_clip_norm=None,
        ema_decay=args.ema if args.ema is not None else ema_decay(args.steps), seed=args.seed,
        log_every=100, checkpoint_every=args.steps, device="cpu")
    start = time.perf_counter()
    with Trainer(FieldTask(), model, data, config) as trainer:
        trainer.fit()
        trained = trainer.ema_model
    train_seconds = time.perf_counter() - start
    assert isinstance(trained, VectorFieldModel)

    evaluation = torch.Generator().manual_seed(args.seed + 2)
    samples = trained.sample(args.samples, steps=args.sample_steps, solver=args.solver, generator=evaluation)
    data = sample_toy(args.dataset, args.samples, evaluation)
    other = sample_toy(args.dataset, args.samples, evaluation)
    metrics: dict[str, Any] = {
        "dataset": args.dataset, "method": args.method, "train_steps": args.steps,
        "mlp": {"hidden_features": args.hidden, "depth": args.depth,
                "fourier_features": args.fourier_features, "fourier_scale": args.fourier_scale},
        "train_seconds": round(train_seconds, 2),
        "energy_distance": float(energy_distance(samples, data)),
        "energy_distance_floor": float(energy_distance(other, data)),
        "true_entropy_nats": TRUE_ENTROPY.get(args.dataset),
        "heldout_nll_nats": None,
    }
    print(f"energy distance to fresh data {metrics['energy_distance']:.5f} "
          f"(data-vs-data floor {metrics['energy_distance_floor']:.5f})")
    if args.nll_points:
        heldout = sample_toy(args.dataset, args.nll_points, evaluation)
        nll = -trained.log_prob(heldout).mean().item()
        metrics["heldout_nll_nats"] = nll
        entropy = TRUE_ENTROPY.get(args.dataset)
        reference = f"true entropy {entropy:.3f} nats, gap {nll - entropy:+.3f}" if entropy else \
            "no closed-form entropy for this dataset"
        print(f"held-out NLL {nll:.3f} nats ({nll / (2 * math.log(2)):.3f} bits/dim); {reference}")

    png = args.out / "samples.png"
    plot(data, samples, f"{args.method} on {args.dataset}: {args.steps} steps", png)
    atomic_write(args.out / "model.pt", lambda file: torch.save(trained.state_dict(), file))
    write_text_atomic(args.out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"wrote {png} (data | samples), {args.out / 'model.pt'} and {args.out / 'metrics.json'}")
    return metrics


if __name__ == "__main__":
    sys.exit(cli.run(main))
