"""Train the GraphCast-style forecaster on a built dataset, as a YAML config describes.

    python pipelines/train_forecaster.py --config configs/quickstart.yaml [section.key=value ...]
    torchrun --standalone --nproc_per_node=2 pipelines/train_forecaster.py --config configs/quickstart.yaml

Running the same command again resumes from the newest checkpoint in ``train.run_dir``. The data
must exist (``pipelines/build_dataset.py --config <same config>``; ``pipelines/quickstart.py``
builds it for you). Prints the checkpoint to forecast with.
"""

import argparse
import sys
from pathlib import Path

from vecfield.cli import parse_args, run
from vecfield.forecast.config import load_forecast_config
from vecfield.forecast.training import train_forecaster


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line, train, print and return the checkpoint path."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML config with dataset, model, train sections")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    args = parse_args(parser, argv)
    checkpoint = train_forecaster(load_forecast_config(args.config, args.overrides))
    print(f"checkpoint: {checkpoint}")
    return checkpoint


if __name__ == "__main__":
    sys.exit(run(main))
