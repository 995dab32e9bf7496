"""Train an image generator (UNet flow matching or DDPM, or Glow) as a YAML config describes.

    python pipelines/train_image_generator.py --config configs/digits_fm.yaml [section.key=value ...]
    python pipelines/train_image_generator.py --config configs/digits_fm.yaml --sample

Running the same command again resumes from the newest checkpoint in ``train.run_dir``.
``--sample`` then writes the PNG sample grids of the ``sample:`` section from the EMA weights
(as ``pipelines/sample_images.py`` does). Prints the checkpoint path.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vecfield.cli import parse_args, run  # noqa: E402
from vecfield.images.config import load_image_config  # noqa: E402
from vecfield.images.generator import (  # noqa: E402
    load_image_generator,
    train_image_generator,
    write_sample_grids,
)


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line, train (and optionally sample), print and return the checkpoint path."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config with data, model, train (unet, glow, "
                        "sample) sections")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    parser.add_argument("--sample", action="store_true", help="write sample grids after training")
    args = parse_args(parser, argv)
    config = load_image_config(args.config, args.overrides)
    checkpoint = train_image_generator(config)
    print(f"checkpoint: {checkpoint}")
    if args.sample:
        generator, info = load_image_generator(checkpoint)
        output = config.sample.output or str(Path(config.train.run_dir) / "samples")
        for path in write_sample_grids(generator, info, config.sample, output):
            print(f"wrote {path}")
    return checkpoint


if __name__ == "__main__":
    sys.exit(run(main))
