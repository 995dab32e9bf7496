"""Train an energy-based model from a YAML preset; report its likelihood or its classifier; write samples.

    python pipelines/train_energy_model.py --config configs/energy_toy.yaml [--output DIR]
    python pipelines/train_energy_model.py --config configs/energy_digits.yaml [section.key=value ...]

Two kinds of preset, each trained by the loop its data already use:
- 2-D toys (``data.source: toy``, ``model.kind: ebm``): the density pipeline
  (``pipelines/train_density_model.py``) fits ``vecfield.density.EnergyMLP`` and reports the held-out
  NLL, −E(x, t_end) − log Ẑ with log Ẑ by annealed importance sampling, against the true entropy;
  this script adds the AIS effective sample size. Options: ``--output``.
- images (bundled digits, MNIST; ``model.method: energy``): the image pipeline
  (``vecfield.images.generator``, the Trainer; running it again resumes) trains an energy head over
  the UNet, class-conditional with the JEM classification term (``model.classifier_weight``). Then
  it reports the held-out accuracy (``data.val_range``) of the energy classifier argmin_h E(x, h)
  and writes into ``<train.run_dir>/samples``: ODE sample grids at each ``sample.guidance`` scale and
  ``mcmc.png``, annealed MALA on the energy itself with DDIM transport between levels (one row per
  class, as many gradient evaluations as the ODE sampler's NFE).
  Options: ``section.key=value`` overrides.
Both write ``report.json`` beside the model.
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield.cli import parse_args, run  # noqa: E402  (first: sets OpenMP's wait policy before torch loads)

# isort: split
import torch  # noqa: E402

from vecfield.config.typed import read_config_file  # noqa: E402
from vecfield.core import classify, network_calls, sample_mcmc  # noqa: E402
from vecfield.density import EnergyMLP, load_checkpoint  # noqa: E402
from vecfield.images.config import load_image_config  # noqa: E402
from vecfield.images.generator import (  # noqa: E402
    load_image_generator,
    load_images,
    select_range,
    train_image_generator,
    write_png,
    write_sample_grids,
)


def _density_pipeline() -> Any:
    spec = importlib.util.spec_from_file_location("train_density_model", ROOT / "pipelines" /
                                                  "train_density_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_json(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def run_toy(config: Path, output: Path | None) -> dict[str, Any]:
    """The density pipeline on an ``ebm`` preset, plus the AIS diagnostics of log Ẑ."""
    density = _density_pipeline()
    cfg = density.load_config(config)
    if cfg["kind"] != "ebm":
        raise ValueError(f"{config}: energy presets use model.kind: ebm, got {cfg['kind']!r}")
    out = output or (ROOT / cfg["output_dir"])
    result = density.main(["--config", str(config), "--output", str(out)])
    model = load_checkpoint(out / "model.pt", EnergyMLP)
    ais = model.ais_result()
    result.update(ais_log_z=ais.log_z, ais_ess=ais.ess, ais_chains=model.ais["chains"],
                  ais_acceptance=ais.acceptance_rate)
    print(f"  AIS log Z {ais.log_z:.3f}, ESS {ais.ess:.0f} of {model.ais['chains']} chains, "
          f"acceptance {ais.acceptance_rate:.2f}")
    _write_json({"config": str(config), **result}, out / "report.json")
    return result


def run_images(config_path: Path, overrides: list[str]) -> dict[str, Any]:
    """Train (or resume) the energy UNet, evaluate its classifier, write ODE and MCMC sample grids."""
    config = load_image_config(config_path, overrides)
    if config.model.method != "energy":
        raise ValueError(f"{config_path}: energy presets use model.method: energy, "
                         f"got {config.model.method!r}")
    checkpoint = train_image_generator(config)
    generator, info = load_image_generator(checkpoint)
    samples = Path(config.sample.output or Path(config.train.run_dir) / "samples")
    report: dict[str, Any] = {"config": str(config_path), "checkpoint": str(checkpoint), "step": info.step}
    k = generator.num_classes
    if k and config.data.val_range is not None:
        dataset, _ = load_images(config.data)
        held = select_range(dataset, config.data.val_range, "val_range")
        x = generator.to_model_space(held.images)
        predicted = torch.cat([classify(generator.model, batch, k)[0] for batch in x.split(256)])
        report["energy_classifier_accuracy"] = float((predicted == held.labels).double().mean())
        report["held_out_images"] = int(held.images.shape[0])
        print(f"energy classifier: {report['energy_classifier_accuracy']:.3f} of "
              f"{report['held_out_images']} held-out images")
    paths = write_sample_grids(generator, info, config.sample, samples)
    n = config.sample.per_class
    labels = torch.arange(k).repeat_interleave(n) if k else None
    count = k * n if k else n
    # as many energy-gradient evaluations as the ODE sampler's NFE: (levels + 1)·(transport + MALA)
    levels = max(1, network_calls(config.sample.solver, config.sample.steps) // 2 - 1)
    mcmc = sample_mcmc(generator.model, count, labels, sampler="mala", step_size=0.3, data_scale=0.1,
                       levels=levels, generator=torch.Generator().manual_seed(config.sample.seed))
    paths.append(write_png(samples / "mcmc.png", generator.to_levels(mcmc.samples), info.levels, n))
    report["mcmc_acceptance_rate"] = mcmc.acceptance_rate
    print(f"annealed MALA over {levels + 1} levels: acceptance {mcmc.acceptance_rate:.2f}")
    for path in paths:
        print(f"wrote {path}")
    _write_json(report, Path(config.train.run_dir) / "report.json")
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True,
                        help="YAML preset, e.g. configs/energy_toy.yaml")
    parser.add_argument("--output", type=Path, default=None, help="output folder of a toy preset")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides of an image preset")
    args = parse_args(parser, argv)
    raw = read_config_file(args.config)
    if isinstance(raw.get("data"), dict) and "source" in raw["data"]:
        if args.overrides:
            raise ValueError("toy presets take no section.key=value overrides; edit the preset")
        return run_toy(args.config, args.output)
    if args.output is not None:
        raise ValueError("image presets write into train.run_dir; override it with train.run_dir=DIR")
    return run_images(args.config, args.overrides)


if __name__ == "__main__":
    sys.exit(run(main))
