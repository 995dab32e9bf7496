"""Train a density model from a YAML preset; report train and held-out log-likelihood; write plots.

    python pipelines/train_density_model.py --config configs/density_digits.yaml [--output DIR]

Data sources: ``crabs`` (Pearson's binned table, fitted by binned EM), ``toy`` (2-D toy densities,
held-out NLL against the true entropy where known) and ``images`` (bundled 8×8 digits or MNIST IDX,
uniformly dequantized, bits/dim). Models: gmm, vae, nice, realnvp, glow, cnf (the flow-matching
continuous flow, likelihood by ODE), ebm (the energy-based model, likelihood by AIS). Writes into
the output folder: ``report.json``, ``model.pt`` (checkpoint), a figure (crab histogram with the fitted
mixture, 2-D samples and density, or an image sample grid) and, for gradient-trained models,
``training/`` (the Trainer's per-step ``train_log.csv`` and its final training checkpoint).
"""

import argparse
import dataclasses
import inspect
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield.cli import parse_args, run  # noqa: E402  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from vecfield.config.typed import read_yaml  # noqa: E402
from vecfield.density import (  # noqa: E402
    VAE,
    Dequantization,
    EnergyMLP,
    FlowMatchingCNF,
    GaussianMixture,
    TrainSettings,
    fit,
    held_out_report,
    read_binned_counts,
    save_checkpoint,
)
from vecfield.density.plots import (  # noqa: E402
    binned_mixture_figure,
    density_2d_figure,
    image_grid_figure,
    save_figure,
)
from vecfield.files import write_text_atomic  # noqa: E402
from vecfield.flows import NICE, Glow, RealNVP  # noqa: E402
from vecfield.images import load_image_dataset  # noqa: E402
from vecfield.toys import SAMPLERS, TRUE_ENTROPY, sample_toy  # noqa: E402

MODELS: dict[str, type] = {"gmm": GaussianMixture, "vae": VAE, "nice": NICE, "realnvp": RealNVP, "glow": Glow,
                           "cnf": FlowMatchingCNF, "ebm": EnergyMLP}
SOURCES = ("crabs", "toy", "images")
TOP_LEVEL = ("data", "model", "train", "output_dir", "samples")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data come from; only the fields of the chosen ``source`` are used."""

    source: str
    path: str | None = None  # crabs CSV, or MNIST images IDX file (relative to the repository root)
    labels_path: str | None = None
    toy: str = "moons"
    train_size: int = 20_000
    test_size: int = 5_000
    dataset: str = "digits"
    train_range: tuple[int, int] = (0, 1000)
    test_range: tuple[int, int] = (1350, 1797)
    seed: int = 0


def _check_keys(section: str, given: dict[str, Any], valid: list[str]) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in `{section}`; valid keys are {sorted(valid)}")


def load_config(path: Path) -> dict[str, Any]:
    """Read and validate a preset: unknown keys anywhere raise ValueError listing the valid ones."""
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist; presets live in configs/density_*.yaml")
    raw = read_yaml(path.read_text(), f"config file {path}")
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a YAML mapping with keys {list(TOP_LEVEL)}")
    _check_keys("top level", raw, list(TOP_LEVEL))
    for required in ("data", "model"):
        if not isinstance(raw.get(required), dict):
            raise ValueError(f"{path} needs a `{required}` mapping")
    data_fields = [f.name for f in dataclasses.fields(DataConfig)]
    _check_keys("data", raw["data"], data_fields)
    data = DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw["data"].items()})
    if data.source not in SOURCES:
        raise ValueError(f"unknown data source {data.source!r}; choose one of {list(SOURCES)}")
    model = dict(raw["model"])
    kind = model.pop("kind", None)
    if kind not in MODELS:
        raise ValueError(f"model.kind must be one of {sorted(MODELS)}, got {kind!r}")
    shape_args = {"event_shape", "features"}
    valid_model = [p for p in inspect.signature(MODELS[kind]).parameters if p not in shape_args]
    _check_keys(f"model ({kind})", model, valid_model)
    train_raw = raw.get("train") or {}
    _check_keys("train", train_raw, [f.name for f in dataclasses.fields(TrainSettings)])
    return dict(data=data, kind=kind, model_args=model, train=TrainSettings(**train_raw),
                output_dir=raw.get("output_dir", f"runs/density_{data.source}_{kind}"),
                samples=int(raw.get("samples", 64)))


def _resolve(path: str | None, what: str) -> Path:
    if path is None:
        raise ValueError(f"data.path is required for {what}")
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def run_crabs(cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    """Binned EM on Pearson's crabs, with the single normal as the likelihood-ratio null."""
    if cfg["kind"] != "gmm":
        raise ValueError("the crabs table is binned; fit it with model.kind: gmm")
    edges, counts = read_binned_counts(_resolve(cfg["data"].path, "the crabs table"))
    generator = torch.Generator().manual_seed(cfg["data"].seed)
    mixture = GaussianMixture(1, **cfg["model_args"]).fit_binned(edges, counts, generator)
    single = GaussianMixture(1, 1, n_restarts=1).fit_binned(edges, counts, generator)
    log_l, log_l1 = mixture.binned_log_likelihood(edges, counts), single.binned_log_likelihood(edges, counts)
    save_checkpoint(mixture, out / "model.pt")
    save_figure(binned_mixture_figure(edges, counts, mixture), out / "crabs_mixture.png")
    order = mixture.means[:, 0].argsort()
    report = dict(weights=mixture.weights[order].tolist(), means=mixture.means[order, 0].tolist(),
                  sds=mixture.covariances.reshape(mixture.n_components, -1)[order, 0].sqrt().tolist(),
                  binned_log_likelihood=log_l, single_normal_log_likelihood=log_l1,
                  likelihood_ratio_statistic=2 * (log_l - log_l1))
    print(f"{mixture.n_components}-component binned fit: log L = {log_l:.2f} (one normal: {log_l1:.2f}, "
          f"LR statistic {2 * (log_l - log_l1):.1f})")
    for w, m, s in zip(report["weights"], report["means"], report["sds"], strict=True):
        print(f"  weight {w:.3f}  mean {m:.4f}  sd {s:.4f}")
    return report


def _build(cfg: dict[str, Any], event_shape: tuple[int, ...]) -> Any:
    cls = MODELS[cfg["kind"]]
    if cls is GaussianMixture:
        return cls(math.prod(event_shape), **cfg["model_args"])
    return cls(event_shape, **cfg["model_args"])


def run_toy(cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    data: DataConfig = cfg["data"]
    if data.toy not in SAMPLERS:
        raise ValueError(f"unknown toy {data.toy!r}; choose one of {sorted(SAMPLERS)}")
    train = sample_toy(data.toy, data.train_size, torch.Generator().manual_seed(data.seed))
    test = sample_toy(data.toy, data.test_size, torch.Generator().manual_seed(data.seed + 1))
    model = _build(cfg, (2,))
    fit(model, train, cfg["train"], progress=True, run_dir=str(out / "training"))
    report = held_out_report(model, train, test)
    print(report)
    result = report.as_dict()
    if data.toy in TRUE_ENTROPY:
        result["true_entropy_nats"] = TRUE_ENTROPY[data.toy]
        print(f"  held-out NLL {-report.held_out_nats:.3f} nats vs true entropy {TRUE_ENTROPY[data.toy]:.3f}")
    save_checkpoint(model, out / "model.pt")
    save_figure(density_2d_figure(model, test, generator=torch.Generator().manual_seed(0)),
                out / f"{data.toy}_{cfg['kind']}.png")
    return result


def run_images(cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    data: DataConfig = cfg["data"]
    path = _resolve(data.path, "mnist") if data.dataset == "mnist" else None
    labels = _resolve(data.labels_path, "mnist labels") if data.labels_path else None
    limit = max(data.train_range[1], data.test_range[1])
    dataset = load_image_dataset(data.dataset, path, labels, limit=limit)
    for name, (lo, hi) in (("train_range", data.train_range), ("test_range", data.test_range)):
        if not 0 <= lo < hi <= dataset.images.shape[0]:
            raise ValueError(f"data.{name} = [{lo}, {hi}] must be an increasing range within the "
                             f"{dataset.images.shape[0]} images")
    images = dataset.images
    if cfg["kind"] == "gmm":
        images = images.flatten(1)  # the mixture works on flat vectors (C·H·W,)
    train, test = images[slice(*data.train_range)], images[slice(*data.test_range)]
    dequantization = Dequantization(dataset.levels)
    model = _build(cfg, tuple(images.shape[1:]))
    fit(model, train, cfg["train"], dequantization=dequantization, progress=True,
        run_dir=str(out / "training"))
    report = held_out_report(model, train, test, dequantization, generator=torch.Generator().manual_seed(1))
    print(report)
    print(f"  uniform baseline: {math.log2(dataset.levels):.3f} bits/dim")
    save_checkpoint(model, out / "model.pt")
    samples = model.sample(cfg["samples"], generator=torch.Generator().manual_seed(0))
    samples = samples.reshape(-1, *dataset.image_shape)
    save_figure(image_grid_figure(samples.float(), f"{cfg['kind']} samples ({dataset.name})"),
                out / f"{dataset.name}_{cfg['kind']}_samples.png")
    return {**report.as_dict(), "uniform_bits_per_dim": math.log2(dataset.levels)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True,
                        help="YAML preset, e.g. configs/density_crabs.yaml")
    parser.add_argument("--output", type=Path, default=None,
                        help="output folder (default: output_dir of the preset)")
    args = parse_args(parser, argv)
    cfg = load_config(args.config)
    torch.manual_seed(cfg["data"].seed)
    out = args.output or (ROOT / cfg["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    runner = {"crabs": run_crabs, "toy": run_toy, "images": run_images}[cfg["data"].source]
    result = runner(cfg, out)
    write_text_atomic(out / "report.json",
                      json.dumps({"config": str(args.config), "model": cfg["kind"], **result}, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    sys.exit(run(main))
