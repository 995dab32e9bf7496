"""Write PNG sample grids (per guidance scale and per class) from an image generator's EMA weights.

    python pipelines/sample_images.py --config configs/digits_fm.yaml [sample.key=value ...]
    python pipelines/sample_images.py --config configs/digits_fm.yaml --checkpoint runs/x/step_000001000.pt

The network comes from the checkpoint (its stored config); the ``sample:`` section of ``--config``
(with overrides) says how to sample: solver, steps, guidance scales, samples per class, seed and
the output folder (default ``<train.run_dir>/samples``). Without ``--checkpoint`` the newest
checkpoint of ``train.run_dir`` is used. Every PNG is written atomically.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield.cli import parse_args, run  # noqa: E402
from vecfield.images.config import load_image_config  # noqa: E402
from vecfield.images.generator import latest_checkpoint, load_image_generator, write_sample_grids  # noqa: E402


def main(argv: list[str] | None = None) -> list[Path]:
    """Parse the command line, sample, print and return the written paths."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the YAML config the generator was trained with")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint file (default: the run's newest)")
    args = parse_args(parser, argv)
    config = load_image_config(args.config, args.overrides)
    checkpoint = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(config)
    generator, info = load_image_generator(checkpoint)
    output = config.sample.output or str(Path(config.train.run_dir) / "samples")
    paths = write_sample_grids(generator, info, config.sample, output)
    for path in paths:
        print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    sys.exit(run(main))
