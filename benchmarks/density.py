"""Held-out NLL of every density model, and zuko as the named reference, in one run.

    python benchmarks/density.py [--quick] [--threads N]
    python benchmarks/density.py --datasets digits --models NSF zuko-NSF --seed 1   # one pair, seed 1

Datasets:
- 2-D toys (8gaussians, checkerboard): held-out NLL in nats against the true entropy
  (``vecfield.toys.TRUE_ENTROPY``);
- sklearn's 8×8 digits, split train 0–1000 / validation 1000–1350 / test 1350–1797, uniformly
  dequantized, in bits/dim (uniform baseline log₂ 17 = 4.087).

Models: GMM (EM; components chosen on validation for digits), VAE (IWAE bound), NICE, RealNVP,
Glow (multi-scale with a ConvNet conditioner on digits), RealNVP with an MLP conditioner on flat
vectors, our masked autoregressive neural spline flow (NSF) on flat vectors, the flow-matching CNF
(likelihood by ODE, its own training budget since a flow-matching step is not an NLL step), the
energy-based model on the toys (``EnergyMLP``: likelihood −E − log Ẑ with log Ẑ by AIS; its own
budget, with an EMA of the weights), and
zuko's RealNVP and NSF at the same width, depth, number of transforms and training budget (our NSF
and zuko's have the same architecture and parameter count; both counts are reported).
For the flows on flat vectors it also measures log_prob throughput (examples/s, best of several
timed calls) and reports ratios ours/zuko. Train log-likelihoods are evaluated on the first
``train_eval`` training examples (the held-out set is always evaluated whole). ``--seed`` seeds
every model's initialization and minibatches (the data splits are fixed), so repeating a pair over
seeds tells a real NLL difference from seed noise. Prints a table, writes
``benchmarks/results/density[_quick][_<datasets>][_<models>][_seed<k>].json``.
"""

import argparse
import json
import math
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
    EnergyMLP,
    FlowMatchingCNF,
    GaussianMixture,
    TrainSettings,
    fit,
    held_out_report,
    mean_log_likelihood,
)
from vecfield.files import write_text_atomic  # noqa: E402
from vecfield.flows import NICE, AutoregressiveSplineFlow, Glow, RealNVP  # noqa: E402
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
    "toy_cnf": Budget(32, 2, 0, 60, 256, 3e-3), "digits_cnf": Budget(32, 2, 0, 30, 64, 2e-3),
    "toy_ebm": Budget(32, 2, 0, 60, 256, 3e-3), "ebm_ais": (200, 10),
    "toy_sizes": (2000, 1000), "train_eval": 500, "conv_hidden": 8, "toy_gmm": (8, 1, 50),
    "digits_gmm_components": (1, 2), "iwae_samples": 32, "cnf_tolerance": 1e-3,
}
FULL: dict[str, Any] = {
    "toy": Budget(64, 2, 6, 1000, 512, 2e-3), "digits": Budget(256, 2, 6, 500, 128, 1e-3),
    "toy_cnf": Budget(128, 3, 0, 2000, 512, 2e-3), "digits_cnf": Budget(256, 3, 0, 4000, 256, 2e-3),
    "toy_ebm": Budget(128, 3, 0, 3000, 1024, 2e-3), "ebm_ais": (2000, 200),
    "toy_sizes": (20_000, 5_000), "train_eval": 5_000, "conv_hidden": 32, "toy_gmm": (16, 1, 150),
    "digits_gmm_components": (1, 2, 4, 8), "iwae_samples": 256, "cnf_tolerance": 1e-4,
}


def training(b: Budget, seed: int, ema_decay: float | None = None) -> TrainSettings:
    return TrainSettings(steps=b.steps, batch_size=b.batch_size, learning_rate=b.learning_rate, seed=seed,
                         ema_decay=ema_decay)


TOYS = ("8gaussians", "checkerboard")
DATASETS = (*TOYS, "digits")
DISCRETE_FLOWS = ("NICE", "RealNVP", "Glow", "RealNVP-MLP", "NSF")
MODELS = ("GMM", "VAE", *DISCRETE_FLOWS, "zuko-RealNVP", "zuko-NSF", "CNF", "EBM")


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
    """Ours and zuko's flows on flat vectors at the same width/depth/transforms."""
    hidden = (b.hidden,) * b.depth
    return {
        "RealNVP-MLP": RealNVP((features,), num_couplings=b.transforms, hidden_features=b.hidden,
                               depth=b.depth),
        "zuko-RealNVP": ZukoDensity(zuko.flows.RealNVP(features, transforms=b.transforms,
                                                       hidden_features=hidden), features),
        "NSF": AutoregressiveSplineFlow((features,), num_transforms=b.transforms, hidden_features=b.hidden,
                                        depth=b.depth),
        "zuko-NSF": ZukoDensity(zuko.flows.NSF(features, transforms=b.transforms, hidden_features=hidden),
                                features),
    }


FLAT_FLOWS = ("RealNVP-MLP", "zuko-RealNVP", "NSF", "zuko-NSF")
PAIRS = (("RealNVP-MLP", "zuko-RealNVP"), ("NSF", "zuko-NSF"))


def cnf(event_shape: tuple[int, ...], b: Budget, tolerance: float) -> FlowMatchingCNF:
    """The flow-matching CNF: MLP field, dopri5 likelihood ODE at rtol = atol = ``tolerance``."""
    return FlowMatchingCNF(event_shape, hidden_features=b.hidden, depth=b.depth, rtol=tolerance,
                           atol=tolerance)


def run_model(name: str, model: Any, train: Tensor, test: Tensor, settings: TrainSettings,
              dequantization: Dequantization | None, throughput_batch: Tensor | None,
              train_eval: int, fitted_seconds: float | None = None) -> dict[str, Any]:
    """Train (unless ``fitted_seconds`` says it already was), evaluate, time; one table row."""
    start = time.perf_counter()
    if fitted_seconds is None:
        fit(model, train, settings, dequantization=dequantization)
    train_time = time.perf_counter() - start if fitted_seconds is None else fitted_seconds
    start = time.perf_counter()
    report = held_out_report(model, train[:train_eval], test, dequantization,
                             generator=torch.Generator().manual_seed(1))
    row = dict(model=name, params=parameter_count(model) if isinstance(model, nn.Module) else 0,
               train_nll_nats=-report.train_nats, test_nll_nats=-report.held_out_nats,
               train_bits_per_dim=report.train_bits_per_dim, test_bits_per_dim=report.held_out_bits_per_dim,
               is_bound=report.is_bound, train_seconds=train_time, eval_seconds=time.perf_counter() - start)
    if isinstance(model, GaussianMixture):
        row["params"] = sum(b.numel() for n, b in model.named_buffers() if n != "fitted")
    if throughput_batch is not None:
        row["log_prob_examples_per_s"] = throughput(model, throughput_batch)
    print(f"  {name:<14} params {row['params']:>9,d}  train NLL {row['train_nll_nats']:9.3f}  "
          f"test NLL {row['test_nll_nats']:9.3f} nats  ({row['test_bits_per_dim']:.3f} bits/dim)  "
          f"[train {train_time:.0f} s, eval {row['eval_seconds']:.0f} s]", flush=True)
    return row


def toy_benchmark(toy: str, sizes: dict[str, Any], chosen: set[str], seed: int) -> list[dict[str, Any]]:
    b, (n_train, n_test) = sizes["toy"], sizes["toy_sizes"]
    components, restarts, iterations = sizes["toy_gmm"]
    train = sample_toy(toy, n_train, torch.Generator().manual_seed(0))
    test = sample_toy(toy, n_test, torch.Generator().manual_seed(1))
    batch = test[:4096]
    models: dict[str, Any] = {
        "GMM": GaussianMixture(2, components, "full", n_restarts=restarts, max_iter=iterations),
        "VAE": VAE((2,), latent_features=2, hidden_features=b.hidden, depth=b.depth,
                   iwae_samples=sizes["iwae_samples"]),
        "NICE": NICE((2,), num_couplings=b.transforms, hidden_features=b.hidden, depth=b.depth),
        "Glow": Glow((2,), num_steps=b.transforms, hidden_features=b.hidden, depth=b.depth),
        **flat_flows(2, b),
        "CNF": cnf((2,), sizes["toy_cnf"], sizes["cnf_tolerance"]),
        "EBM": EnergyMLP((2,), hidden_features=sizes["toy_ebm"].hidden, depth=sizes["toy_ebm"].depth,
                         ais_chains=sizes["ebm_ais"][0], ais_levels=sizes["ebm_ais"][1], ais_step_size=0.2,
                         ais_seed=seed),
    }
    print(f"{toy}: true entropy {TRUE_ENTROPY[toy]:.3f} nats", flush=True)
    rows = []
    for name, model in models.items():
        if name not in chosen:
            continue
        torch.manual_seed(seed)
        measure = batch if name in (*FLAT_FLOWS, "NICE", "Glow") else None
        settings = (training(sizes["toy_cnf"], seed) if name == "CNF" else
                    training(sizes["toy_ebm"], seed, ema_decay=0.995) if name == "EBM" else training(b, seed))
        rows.append({"dataset": toy, "true_entropy_nats": TRUE_ENTROPY[toy],
                     **run_model(name, model, train, test, settings, None, measure, sizes["train_eval"])})
    return rows


def digits_gmm(train: Tensor, val: Tensor, deq: Dequantization,
               choices: tuple[int, ...]) -> tuple[GaussianMixture, float]:
    """Full-covariance GMM whose number of components is chosen on the validation split.

    Returns the chosen mixture, already fitted (it is not refitted), and the seconds all fits took.
    """
    scores, fitted = {}, {}
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for k in choices:
        gmm = GaussianMixture(64, k, "full", n_restarts=2, max_iter=200, reg_covar=1e-4)
        gmm.fit(deq(train, g), generator=g)
        scores[k], fitted[k] = mean_log_likelihood(gmm, val, deq, generator=g), gmm
    best = max(scores, key=scores.__getitem__)
    print(f"  GMM validation log-likelihood by components: "
          f"{ {k: round(v, 1) for k, v in scores.items()} } -> {best}", flush=True)
    return fitted[best], time.perf_counter() - start


def digits_benchmark(sizes: dict[str, Any], chosen: set[str], seed: int) -> list[dict[str, Any]]:
    b, conv_hidden = sizes["digits"], sizes["conv_hidden"]
    data = load_digits()
    images = data.images
    train, val, test = images[:1000], images[1000:1350], images[1350:]
    deq = Dequantization(data.levels)
    print(f"digits: uniform baseline {math.log2(17):.3f} bits/dim", flush=True)
    rows = []
    shape = data.image_shape
    conv = dict(hidden_features=conv_hidden, depth=2)
    gmm, gmm_seconds = (digits_gmm(train.flatten(1), val.flatten(1), deq, sizes["digits_gmm_components"])
                        if "GMM" in chosen else (None, None))
    models: dict[str, dict[str, Any]] = {
        "GMM": dict(model=gmm, flat=True),
        "VAE": dict(model=VAE((64,), latent_features=16, hidden_features=b.hidden, depth=b.depth,
                              iwae_samples=sizes["iwae_samples"]), flat=True),
        "NICE": dict(model=NICE(shape, num_couplings=b.transforms, **conv), flat=False),
        "RealNVP": dict(model=RealNVP(shape, num_couplings=max(2, b.transforms // 2), num_scales=2, **conv),
                        flat=False),
        "Glow": dict(model=Glow(shape, num_steps=b.transforms, num_scales=2, **conv), flat=False),
        **{name: dict(model=m, flat=True) for name, m in flat_flows(64, b).items()},
        "CNF": dict(model=cnf((64,), sizes["digits_cnf"], sizes["cnf_tolerance"]), flat=True),
    }
    batch = deq(test.flatten(1), torch.Generator().manual_seed(2))
    for name, spec in models.items():
        if name not in chosen:
            continue
        torch.manual_seed(seed)
        tr, te = (train.flatten(1), test.flatten(1)) if spec["flat"] else (train, test)
        measure = batch if name in FLAT_FLOWS else None
        settings = training(sizes["digits_cnf"] if name == "CNF" else b, seed)
        row = run_model(name, spec["model"], tr, te, settings, deq, measure, sizes["train_eval"],
                        gmm_seconds if name == "GMM" else None)
        rows.append({"dataset": "digits", "uniform_bits_per_dim": math.log2(17), **row})
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ours vs zuko per dataset (RealNVP-MLP vs zuko-RealNVP, NSF vs zuko-NSF): NLL, throughput, params."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        by = {r["model"]: r for r in rows if r["dataset"] == dataset}
        for name, ref in PAIRS:
            if name not in by or ref not in by:
                continue
            ours, z = by[name], by[ref]
            out.append(dict(dataset=dataset, ours=name, reference=ref, params_ours=ours["params"],
                            params_reference=z["params"],
                            nll_ours_minus_ref_nats=ours["test_nll_nats"] - z["test_nll_nats"],
                            throughput_ratio=ours["log_prob_examples_per_s"] / z["log_prob_examples_per_s"],
                            param_ratio=ours["params"] / z["params"]))
    return out


def targets(rows: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> dict[str, bool]:
    digits = {r["model"]: r for r in rows if r["dataset"] == "digits"}
    result = {f"{p['dataset']}: {p['ours']} NLL <= {p['reference']}": p["nll_ours_minus_ref_nats"] <= 0
              for p in pairs}
    result.update({f"{p['dataset']}: {p['ours']} throughput >= {p['reference']}": p["throughput_ratio"] >= 1
                   for p in pairs})
    result.update({f"{p['dataset']}: {p['ours']} params <= {p['reference']}": p["param_ratio"] <= 1
                   for p in pairs if p["ours"] == "NSF"})
    if not {"Glow", "GMM", "CNF", *DISCRETE_FLOWS} <= set(digits):
        return result
    glow, gmm = digits["Glow"]["test_bits_per_dim"], digits["GMM"]["test_bits_per_dim"]
    result["digits: Glow below GMM"] = glow < gmm
    best = min(digits[m]["test_bits_per_dim"] for m in DISCRETE_FLOWS)
    result["digits: CNF within 0.05 bits/dim of the best discrete flow"] = (
        digits["CNF"]["test_bits_per_dim"] <= best + 0.05)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets for a CI smoke run (< 1 min)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS),
                        help="which benchmarks to run (default: all)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="which models to run (default: all; RealNVP is the image flow on digits)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialization and minibatches")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    start = time.perf_counter()
    rows = []
    for toy in TOYS:
        if toy in args.datasets:
            rows += toy_benchmark(toy, sizes, set(args.models), args.seed)
    if "digits" in args.datasets:
        rows += digits_benchmark(sizes, set(args.models), args.seed)
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
    print("\nours vs zuko, same width/depth/transforms/training budget:")
    for p in pairs:
        print(f"  {p['dataset']:<12} {p['ours']:<11} vs {p['reference']:<13} "
              f"ΔNLL {p['nll_ours_minus_ref_nats']:+.3f} nats  throughput ×{p['throughput_ratio']:.2f}  "
              f"params {p['params_ours']:,d} vs {p['params_reference']:,d}")
    print("\ntargets:")
    for goal, met in goals.items():
        print(f"  [{'x' if met else ' '}] {goal}")
    elapsed = time.perf_counter() - start
    print(f"\ntotal {elapsed:.0f} s on {torch.get_num_threads()} thread(s)")
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if set(args.datasets) == set(DATASETS) else "_" + "_".join(args.datasets)
    suffix += "" if set(args.models) == set(MODELS) else "_" + "_".join(args.models)
    suffix += f"_seed{args.seed}" if args.seed else ""
    path = out_dir / f"density{'_quick' if args.quick else ''}{suffix}.json"
    write_text_atomic(path, json.dumps(dict(quick=args.quick, seed=args.seed, threads=torch.get_num_threads(),
                                            seconds=elapsed, rows=rows, ours_vs_zuko=pairs, targets=goals),
                                       indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
