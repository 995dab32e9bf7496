"""Image generation on MNIST: FD against NFE, guided class accuracy, bits/dim against Glow.

    python benchmarks/images.py [--quick] [--threads N] [--mnist ../shared/data/mnist]

Data: the MNIST file in ../shared/data/mnist (10,000 images); images 0–7,999 train every model,
images 8,000–9,999 are held out (never used for training or any choice of settings). Generators
train on uniformly dequantized levels y = 2(k + u)/256 − 1 (``vecfield.density.Dequantization``),
the same data Glow trains on; their samples are quantized back to levels before scoring.

Models (one run, the same seed for each):
- classifier: ``vecfield.quality.images.train_classifier`` on the 8,000 training images; its
  features give FD and k-NN precision/recall;
- flow matching (condot, velocity) and DDPM (ε, 1000-step ᾱ table): the same class-conditional
  UNet (condition dropout 0.1), the same optimizer, steps, batch and EMA;
- Glow (vecfield.flows) on the same dequantized data, the same steps and batch.

Measured:
- FD (classifier features) of N class-conditional samples (w = 1, labels of the held-out
  comparison set) against the first 1,000 held-out images, for flow matching with Euler and Heun
  at several NFE, DDPM ancestral at 1000 steps and DDIM at 50; the noise floor is the FD of N
  other held-out images (held-out 1,000 onwards) against the same 1,000, and the FD of N training
  images shows what a generator that reproduced the training set exactly would score (the
  held-out images come from other writers, so this is above the floor);
- class accuracy of flow-matching samples guided at w ∈ {0, 1, 2, 4} (eq. 15.12), Heun 10 steps;
- bits/dim on held-out images: the flow-matching CNF by the ODE likelihood (Hutchinson, dopri5)
  of log p(x | c), and its class mixture p(x) = Σ_c p(x|c)/10 bounded by bits(x|c) + log₂10/D;
  Glow exactly.

Prints a table, writes benchmarks/results/images[_quick].json (after every section, so an
interrupted run keeps what it measured) and PNG sample grids beside it.

Cost of the full run, from CPU time per unit of work measured with one thread (process time,
so little affected by other load): a UNet training step (batch 64) 0.64 s, a UNet forward pass
on 256 images 1.1 s, a Glow training step 0.39 s, the classifier 41 s. The full settings need
about 3,700 single-thread CPU-seconds (two generators 1,550, DDPM-1000 on 200 samples 880,
Glow 470, the CNF's bits/dim about 250 (332 evaluations with a vector–Jacobian product each in a
reduced run), the other samplers and guidance about 500), i.e. roughly 35–40 minutes on a quiet
2-core machine. ``--quick`` takes under a minute.
"""

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield import VectorFieldModel  # noqa: E402
from vecfield.core.model import network_calls  # noqa: E402
from vecfield.density import Dequantization, TrainSettings, fit  # noqa: E402
from vecfield.files import atomic_path, write_text_atomic  # noqa: E402
from vecfield.flows import Glow  # noqa: E402
from vecfield.images import load_mnist, to_signed  # noqa: E402
from vecfield.nn.unet import UNet  # noqa: E402
from vecfield.quality.images import (  # noqa: E402
    ODEDensity,
    class_accuracy,
    classifier_features,
    feature_frechet_distance,
    image_bits_per_dim,
    precision_recall,
    train_classifier,
)
from vecfield.train.ema import build_ema  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
LEVELS = 256


@dataclass(frozen=True)
class Settings:
    """Everything the run depends on; ``--quick`` shrinks it for a CI smoke run."""

    train_images: int = 8000
    held_out_images: int = 2000
    reference_images: int = 1000  # held-out images FD compares against
    fd_samples: int = 200  # generated (and floor) images per FD value
    guided_per_class: int = 20
    bpd_images: int = 100
    classifier_epochs: int = 5
    channels: int = 16
    channel_mults: tuple[int, ...] = (1, 2)
    train_steps: int = 1200
    batch_size: int = 64
    learning_rate: float = 1e-3
    ema_decay: float = 0.995
    cond_dropout: float = 0.1
    euler_steps: tuple[int, ...] = (2, 4, 8, 16, 20, 32)
    heun_steps: tuple[int, ...] = (1, 2, 4, 8, 10, 16)
    ddpm_steps: int = 1000
    ddim_steps: int = 50
    guidance: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    guided_heun_steps: int = 10
    bpd_tolerance: float = 1e-5
    glow_steps_per_scale: int = 4
    glow_hidden: int = 64
    sample_batch: int = 256
    seed: int = 0


QUICK = Settings(train_images=512, held_out_images=256, reference_images=128, fd_samples=32,
                 guided_per_class=2, bpd_images=4, classifier_epochs=1, channels=8, train_steps=4,
                 batch_size=16, euler_steps=(2, 4), heun_steps=(1, 2), ddpm_steps=20, ddim_steps=5,
                 guided_heun_steps=2, bpd_tolerance=1e-3, glow_steps_per_scale=1, glow_hidden=8)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write (``vecfield.files``)."""
    write_text_atomic(path, json.dumps(payload, indent=2))


def save_grid(images: Tensor, path: Path, columns: int = 10) -> None:
    """A PNG grid of integer images (N, 1, H, W) in [0, 255], written atomically."""
    n, _, h, w = images.shape
    rows = math.ceil(n / columns)
    canvas = torch.zeros(rows * (h + 2), columns * (w + 2), dtype=torch.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * (h + 2) + 1:r * (h + 2) + 1 + h, c * (w + 2) + 1:c * (w + 2) + 1 + w] = images[i, 0]
    with atomic_path(path) as temporary:
        plt.imsave(temporary, canvas.numpy(), cmap="gray", vmin=0, vmax=255, format="png")


def to_levels(y: Tensor) -> Tensor:
    """Samples in the dequantized convention y = 2(k + u)/L − 1 -> integer levels k (the cell of y)."""
    return torch.floor((y + 1) * (LEVELS / 2)).clamp(0, LEVELS - 1).to(torch.int64)


def build_unet(s: Settings) -> UNet:
    return UNet(1, channels=s.channels, channel_mults=s.channel_mults, attention_levels=(),
                mid_attention=True, heads=4, num_classes=10)


def train_generator(method: str, train: Tensor, labels: Tensor,
                    s: Settings) -> tuple[VectorFieldModel, float]:
    """Train a class-conditional UNet with ``method`` on dequantized levels; returns the EMA model."""
    with torch.random.fork_rng():
        torch.manual_seed(s.seed)
        net = build_unet(s)
    model = VectorFieldModel(net, method, cond_dropout=s.cond_dropout, event_shape=(1, 28, 28))
    ema = build_ema(net, s.ema_decay)
    optimizer = torch.optim.Adam(net.parameters(), lr=s.learning_rate)
    warmup = max(1, s.train_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: min(1.0, (k + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * k / s.train_steps)))
    generator = torch.Generator().manual_seed(s.seed)
    dequantize = Dequantization(LEVELS)
    start = time.perf_counter()
    for _ in range(s.train_steps):
        idx = torch.randint(0, train.shape[0], (s.batch_size,), generator=generator)
        loss = model.loss(dequantize(train[idx], generator), labels[idx], generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        ema.update_parameters(net)
    seconds = time.perf_counter() - start
    net.load_state_dict(ema.module.state_dict())
    return model.eval(), seconds


def sample_levels(model: VectorFieldModel, labels: Tensor, s: Settings, seed: int, **kwargs: Any) -> Tensor:
    """Samples for the given labels (N,) as integer levels (N, 1, 28, 28), in batches, seeded."""
    generator = torch.Generator().manual_seed(seed)
    out = [model.sample(batch.shape[0], batch, generator=generator, **kwargs)
           for batch in labels.split(s.sample_batch)]
    return to_levels(torch.cat(out))


def run(s: Settings, mnist: Path, out: Path) -> dict[str, Any]:
    data = load_mnist(mnist / "t10k-images-idx3-ubyte.gz", mnist / "t10k-labels-idx1-ubyte.gz")
    train, train_labels = data.images[:s.train_images], data.labels[:s.train_images]
    held = data.images[8000:8000 + s.held_out_images]
    held_labels = data.labels[8000:8000 + s.held_out_images]
    reference = held[:s.reference_images]
    floor_set = held[s.reference_images:s.reference_images + s.fd_samples]
    fd_labels = held_labels[s.reference_images:s.reference_images + s.fd_samples]
    results: dict[str, Any] = {"settings": asdict(s), "threads": torch.get_num_threads(), "seconds": {}}

    def save() -> None:
        write_json(out, results)

    # ---------------------------------------------------------------- classifier and noise floor
    start = time.perf_counter()
    classifier = train_classifier(to_signed(train, LEVELS), train_labels, epochs=s.classifier_epochs,
                                  seed=s.seed)
    results["seconds"]["classifier"] = time.perf_counter() - start
    results["classifier_held_out_accuracy"] = class_accuracy(classifier, to_signed(held, LEVELS), held_labels)
    reference_features = classifier_features(classifier, to_signed(reference, LEVELS))

    def scores(levels: Tensor) -> dict[str, float]:
        features = classifier_features(classifier, to_signed(levels, LEVELS))
        precision, recall = precision_recall(reference_features, features, k=3)
        return {"fd": feature_frechet_distance(features, reference_features), "precision": precision,
                "recall": recall}

    results["fd_floor"] = scores(floor_set)
    results["fd_training_images"] = scores(train[:s.fd_samples])
    print(f"classifier held-out accuracy {results['classifier_held_out_accuracy']:.4f}; FD noise floor "
          f"({s.fd_samples} vs {s.reference_images} held-out images) {results['fd_floor']['fd']:.3f}; "
          f"{s.fd_samples} training images: {results['fd_training_images']['fd']:.3f}", flush=True)
    save()

    # ---------------------------------------------------------------- generators
    models = {}
    for method in ("flow_matching", "ddpm"):
        models[method], seconds = train_generator(method, train, train_labels, s)
        results["seconds"][f"train_{method}"] = seconds
        print(f"trained {method}: {s.train_steps} steps in {seconds:.0f} s", flush=True)
    save()

    # ---------------------------------------------------------------- FD against NFE
    runs = [("flow_matching", "euler", n) for n in s.euler_steps]
    runs += [("flow_matching", "heun", n) for n in s.heun_steps]
    runs += [("ddpm", "ddpm", s.ddpm_steps), ("ddpm", "ddim", s.ddim_steps)]
    results["fd"] = []
    for method, solver, steps in runs:
        start = time.perf_counter()
        levels = sample_levels(models[method], fd_labels, s, seed=s.seed + 1, solver=solver, steps=steps)
        row = {"method": method, "solver": solver, "steps": steps, "nfe": network_calls(solver, steps),
               **scores(levels), "seconds": time.perf_counter() - start}
        results["fd"].append(row)
        print(f"{method:>13} {solver:>5} {steps:4d} steps  NFE {row['nfe']:4d}  FD {row['fd']:8.3f}  "
              f"precision {row['precision']:.3f}  recall {row['recall']:.3f}  ({row['seconds']:.0f} s)",
              flush=True)
        if (solver, steps) in {("heun", 10), ("ddpm", s.ddpm_steps)}:
            save_grid(levels[:100], out.with_name(f"{out.stem}_{method}_{solver}{steps}.png"))
        save()

    # ---------------------------------------------------------------- guided class accuracy
    requested = torch.arange(10).repeat_interleave(s.guided_per_class)
    results["guidance"] = []
    for w in s.guidance:
        levels = sample_levels(models["flow_matching"], requested, s, seed=s.seed + 2, solver="heun",
                               steps=s.guided_heun_steps, guidance=w)
        accuracy = class_accuracy(classifier, to_signed(levels, LEVELS), requested)
        results["guidance"].append({"w": w, "class_accuracy": accuracy, "samples": int(requested.numel())})
        print(f"guidance w = {w}: {accuracy:.3f} classified as requested", flush=True)
        # one row per sample index, one column per requested class
        grid = levels.reshape(10, s.guided_per_class, 1, 28, 28)[:, :10].transpose(0, 1)
        per_class = grid.reshape(-1, 1, 28, 28)
        save_grid(per_class, out.with_name(f"{out.stem}_guided_w{w:g}.png"))
        save()

    # ---------------------------------------------------------------- bits/dim: CNF vs Glow
    bpd_images, bpd_labels = held[:s.bpd_images], held_labels[:s.bpd_images]
    with torch.random.fork_rng():
        torch.manual_seed(s.seed)
        glow = Glow((1, 28, 28), num_steps=s.glow_steps_per_scale, num_scales=2,
                    hidden_features=s.glow_hidden)
    start = time.perf_counter()
    settings = TrainSettings(steps=s.train_steps, batch_size=s.batch_size, learning_rate=s.learning_rate,
                             seed=s.seed)
    fit(glow, train, settings, dequantization=Dequantization(LEVELS))
    results["seconds"]["train_glow"] = time.perf_counter() - start
    start = time.perf_counter()
    fm = models["flow_matching"]
    calls = {"n": 0}
    hook = fm.net.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    cnf = ODEDensity(fm, cond=bpd_labels, divergence="hutchinson", rtol=s.bpd_tolerance, atol=s.bpd_tolerance,
                     generator=torch.Generator().manual_seed(s.seed + 3))
    cnf_bits = image_bits_per_dim(cnf, bpd_images, LEVELS, batch_size=s.bpd_images,
                                  generator=torch.Generator().manual_seed(s.seed + 4))
    hook.remove()
    results["seconds"]["cnf_bits_per_dim"] = time.perf_counter() - start
    glow_bits = image_bits_per_dim(glow, bpd_images, LEVELS,
                                   generator=torch.Generator().manual_seed(s.seed + 4))
    glow_all = image_bits_per_dim(glow, held, LEVELS, generator=torch.Generator().manual_seed(s.seed + 4))
    mixture_bound = cnf_bits + math.log2(10) / (28 * 28)
    results["bits_per_dim"] = {"images": s.bpd_images, "fm_conditional": cnf_bits,
                               "fm_mixture_upper_bound": mixture_bound, "glow": glow_bits,
                               "glow_all_held_out": glow_all, "cnf_ode_evaluations": calls["n"],
                               "uniform": math.log2(LEVELS)}
    print(f"bits/dim on {s.bpd_images} held-out images: FM CNF log p(x|c) {cnf_bits:.3f} (mixture ≤ "
          f"{mixture_bound:.3f}, {calls['n']} ODE evaluations), Glow {glow_bits:.3f} "
          f"(all {held.shape[0]} held out: {glow_all:.3f})", flush=True)
    save()
    results["targets"] = targets(results)
    save()
    return results


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's three targets, each with the numbers it compares."""
    ddpm = next(r["fd"] for r in results["fd"] if r["solver"] == "ddpm")
    fm_best = min((r for r in results["fd"] if r["method"] == "flow_matching" and r["nfe"] <= 20),
                  key=lambda r: r["fd"])
    w2 = next((g["class_accuracy"] for g in results["guidance"] if g["w"] == 2.0), None)
    bits = results["bits_per_dim"]
    return {
        "fm_le20_nfe_reaches_ddpm1000_fd": {"fm_fd": fm_best["fd"], "fm_solver": fm_best["solver"],
                                            "fm_nfe": fm_best["nfe"], "ddpm_fd": ddpm,
                                            "met": fm_best["fd"] <= ddpm},
        "w2_class_accuracy_ge_0.95": {"accuracy": w2, "met": w2 is not None and w2 >= 0.95},
        "fm_bits_within_0.1_of_glow": {"fm": bits["fm_mixture_upper_bound"], "glow": bits["glow"],
                                       "met": bits["fm_mixture_upper_bound"] <= bits["glow"] + 0.1},
    }


def print_table(results: dict[str, Any]) -> None:
    print("\n| model | sampler | steps | NFE | FD | precision | recall |")
    print("|---|---|---|---|---|---|---|")
    floor = results["fd_floor"]
    print(f"| held-out real (noise floor) | – | – | – | {floor['fd']:.3f} | {floor['precision']:.3f} | "
          f"{floor['recall']:.3f} |")
    copy = results["fd_training_images"]
    print(f"| training images (a perfect copy of the training set) | – | – | – | {copy['fd']:.3f} | "
          f"{copy['precision']:.3f} | {copy['recall']:.3f} |")
    for r in results["fd"]:
        print(f"| {r['method']} | {r['solver']} | {r['steps']} | {r['nfe']} | {r['fd']:.3f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} |")
    print("\n| guidance w | class accuracy |\n|---|---|")
    for g in results["guidance"]:
        print(f"| {g['w']:g} | {g['class_accuracy']:.3f} |")
    b = results["bits_per_dim"]
    print(f"\nbits/dim ({b['images']} held-out images): FM CNF {b['fm_conditional']:.3f} (mixture ≤ "
          f"{b['fm_mixture_upper_bound']:.3f}), Glow {b['glow']:.3f}")
    for name, target in results["targets"].items():
        print(f"target {name}: {'met' if target['met'] else 'MISSED'} {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny CI smoke run (< 1 min)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--train-steps", type=int, default=None, help="override the training steps")
    parser.add_argument("--fd-samples", type=int, default=None, help="override the samples per FD value")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else Settings()
    if args.train_steps:
        settings = replace(settings, train_steps=args.train_steps)
    if args.fd_samples:
        settings = replace(settings, fd_samples=args.fd_samples)
    if not (args.mnist / "t10k-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"MNIST not found in {args.mnist}; pass --mnist FOLDER with the IDX files")
    out = args.out or RESULTS / ("images_quick.json" if args.quick else "images.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = run(settings, args.mnist, out)
    results["wall_seconds"] = time.perf_counter() - start
    write_json(out, results)
    print_table(results)
    print(f"\nwrote {out} ({results['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
