"""Roll a trained forecaster out from every initialization of a split, streaming to zarr.

    python pipelines/rollout.py --config configs/quickstart.yaml \
        --checkpoint runs/quickstart/train/checkpoints/best.pt [rollout.steps=40 rollout.max_inits=4]

Writes ``<rollout.output>/forecast.zarr`` in WeatherBench2's forecast layout (time = initialization,
prediction_timedelta, level, latitude, longitude), one lead at a time; rerunning after an
interruption continues where it stopped with identical values. A generative forecaster
(``model.method: flow_matching | edm``) rolls out ``--members N`` (or ``rollout.members``) members
per initialization, adding the dim ``realization``:

    python pipelines/rollout.py --config configs/generative_edm.yaml --checkpoint <best.pt> --members 8

``--inits all`` (or ``rollout.inits=all``) starts a forecast at every initialization of the split,
not only those whose whole forecast lies inside it; pipelines/evaluate.py then scores the leads that
run past the data where the dataset has their valid time.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from vecfield.cli import parse_args, run
from vecfield.forecast.config import load_forecast_config
from vecfield.forecast.forecaster import Forecaster
from vecfield.pipelines.forecast_evaluation import forecast_split


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line, roll out, print and return the forecast store's path."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML config (dataset and rollout sections are used)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint of pipelines/train_forecaster.py")
    parser.add_argument("--output", default=None, help="zarr store (default <rollout.output>/forecast.zarr)")
    parser.add_argument(
        "--members", type=int, default=None,
        help="ensemble members (generative forecasters; default rollout.members)",
    )
    parser.add_argument(
        "--inits", choices=("complete", "all"), default=None,
        help="complete: initializations whose whole forecast lies in the split; all: every one in the "
        "split (default rollout.inits)",
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    args = parse_args(parser, argv)
    config = load_forecast_config(args.config, args.overrides)
    if args.members is not None:
        config = replace(config, rollout=replace(config.rollout, members=args.members))
    if args.inits is not None:
        config = replace(config, rollout=replace(config.rollout, inits=args.inits))
    path = forecast_split(
        Forecaster.load(args.checkpoint), config, Path(args.output) if args.output else None
    )
    print(f"forecast: {path}")
    return path


if __name__ == "__main__":
    sys.exit(run(main))
