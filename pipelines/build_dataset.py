"""Build a training dataset (zarr) from ERA5 sources, as a YAML preset describes.

    python pipelines/build_dataset.py --config configs/era5_wb2_64x32.yaml [section.key=value ...]

Example overrides: ``dataset.time.end=1980-12-31T18 dataset.output=data/small.zarr``.
An interrupted build resumes when run again with the same config; ``--restart`` discards it.
"""

import argparse
import sys
from pathlib import Path

from vecfield.cli import parse_args, run
from vecfield.config import load_config
from vecfield.data.build import build_dataset, discard_partial
from vecfield.data.config import DatasetConfig


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line, build the dataset, print where it went; returns the output path."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML preset with a dataset: section")
    parser.add_argument("--restart", action="store_true", help="discard an unfinished build of this output")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    args = parse_args(parser, argv)
    config = load_config(args.config, {"dataset": DatasetConfig}, args.overrides)["dataset"]
    if args.restart:
        discard_partial(config)
    output = build_dataset(config)
    print(f"wrote {output}")
    return output


if __name__ == "__main__":
    sys.exit(run(main))
