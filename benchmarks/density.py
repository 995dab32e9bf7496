"""Held-out NLL of every density model, and zuko as the named reference, in one run.

    python benchmarks/density.py [--quick] [--threads N]

Datasets:
- 2-D toys (8gaussians, checkerboard): held-out NLL in nats against the true entropy
  (``vecfield.toys.TRUE_ENTROPY``);
- sklearn's 8×8 digits, split train 0–1000 / validation 1000–1350 / test 1350–1797, uniformly
  dequantized, in bits/dim (uniform baseline log₂ 17 = 4.087).

Models: GMM (EM; components chosen on validation for digits), VAE (IWAE bound), NICE, RealNVP,
Glow (multi-scale with a ConvNet conditioner on digits), RealNVP with an MLP conditioner on flat
vectors, and zuko's RealNVP and NSF at the same width, depth, number of transforms and training
budget. For the flows on flat vectors it also measures log_prob throughput (examples/s, best of
several timed calls) and reports ratios ours/zuko. Prints a table, writes
``benchmarks/results/density[_quick].json``.
"""

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import zuko
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield.density import (  # noqa: E402
    VAE,
    Dequantization,
    GaussianMixture,
    TrainSettings,
    fit,
    held_out_report,
    mean_log_likelihood,
)
from vecfield.flows import NICE, Glow, RealNVP  # noqa: E402
from vecfield.images import load_digits  # noqa: E402
from vecfield.toys import TRUE_ENTROPY, sample_toy  # noqa: E402


class ZukoDensity(nn.Module):
    """zuko flow behind the vecfield density contract (flat vectors), for the comparison only."""

    exact_log_prob = True

    def __init__(self, flow: zuko.flows.Flow, features: int) -> None:
        super().__init__()
        self.flow = flow
        self.event_shape = (features,)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.flow().log_prob(x)

    def training_loss(self, x: Tensor) -> Tensor:
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.flow().sample((n,))


@dataclass(frozen=True)
class Budget:
    """Width, depth, number of transforms and training budget shared by every trained model."""

    hidden: int
    depth: int
    transforms: int
    steps: int
    batch_size: int
    learning_rate: float


QUICK: dict[str, Any] = {
    "toy": Budget(32, 2, 4, 60, 256, 3e-3), "digits": Budget(16, 1, 4, 30, 64, 2e-3),
    "toy_sizes": (2000, 1000), "conv_hidden": 8, "toy_gmm": (8, 1, 50), "digits_gmm_components": (1, 2),
    "iwae_samples": 32,
}
FULL: dict[str, Any] = {
    "toy": Budget(64, 2, 6, 1000, 512, 2e-3), "digits": Budget(256, 2, 6, 500, 128, 1e-3),
    "toy_sizes": (20_000, 5_000), "conv_hidden": 32, "toy_gmm": (16, 1, 150),
    "digits_gmm_components": (1, 2, 4, 8), "iwae_samples": 256,
}


TOYS = ("8gaussians", "checkerboard")
DATASETS = (*TOYS, "digits")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def throughput(model: Any, x: Tensor, repeats: int = 5) -> float:
    """log_prob examples per second on batch x, best of ``repeats`` timed calls after a warm-up."""
    model.log_prob(x)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.log_prob(x)
        best = min(best, time.perf_counter() - start)
    return x.shape[0] / best


def flat_flows(features: int, b: Budget) -> dict[str, nn.Module]:
    """Ours and zuko's coupling flows on flat vectors at the same width/depth/transforms."""
    hidden = (b.hidden,) * b.depth
    return {
        "RealNVP-MLP": RealNVP((features,), num_couplings=b.transforms, hidden_features=b.hidden,
                               depth=b.depth),
        "zuko-RealNVP": ZukoDensity(zuko.flows.RealNVP(features, transforms=b.transforms,
                                                       hidden_features=hidden), features),
        "zuko-NSF": ZukoDensity(zuko.flows.NSF(features, transforms=b.transforms, hidden_features=hidden),
                                features),
    }


def run_model(name: str, model: Any, train: Tensor, test: Tensor, settings: TrainSettings,
              dequantization: Dequantization | None, throughput_batch: Tensor | None) -> dict[str, Any]:
    start = time.perf_counter()
    fit(model, train, settings, dequantization=dequantization)
    train_time = time.perf_counter() - start
    report = held_out_report(model, train, test, dequantization, generator=torch.Generator().manual_seed(1))
    row = dict(model=name, params=parameter_count(model) if isinstance(model, nn.Module) else 0,
               train_nll_nats=-report.train_nats, test_nll_nats=-report.held_out_nats,
               train_bits_per_dim=report.train_bits_per_dim, test_bits_per_dim=report.held_out_bits_per_dim,
               is_bound=report.is_bound, train_seconds=train_time)
    if isinstance(model, GaussianMixture):
        row["params"] = sum(b.numel() for n, b in model.named_buffers() if n != "fitted")
    if throughput_batch is not None:
        row["log_prob_examples_per_s"] = throughput(model, throughput_batch)
    print(f"  {name:<14} params {row['params']:>9,d}  train NLL {row['train_nll_nats']:9.3f}  "
          f"test NLL {row['test_nll_nats']:9.3f} nats  ({row['test_bits_per_dim']:.3f} bits/dim)  "
          f"[{train_time:.0f} s]", flush=True)
    return row


def toy_benchmark(toy: str, sizes: dict[str, Any]) -> list[dict[str, Any]]:
    b, (n_train, n_test) = sizes["toy"], sizes["toy_sizes"]
    components, restarts, iterations = sizes["toy_gmm"]
    train = sample_toy(toy, n_train, torch.Generator().manual_seed(0))
    test = sample_toy(toy, n_test, torch.Generator().manual_seed(1))
    settings = TrainSettings(steps=b.steps, batch_size=b.batch_size, learning_rate=b.learning_rate)
    batch = test[:4096]
    models: dict[str, Any] = {
        "GMM": GaussianMixture(2, components, "full", n_restarts=restarts, max_iter=iterations),
        "VAE": VAE((2,), latent_features=2, hidden_features=b.hidden, depth=b.depth,
                   iwae_samples=sizes["iwae_samples"]),
        "NICE": NICE((2,), num_couplings=b.transforms, hidden_features=b.hidden, depth=b.depth),
        "Glow": Glow((2,), num_steps=b.transforms, hidden_features=b.hidden, depth=b.depth),
        **flat_flows(2, b),
    }
    print(f"{toy}: true entropy {TRUE_ENTROPY[toy]:.3f} nats", flush=True)
    rows = []
    for name, model in models.items():
        torch.manual_seed(0)
        flat = name in ("RealNVP-MLP", "zuko-RealNVP", "zuko-NSF", "NICE", "Glow")
        rows.append({"dataset": toy, "true_entropy_nats": TRUE_ENTROPY[toy],
                     **run_model(name, model, train, test, settings, None, batch if flat else None)})
    return rows


def digits_gmm(train: Tensor, val: Tensor, deq: Dequantization, choices: tuple[int, ...]) -> GaussianMixture:
    """Full-covariance GMM whose number of components is chosen on the validation split."""
    scores = {}
    g = torch.Generator().manual_seed(0)
    for k in choices:
        gmm = GaussianMixture(64, k, "full", n_restarts=2, max_iter=200, reg_covar=1e-4)
        gmm.fit(deq(train, g), generator=g)
        scores[k] = mean_log_likelihood(gmm, val, deq, generator=g)
    best = max(scores, key=scores.__getitem__)
    print(f"  GMM validation log-likelihood by components: "
          f"{ {k: round(v, 1) for k, v in scores.items()} } -> {best}", flush=True)
    return GaussianMixture(64, best, "full", n_restarts=2, max_iter=200, reg_covar=1e-4)


def digits_benchmark(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    b, conv_hidden = sizes["digits"], sizes["conv_hidden"]
    data = load_digits()
    images = data.images
    train, val, test = images[:1000], images[1000:1350], images[1350:]
    deq = Dequantization(data.levels)
    settings = TrainSettings(steps=b.steps, batch_size=b.batch_size, learning_rate=b.learning_rate)
    print(f"digits: uniform baseline {math.log2(17):.3f} bits/dim", flush=True)
    rows = []
    shape = data.image_shape
    conv = dict(hidden_features=conv_hidden, depth=2)
    models: dict[str, dict[str, Any]] = {
        "GMM": dict(model=digits_gmm(train.flatten(1), val.flatten(1), deq, sizes["digits_gmm_components"]),
                    flat=True),
        "VAE": dict(model=VAE((64,), latent_features=16, hidden_features=b.hidden, depth=b.depth,
                              iwae_samples=sizes["iwae_samples"]), flat=True),
        "NICE": dict(model=NICE(shape, num_couplings=b.transforms, **conv), flat=False),
        "RealNVP": dict(model=RealNVP(shape, num_couplings=max(2, b.transforms // 2), num_scales=2, **conv),
                        flat=False),
        "Glow": dict(model=Glow(shape, num_steps=b.transforms, num_scales=2, **conv), flat=False),
        **{name: dict(model=m, flat=True) for name, m in flat_flows(64, b).items()},
    }
    batch = deq(test.flatten(1), torch.Generator().manual_seed(2))
    for name, spec in models.items():
        torch.manual_seed(0)
        tr, te = (train.flatten(1), test.flatten(1)) if spec["flat"] else (train, test)
        measure = batch if name in ("RealNVP-MLP", "zuko-RealNVP", "zuko-NSF") else None
        row = run_model(name, spec["model"], tr, te, settings, deq, measure)
        rows.append({"dataset": "digits", "uniform_bits_per_dim": math.log2(17), **row})
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours (RealNVP-MLP) vs each zuko flow per dataset: NLL difference, throughput ratio, params."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["model"]: r for r in rows if r["dataset"] == dataset}
        ours = by["RealNVP-MLP"]
        for ref in ("zuko-RealNVP", "zuko-NSF"):
            z = by[ref]
            out.append(dict(dataset=dataset, ours="RealNVP-MLP", reference=ref,
                            nll_ours_minus_ref_nats=ours["test_nll_nats"] - z["test_nll_nats"],
                            throughput_ratio=ours["log_prob_examples_per_s"] / z["log_prob_examples_per_s"],
                            param_ratio=ours["params"] / z["params"]))
    return out


def targets(rows: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> dict[str, bool]:
    digits = {r["model"]: r for r in rows if r["dataset"] == "digits"}
    result = {f"{p['dataset']}: NLL <= {p['reference']}": p["nll_ours_minus_ref_nats"] <= 0 for p in pairs}
    result.update({f"{p['dataset']}: throughput >= {p['reference']}": p["throughput_ratio"] >= 1
                   for p in pairs})
    if not digits:
        return result
    glow, gmm = digits["Glow"]["test_bits_per_dim"], digits["GMM"]["test_bits_per_dim"]
    result["digits: Glow below GMM"] = glow < gmm
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets for a CI smoke run (< 1 min)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS),
                        help="which benchmarks to run (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    start = time.perf_counter()
    rows = []
    for toy in TOYS:
        if toy in args.datasets:
            rows += toy_benchmark(toy, sizes)
    if "digits" in args.datasets:
        rows += digits_benchmark(sizes)
    pairs = ratios(rows)
    goals = targets(rows, pairs)
    print("\n| dataset | model | params | test NLL (nats) | test bits/dim | reference | log_prob ex/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        ref = r.get("true_entropy_nats", r.get("uniform_bits_per_dim"))
        speed = f"{r['log_prob_examples_per_s']:,.0f}" if "log_prob_examples_per_s" in r else ""
        bound = " (bound)" if r["is_bound"] else ""
        print(f"| {r['dataset']} | {r['model']} | {r['params']:,d} | {r['test_nll_nats']:.3f}{bound} | "
              f"{r['test_bits_per_dim']:.3f} | {ref:.3f} | {speed} |")
    print("\nours (RealNVP-MLP) vs zuko, same width/depth/transforms/budget:")
    for p in pairs:
        print(f"  {p['dataset']:<12} vs {p['reference']:<13} ΔNLL {p['nll_ours_minus_ref_nats']:+.3f} nats  "
              f"throughput ×{p['throughput_ratio']:.2f}  params ×{p['param_ratio']:.2f}")
    print("\ntargets:")
    for goal, met in goals.items():
        print(f"  [{'x' if met else ' '}] {goal}")
    elapsed = time.perf_counter() - start
    print(f"\ntotal {elapsed:.0f} s on {torch.get_num_threads()} thread(s)")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if set(args.datasets) == set(DATASETS) else "_" + "_".join(args.datasets)
    path = out_dir / f"density{'_quick' if args.quick else ''}{suffix}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(quick=args.quick, threads=torch.get_num_threads(), seconds=elapsed,
                                   rows=rows, ours_vs_zuko=pairs, targets=goals), indent=2))
    os.replace(tmp, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
