"""Energy-based models on the shared learner: likelihood, classification, sampling, composition.

    python benchmarks/energy.py [--quick] [--threads N]

Every row is measured against its reference in the same run, with the same data and seeds:

1. 2-D toys (checkerboard, 8gaussians): held-out NLL of the energy model, −E(x, t_end) − log Ẑ with
   log Ẑ by AIS (``vecfield.density.EnergyMLP``), against the true entropy (goal: within 0.15 nats);
2. the same toys: against the flow-matching CNF's ODE likelihood (``FlowMatchingCNF``) trained with
   the same loop, steps and batch (goal: within 0.1 nats of it);
3. digits (sklearn's 8×8, images 0–1499 train, 1500–1796 held out): accuracy of the energy
   classifier argmin_h E(x, t_end, h) (``vecfield.core.classify``) against the package CNN
   (``vecfield.quality.images.train_classifier``) on the same split (goal: ≥ 0.95× its accuracy);
4. digits: FD (the CNN's features) of class-conditional samples of the energy model against the
   plain score model, the same UNet with ε-prediction on the same VP path (``vp_diffusion``; its loss
   is the energy model's σ²-weighted score loss), both with deterministic DDIM at the same NFE
   (goal: the energy model's FD within 10 % of the plain model's);
5. composition on digits: "class a AND the class-agnostic prior at guidance w",
   E_w = E(x, ∅) + w·(E(x, a) − E(x, ∅)), sampled by annealed MALA on E_w (DDIM transport between
   levels, MALA correction at each; the MALA step picked on a pilot batch for acceptance near 0.6),
   against classifier-free guidance with DDIM at the same w and NFE (the plain model's, and the
   energy model's own field); reported: the CNN's agreement with a (no goal).

The cost of the energy parameterisation per training step (one more backward pass) is the ratio of
the measured seconds per step of the two image models (target ≤ 2.2×).

``--rows toys`` or ``--rows digits`` runs one half (written to energy[_quick]_<rows>.json).
Both image models train with the image pipeline (``vecfield.images.generator.train_image_generator``,
the Trainer). Prints a table and writes benchmarks/results/energy[_quick].json. The full run takes
about 15 minutes on 2 cores; ``--quick`` under a minute.
"""

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield.core import classify, compose, conditioned, network_calls, sample_mcmc  # noqa: E402
from vecfield.density import EnergyMLP, FlowMatchingCNF, TrainSettings, fit, held_out_report  # noqa: E402
from vecfield.files import write_text_atomic  # noqa: E402
from vecfield.images import load_digits, to_signed  # noqa: E402
from vecfield.images.config import ImageConfig, ImageDataConfig, ImageModelConfig, UNetConfig  # noqa: E402
from vecfield.images.generator import ImageGenerator, load_image_generator, train_image_generator  # noqa: E402
from vecfield.quality.images import (  # noqa: E402
    class_accuracy,
    classifier_features,
    feature_frechet_distance,
    predict_classes,
    train_classifier,
)
from vecfield.toys import TRUE_ENTROPY, sample_toy  # noqa: E402
from vecfield.train.config import TrainerConfig  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TOYS = ("checkerboard", "8gaussians")


@dataclass(frozen=True)
class Settings:
    """Everything the run depends on; ``--quick`` shrinks it for a CI smoke run."""

    toy_train: int = 20_000
    toy_test: int = 5_000
    toy_steps: int = 3000
    toy_batch: int = 1024
    toy_hidden: int = 128
    toy_depth: int = 3
    toy_time_mean: float = 2.5  # training times sigmoid(2.5 + 1.5·n); chosen on the validation draw
    toy_fourier_features: int = 64  # both toy models' MLP sees random Fourier features of x …
    toy_fourier_scale: float = 0.5  # … at 0.5 cycles per unit (chosen on the validation draw)
    ais_chains: int = 2000
    ais_levels: int = 200
    cnf_test: int = 1000  # held-out points the CNF's ODE likelihood is evaluated on
    image_steps: int = 1000
    image_batch: int = 64
    image_channels: int = 16
    classifier_weight: float = 1.0
    classifier_examples: int = 32
    classifier_epochs: int = 30
    fd_samples: int = 500
    ddim_steps: int = 20
    composed_per_class: int = 20
    guidance: float = 2.0
    mala_steps: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)
    seed: int = 0


QUICK = Settings(toy_train=2000, toy_test=500, toy_steps=30, toy_batch=256, toy_hidden=32, toy_depth=2,
                 ais_chains=200, ais_levels=10, cnf_test=50, image_steps=3, image_batch=32, image_channels=8,
                 classifier_epochs=1, fd_samples=50, ddim_steps=4, composed_per_class=2)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write (``vecfield.files``)."""
    write_text_atomic(path, json.dumps(payload, indent=2))


# ---------------------------------------------------------------------------------------- rows 1–2
def toy_rows(s: Settings, validation: bool = False) -> list[dict[str, Any]]:
    """Rows 1–2 on the held-out test draw (seed + 1), or with ``validation`` on a separate validation
    draw (seed + 2), where settings are chosen so that the test draw stays untouched."""
    rows = []
    held_out_seed = s.seed + (2 if validation else 1)
    settings = TrainSettings(steps=s.toy_steps, batch_size=s.toy_batch, learning_rate=2e-3, seed=s.seed,
                             ema_decay=0.995)
    for toy in TOYS:
        train = sample_toy(toy, s.toy_train, torch.Generator().manual_seed(s.seed))
        test = sample_toy(toy, s.toy_test, torch.Generator().manual_seed(held_out_seed))
        torch.manual_seed(s.seed)
        backbone = dict(hidden_features=s.toy_hidden, depth=s.toy_depth,
                        fourier_features=s.toy_fourier_features, fourier_scale=s.toy_fourier_scale)
        energy = EnergyMLP((2,), **backbone, time_mean=s.toy_time_mean,
                           ais_chains=s.ais_chains, ais_levels=s.ais_levels, ais_step_size=0.2,
                           ais_seed=s.seed)
        start = time.perf_counter()
        fit(energy, train, settings)
        energy_seconds = time.perf_counter() - start
        start = time.perf_counter()
        energy_nll = -held_out_report(energy, train[:1000], test).held_out_nats
        ais = energy.ais_result()
        ais_seconds = time.perf_counter() - start
        # the same held-out points for both models where the CNF's ODE is the cost
        energy_nll_cnf_points = float(-energy.log_prob(test[:s.cnf_test]).mean())
        torch.manual_seed(s.seed)
        cnf = FlowMatchingCNF((2,), **backbone, rtol=1e-4, atol=1e-4)
        start = time.perf_counter()
        fit(cnf, train, settings)
        cnf_seconds = time.perf_counter() - start
        cnf_nll = float(-cnf.log_prob(test[:s.cnf_test]).mean())
        row = {"toy": toy, "true_entropy": TRUE_ENTROPY[toy], "ebm_nll": energy_nll,
               "ebm_nll_on_cnf_points": energy_nll_cnf_points, "cnf_nll": cnf_nll,
               "ebm_minus_entropy": energy_nll - TRUE_ENTROPY[toy],
               "ebm_minus_cnf": energy_nll_cnf_points - cnf_nll, "ais_log_z": ais.log_z, "ais_ess": ais.ess,
               "ais_chains": s.ais_chains, "ais_acceptance": ais.acceptance_rate,
               "seconds": {"train_ebm": energy_seconds, "ais": ais_seconds, "train_cnf": cnf_seconds}}
        print(f"{toy:>12}: EBM NLL {energy_nll:.3f} (true entropy {TRUE_ENTROPY[toy]:.3f}, AIS ESS "
              f"{ais.ess:.0f}/{s.ais_chains}); on {s.cnf_test} points EBM {energy_nll_cnf_points:.3f} vs "
              f"CNF {cnf_nll:.3f}", flush=True)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------- rows 3–5
def image_config(s: Settings, method: str, run_dir: Path) -> ImageConfig:
    weight = s.classifier_weight if method == "energy" else 0.0
    return ImageConfig(
        data=ImageDataConfig(dataset="digits", train_range=(0, 1500), val_range=(1500, 1797)),
        model=ImageModelConfig(method=method, conditional=True, cond_dropout=0.1, classifier_weight=weight,
                               classifier_examples=s.classifier_examples),
        unet=UNetConfig(channels=s.image_channels, channel_mults=(1, 2), attention_levels=(),
                        mid_attention=False),
        train=TrainerConfig(run_dir=str(run_dir), max_steps=s.image_steps, batch_size=s.image_batch, lr=2e-3,
                            warmup_steps=max(1, s.image_steps // 20), weight_decay=0.0, ema_decay=0.999,
                            log_every=max(1, s.image_steps // 4), checkpoint_every=s.image_steps,
                            progress_bar=False, seed=s.seed, resume=False, device="cpu"))


def train_digits(s: Settings, method: str, folder: Path) -> tuple[ImageGenerator, float]:
    start = time.perf_counter()
    checkpoint = train_image_generator(image_config(s, method, folder / method))
    seconds = time.perf_counter() - start
    generator, _ = load_image_generator(checkpoint)
    return generator, seconds


def seconds_per_step(generator: ImageGenerator, images: Tensor, labels: Tensor, steps: int = 5) -> float:
    """Forward + backward of the training loss on one batch, median of ``steps`` repetitions."""
    generator.train()
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        generator(images, labels).backward()
        times.append(time.perf_counter() - start)
    generator.zero_grad(set_to_none=True)
    generator.eval()
    return float(torch.tensor(times[1:]).median())


def agreement_with(cnn: torch.nn.Module, images: Tensor, requested: Tensor) -> float:
    """Fraction of images (N, 1, 8, 8) in [−1, 1] the CNN puts in their requested class (N,)."""
    return float((predict_classes(cnn, images) == requested).double().mean())


def digits_rows(s: Settings) -> dict[str, Any]:
    digits = load_digits()
    train, train_labels = digits.images[:1500], digits.labels[:1500]
    held, held_labels = digits.images[1500:], digits.labels[1500:]
    levels = digits.levels
    start = time.perf_counter()
    cnn = train_classifier(to_signed(train, levels), train_labels, epochs=s.classifier_epochs, shift=0,
                           seed=s.seed)
    results: dict[str, Any] = {"seconds": {"cnn": time.perf_counter() - start}}
    cnn_accuracy = class_accuracy(cnn, to_signed(held, levels), held_labels)
    with tempfile.TemporaryDirectory() as folder:
        energy, results["seconds"]["train_energy"] = train_digits(s, "energy", Path(folder))
        plain, results["seconds"]["train_plain"] = train_digits(s, "vp_diffusion", Path(folder))
    # ---- row 3: the energy classifier
    energy_labels, _ = classify(energy.model, to_signed(held, levels), 10)
    energy_accuracy = float((energy_labels == held_labels).double().mean())
    results["classification"] = {"cnn_accuracy": cnn_accuracy, "energy_accuracy": energy_accuracy,
                                 "ratio": energy_accuracy / cnn_accuracy, "held_out": int(held.shape[0])}
    print(f"digits classification on {held.shape[0]} held-out: energy {energy_accuracy:.3f}, CNN "
          f"{cnn_accuracy:.3f}", flush=True)
    # ---- row 4: FD at the same NFE
    reference = classifier_features(cnn, to_signed(held, levels))
    labels = torch.arange(10).repeat(s.fd_samples // 10 + 1)[:s.fd_samples]
    fd = {}
    for name, model in (("energy", energy), ("plain", plain)):
        images = model.generate(s.fd_samples, labels, solver="ddim", steps=s.ddim_steps,
                                generator=torch.Generator().manual_seed(s.seed + 1))
        fd[name] = feature_frechet_distance(classifier_features(cnn, to_signed(images, levels)), reference)
    floor_images = train[:s.fd_samples]
    fd["training_images"] = feature_frechet_distance(
        classifier_features(cnn, to_signed(floor_images, levels)), reference)
    results["fd"] = {**fd, "solver": "ddim", "steps": s.ddim_steps,
                     "nfe": network_calls("ddim", s.ddim_steps), "ratio": fd["energy"] / fd["plain"],
                     "samples": s.fd_samples}
    print(f"digits FD at NFE {results['fd']['nfe']}: energy {fd['energy']:.3f}, plain score "
          f"{fd['plain']:.3f} (training images {fd['training_images']:.3f})", flush=True)
    # ---- row 5: composition
    requested = torch.arange(10).repeat_interleave(s.composed_per_class)
    w = s.guidance
    nfe = network_calls("ddim", s.ddim_steps)  # guided evaluations: one (batched) call per step
    agreement = {}
    for name, model in (("cfg_plain", plain), ("cfg_energy", energy)):
        images = model.generate(requested.numel(), requested, solver="ddim", steps=s.ddim_steps, guidance=w,
                                generator=torch.Generator().manual_seed(s.seed + 2))
        agreement[name] = agreement_with(cnn, to_signed(images, levels), requested)

    def composed_mcmc(chains: Tensor, step: float, seed: int) -> Any:
        """Annealed MALA with DDIM transport on E_w, (levels + 1)·2 = NFE gradient evaluations."""
        null = torch.full_like(chains, 10)
        e_w = compose((1 - w, conditioned(energy.model, null)), (w, conditioned(energy.model, chains)))
        return sample_mcmc(energy.model, chains.numel(), sampler="mala", step_size=step, data_scale=0.1,
                           levels=nfe // 2 - 1, energy=e_w, generator=torch.Generator().manual_seed(seed))

    # the MALA step is chosen on a pilot batch (acceptance nearest 0.6), not on the scored samples
    pilot = {step: composed_mcmc(torch.arange(10), step, s.seed + 5).acceptance_rate for step in s.mala_steps}
    step = min(pilot, key=lambda k: abs(pilot[k] - 0.6))
    mcmc = composed_mcmc(requested, step, s.seed + 2)
    assert mcmc.evaluations == nfe, (mcmc.evaluations, nfe)
    images = energy.to_levels(mcmc.samples)
    agreement["mcmc_energy"] = agreement_with(cnn, to_signed(images, levels), requested)
    results["composition"] = {**agreement, "w": w, "nfe": nfe, "mcmc_acceptance": mcmc.acceptance_rate,
                              "mala_step": step, "pilot_acceptance": {str(k): v for k, v in pilot.items()},
                              "samples": int(requested.numel())}
    print(f"composition 'class a AND prior' at w = {w}, NFE {nfe}: CNN agreement MCMC on E_w "
          f"{agreement['mcmc_energy']:.3f} (MALA step {step}, acceptance {mcmc.acceptance_rate:.2f}), "
          f"CFG plain "
          f"{agreement['cfg_plain']:.3f}, CFG energy field {agreement['cfg_energy']:.3f}", flush=True)
    # ---- cost per training step
    batch = torch.randint(0, 1500, (s.image_batch,), generator=torch.Generator().manual_seed(s.seed))
    energy.classifier_weight = 0.0  # the parameterisation alone: the same loss as the plain model
    cost = {name: seconds_per_step(model, train[batch], train_labels[batch])
            for name, model in (("energy", energy), ("plain", plain))}
    results["step_cost"] = {**cost, "ratio": cost["energy"] / cost["plain"], "batch": s.image_batch}
    print(f"seconds per training step (batch {s.image_batch}): energy {cost['energy']:.4f}, plain "
          f"{cost['plain']:.4f}, ratio {results['step_cost']['ratio']:.2f}", flush=True)
    return results


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals, each with the numbers it compares."""
    toys = results["toys"]
    digits = results["digits"]
    return {
        "row1_nll_within_0.15_of_entropy": all(abs(r["ebm_minus_entropy"]) <= 0.15 for r in toys),
        "row2_within_0.1_of_cnf": all(abs(r["ebm_minus_cnf"]) <= 0.1 for r in toys),
        "row3_classifier_at_least_0.95_of_cnn": digits["classification"]["ratio"] >= 0.95,
        "row4_fd_within_10_percent": digits["fd"]["ratio"] <= 1.1,
        "step_cost_at_most_2.2x": digits["step_cost"]["ratio"] <= 2.2,
    }


def print_table(results: dict[str, Any]) -> None:
    print("\n| row | measure | energy model | reference | goal | met |")
    print("|---|---|---|---|---|---|")
    goals = results["targets"]
    for r in results["toys"]:
        print(f"| 1 | {r['toy']} held-out NLL (nats) | {r['ebm_nll']:.3f} | "
              f"entropy {r['true_entropy']:.3f} | ±0.15 | {abs(r['ebm_minus_entropy']) <= 0.15} |")
    for r in results["toys"]:
        print(f"| 2 | {r['toy']} NLL vs CNF (nats) | {r['ebm_nll_on_cnf_points']:.3f} | "
              f"CNF {r['cnf_nll']:.3f} | ±0.1 | {abs(r['ebm_minus_cnf']) <= 0.1} |")
    d = results["digits"]
    c = d["classification"]
    print(f"| 3 | digits held-out accuracy | {c['energy_accuracy']:.3f} | CNN {c['cnn_accuracy']:.3f} | "
          f"≥ 0.95× | {goals['row3_classifier_at_least_0.95_of_cnn']} |")
    f = d["fd"]
    print(f"| 4 | digits FD, DDIM NFE {f['nfe']} | {f['energy']:.3f} | plain score {f['plain']:.3f} | "
          f"≤ 1.1× | {goals['row4_fd_within_10_percent']} |")
    m = d["composition"]
    print(f"| 5 | 'a AND prior' w={m['w']:g}, NFE {m['nfe']}: CNN agreement | MCMC {m['mcmc_energy']:.3f} | "
          f"CFG plain {m['cfg_plain']:.3f}, CFG energy {m['cfg_energy']:.3f} | reported | – |")
    k = d["step_cost"]
    print(f"| – | seconds per training step | {k['energy']:.4f} | plain {k['plain']:.4f} | ≤ 2.2× "
          f"({k['ratio']:.2f}×) | {goals['step_cost_at_most_2.2x']} |")


def with_overrides(s: Settings, assignments: list[str]) -> Settings:
    """``s`` with ``NAME=VALUE`` assignments applied, each VALUE converted to the field's scalar type."""
    fields = {f.name: type(getattr(s, f.name)) for f in dataclasses.fields(s)}
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or name not in fields or fields[name] not in (int, float):
            numeric = sorted(n for n, kind in fields.items() if kind in (int, float))
            raise SystemExit(f"--set takes NAME=VALUE for a numeric Settings field ({', '.join(numeric)}); "
                             f"got {assignment!r}")
        changes[name] = fields[name](value)
    return dataclasses.replace(s, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny settings for a CI smoke run (< 1 minute)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--rows", nargs="+", choices=("toys", "digits"), default=["toys", "digits"],
                        help="which rows to run (default: all; the table needs both)")
    parser.add_argument("--validation", action="store_true",
                        help="score the toy rows on a separate validation draw (where settings are chosen)")
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                        help="override Settings fields, e.g. --set toy_time_mean=1.0 toy_fourier_features=0")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = with_overrides(QUICK if args.quick else Settings(), args.set)
    part = "" if len(args.rows) == 2 else f"_{args.rows[0]}"
    split = "_validation" if args.validation else ""
    out = RESULTS / f"energy{'_quick' if args.quick else ''}{part}{split}.json"
    start = time.perf_counter()
    results: dict[str, Any] = {"settings": asdict(s), "threads": torch.get_num_threads()}
    if "toys" in args.rows:
        results["toys"] = toy_rows(s, args.validation)
        write_json(out, results)
    if "digits" in args.rows:
        results["digits"] = digits_rows(s)
    results["seconds_total"] = time.perf_counter() - start
    results["cpu_seconds_total"] = time.process_time()  # all threads: compare with 2 × wall on 2 cores
    if len(args.rows) == 2:
        results["targets"] = targets(results)
        print_table(results)
    write_json(out, results)
    print(f"\nwrote {out} ({results['seconds_total']:.0f} s wall, {results['cpu_seconds_total']:.0f} CPU-s)")


if __name__ == "__main__":
    main()
