"""2-D generative benchmark: sample quality against NFE, held-out NLL, and torchcfm side by side.

    python benchmarks/generative_2d.py            # full: 20,000 steps per method, ≈ 15 min/dataset/core
    python benchmarks/generative_2d.py --quick    # CI smoke run (< 1 min)

Every method trains the same MLP (vecfield.nn.MLP, 3 × 128 SiLU, sinusoidal time, 64 random Fourier
features of x at scale 0.5) for the same number of steps (Adam, cosine learning rate, batch
``--batch`` = 1024, EMA min(0.999, 1 − 10/steps) for sampling). OT-FM alone trains on batches of
``--ot-batch`` = 256: its exact assignment is O(n³) (≈ 11 ms per step at 256, ≈ 380 ms at 1024),
so a 1024 batch would cost it 2 h per dataset. Everything runs on ``--threads`` intra-op threads
(default 1: the models are too small to gain from more, and on shared cores a second OpenMP thread
spinning for the other makes every step many times slower):
  - FM: flow matching (CondOT, velocity), sampled with Euler and Heun;
  - OT-FM: the same with minibatch exact OT coupling, sampled with Heun;
  - DDPM: ε-prediction on the 1000-step table, sampled ancestrally and with DDIM;
  - torchcfm: ConditionalFlowMatcher(σ = 0) training the same MLP, sampled with our Heun.
Quality: energy distance of ``--samples`` generated points to 10,000 fresh data points, next to
the floor (the same number of fresh data points against the same reference). NFE = network calls.
Held-out NLL (exact divergence, dopri5) of the FM models against the true entropy where known, with
its standard error over the held-out points. Training speed is measured in interleaved blocks, as
wall-clock and as process CPU time (the latter is steadier on shared cores).
Prints a table and writes JSON to benchmarks/results/.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vecfield import VectorFieldModel
from vecfield.core.model import network_calls
from vecfield.files import write_text_atomic
from vecfield.nn import MLP
from vecfield.quality.point_clouds import EnergyDistanceToReference
from vecfield.toys import TRUE_ENTROPY, sample_toy

NFE_FULL = (1, 2, 4, 8, 16, 32, 64, 128, 1000)
DATASETS_FULL = ("checkerboard", "8gaussians", "moons", "spirals")
RESULTS = Path(__file__).resolve().parent / "results"


def make_net() -> MLP:
    return MLP(2, hidden_features=128, depth=3, fourier_features=64, fourier_scale=0.5)


def train(loss_fn: Callable[[torch.Tensor], torch.Tensor], module: torch.nn.Module, dataset: str, steps: int,
          seed: int, batch: int, clock: Callable[[], float] = time.perf_counter
          ) -> tuple[torch.nn.Module, float]:
    """Adam + cosine schedule on fresh batches of ``batch``; returns the EMA copy and training steps/s."""
    optimizer = torch.optim.Adam(module.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    ema = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(min(0.999, 1 - 10 / steps)))
    data = torch.Generator().manual_seed(seed)
    start = clock()
    for _ in range(steps):
        loss = loss_fn(sample_toy(dataset, batch, data))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        ema.update_parameters(module)
    return ema.module, steps / (clock() - start)


def torchcfm_loss(net: MLP) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """torchcfm's I-CFM (σ = 0, i.e. rectified flow) loss on the same MLP; None if not installed."""
    try:
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
    except ImportError:
        return None
    matcher = ConditionalFlowMatcher(sigma=0.0)

    def loss(x1: torch.Tensor) -> torch.Tensor:
        t, xt, ut = matcher.sample_location_and_conditional_flow(torch.randn_like(x1), x1)
        return ((net(xt, t) - ut) ** 2).mean()

    return loss


def interleaved_speed(dataset: str, rounds: int, block: int, seed: int, batch: int) -> dict[str, float]:
    """Median training steps/s of FM (ours) and torchcfm, alternating blocks of steps so that both
    see the same machine load (the cores here are shared). Same MLP, optimizer and EMA.
    Keys ``fm``/``torchcfm``: wall-clock steps/s; ``*_cpu``: steps per second of process CPU time."""
    torch.manual_seed(seed)
    ours = VectorFieldModel(make_net(), "flow_matching")
    theirs = make_net()
    theirs_loss = torchcfm_loss(theirs)
    if theirs_loss is None:
        return {}
    timings: dict[str, list[float]] = {"fm": [], "torchcfm": [], "fm_cpu": [], "torchcfm_cpu": []}
    for _ in range(rounds):
        for key, loss_fn, module in (("fm", ours.loss, ours), ("torchcfm", theirs_loss, theirs)):
            timings[key].append(train(loss_fn, module, dataset, block, seed, batch)[1])
            timings[f"{key}_cpu"].append(train(loss_fn, module, dataset, block, seed, batch,
                                               time.process_time)[1])
    return {key: sorted(values)[len(values) // 2] for key, values in timings.items()}


def samplers(nfe: int) -> dict[str, tuple[str, str, int]]:
    """Row label -> (model key, solver, steps) reaching exactly ``nfe`` network calls."""
    rows = {"FM Euler": ("fm", "euler", nfe), "DDPM ancestral": ("ddpm", "ddpm", nfe),
            "DDIM": ("ddpm", "ddim", nfe)}
    if nfe % 2 == 0:
        rows |= {"FM Heun": ("fm", "heun", nfe // 2), "OT-FM Heun": ("ot", "heun", nfe // 2),
                 "torchcfm Heun": ("torchcfm", "heun", nfe // 2)}
    return rows


def write_json(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2))


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    results: dict = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "torch_threads": torch.get_num_threads(), "datasets": {}}
    for dataset in args.datasets:
        generator = torch.Generator().manual_seed(args.seed + 100)
        reference = EnergyDistanceToReference(sample_toy(dataset, args.reference, generator))
        floor = float(reference(sample_toy(dataset, args.samples, generator)))
        models: dict[str, VectorFieldModel] = {}
        speed: dict[str, float] = {}
        for key, method in (("fm", "flow_matching"), ("ot", "ot_flow_matching"), ("ddpm", "ddpm")):
            torch.manual_seed(args.seed)
            model = VectorFieldModel(make_net(), method)
            batch = args.ot_batch if key == "ot" else args.batch
            models[key], speed[key] = train(model.loss, model, dataset, args.steps, args.seed + 1, batch)
        torch.manual_seed(args.seed)
        net = make_net()
        reference_loss = torchcfm_loss(net)
        if reference_loss is not None:
            trained, speed["torchcfm"] = train(reference_loss, net, dataset, args.steps, args.seed + 1,
                                               args.batch)
            models["torchcfm"] = VectorFieldModel(trained, "flow_matching")

        speed_fair = interleaved_speed(dataset, args.speed_rounds, 100, args.seed, args.batch)
        quality: dict[str, dict[int, float]] = {}
        for nfe in args.nfe:
            for label, (key, solver, steps) in samplers(nfe).items():
                if key not in models:
                    continue
                assert network_calls(solver, steps) == nfe
                sample_generator = torch.Generator().manual_seed(args.seed + 200)
                samples = models[key].sample(args.samples, steps=steps, solver=solver,
                                             generator=sample_generator)
                quality.setdefault(label, {})[nfe] = float(reference(samples))

        nll: dict[str, float] = {}
        nll_se: dict[str, float] = {}
        if args.nll_points:
            heldout = sample_toy(dataset, args.nll_points, torch.Generator().manual_seed(args.seed + 300))
            for key in ("fm", "ot", "torchcfm"):
                if key in models:
                    log_p = models[key].log_prob(heldout, rtol=args.nll_tolerance, atol=args.nll_tolerance)
                    nll[key] = -float(log_p.mean())
                    nll_se[key] = float(log_p.std()) / len(log_p) ** 0.5
        results["datasets"][dataset] = {"reference_points": args.reference, "floor": floor,
                                        "energy_distance": quality, "train_steps_per_s": speed,
                                        "interleaved_steps_per_s": speed_fair,
                                        "heldout_nll": nll, "heldout_nll_se": nll_se,
                                        "true_entropy": TRUE_ENTROPY.get(dataset)}
        print_dataset(dataset, results["datasets"][dataset], args.nfe)
        write_json(args.out, results)  # partial results survive an interrupted run
    results["targets"] = targets(results["datasets"])
    print_targets(results["targets"])
    return results


def targets(datasets: dict) -> dict:
    """The issue's three targets, evaluated per dataset from the measured numbers."""
    out: dict = {}
    for name, r in datasets.items():
        q, entry = r["energy_distance"], {}
        ddpm_best = q.get("DDPM ancestral", {}).get(1000)
        if ddpm_best is not None:
            # FM + Heun "matches" DDPM@1000 when its energy distance is no worse than DDPM's plus one floor
            heun = sorted(q.get("FM Heun", {}).items())
            matching = [n for n, value in heun if value <= ddpm_best + r["floor"]]
            entry["fm_heun_nfe_matching_ddpm_1000"] = matching[0] if matching else None
            entry["fewer_steps_factor"] = 1000 / matching[0] if matching else None
            entry["fm_heun_le_20_nfe_matches_ddpm_1000"] = bool(matching and matching[0] <= 20)
        if r["true_entropy"] is not None and "fm" in r["heldout_nll"]:
            gap = r["heldout_nll"]["fm"] - r["true_entropy"]
            entry["fm_nll_gap_nats"] = gap
            entry["fm_nll_within_0.1_nats"] = abs(gap) <= 0.1
        speed = r["interleaved_steps_per_s"]
        if "torchcfm" in speed:
            entry["train_speed_ratio_vs_torchcfm"] = speed["fm"] / speed["torchcfm"]
            entry["train_cpu_speed_ratio_vs_torchcfm"] = speed["fm_cpu"] / speed["torchcfm_cpu"]
            ours, theirs = q.get("FM Heun", {}), q.get("torchcfm Heun", {})
            common = sorted(set(ours) & set(theirs))
            if common:
                n = common[len(common) // 2]
                entry["quality_at_nfe"] = {"nfe": n, "ours": ours[n], "torchcfm": theirs[n]}
            entry["speed_ge_1.2x_torchcfm"] = entry["train_speed_ratio_vs_torchcfm"] >= 1.2
        out[name] = entry
    return out


def print_dataset(name: str, r: dict, nfes: list[int]) -> None:
    print(f"\n## {name}: energy distance to {r['reference_points']} fresh points (floor {r['floor']:.5f})")
    print(f"{'method':<16}" + "".join(f"{n:>9}" for n in nfes))
    for label, row in r["energy_distance"].items():
        print(f"{label:<16}" + "".join(f"{row[n]:>9.4f}" if n in row else f"{'—':>9}" for n in nfes))
    speeds = ", ".join(f"{k} {v:.0f}" for k, v in r["train_steps_per_s"].items())
    print(f"training steps/s during training (contended timings): {speeds}")
    fair = ", ".join(f"{k} {v:.0f}" for k, v in r["interleaved_steps_per_s"].items())
    print(f"training steps/s, interleaved blocks of 100 steps, median (wall; *_cpu: per CPU second): {fair}")
    if r["heldout_nll"]:
        entropy = r["true_entropy"]
        nll = ", ".join(f"{k} {v:.3f} ± {r['heldout_nll_se'][k]:.3f}" for k, v in r["heldout_nll"].items())
        print(f"held-out NLL (nats): {nll}; true entropy {entropy:.3f}" if entropy is not None else
              f"held-out NLL (nats): {nll}; no closed-form entropy")


def print_targets(t: dict) -> None:
    print("\n## targets")
    for name, entry in t.items():
        print(f"{name}: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in entry.items()))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: one dataset, few steps and NFEs")
    parser.add_argument("--steps", type=int, default=None, help="training steps per method (full 20000)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (full 1024)")
    parser.add_argument("--ot-batch", type=int, default=256, help="OT-FM's training batch (default 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--datasets", nargs="+", default=None, choices=DATASETS_FULL)
    parser.add_argument("--samples", type=int, default=None, help="generated points per evaluation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.steps = args.steps or (300 if args.quick else 20_000)
    args.batch = args.batch or (256 if args.quick else 1024)
    args.datasets = args.datasets or (["8gaussians"] if args.quick else list(DATASETS_FULL))
    args.samples = args.samples or (500 if args.quick else 2000)
    args.reference = 2000 if args.quick else 10_000
    args.nfe = [2, 8, 32] if args.quick else list(NFE_FULL)
    args.nll_points = 50 if args.quick else 1000
    args.nll_tolerance = 1e-3 if args.quick else 1e-5
    args.speed_rounds = 3 if args.quick else 7
    args.out = args.out or RESULTS / ("generative_2d_quick.json" if args.quick else "generative_2d.json")
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results = run(args)
    results["wall_seconds"] = time.perf_counter() - start
    write_json(args.out, results)
    print(f"\nwrote {args.out} ({results['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
