"""Spin the default atmosphere up from rest and write its monthly zonal-mean climate.

    python pipelines/spin_up_default_atmosphere.py [--days 200] [--members 2] [--output PATH]

The embedded default dataset starts each of its independent runs from this climate (plus seeded
eddy noise), so generating it costs a month of spin-up instead of ~200 days. The file shipped in
the package (``vecfield/data/synthetic/held_suarez_climate.npz``) was written by this script
with its defaults; rerun it after changing the atmosphere's forcing or resolution. ~6 minutes on
one CPU core.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from vecfield.cli import parse_args, run
from vecfield.data.synthetic.default_dataset import CLIMATE_FILE, DefaultDatasetConfig, spin_up_climate
from vecfield.files import atomic_write


def main(argv: list[str] | None = None) -> Path:
    """Parse the command line, spin up, write the climate file; returns its path."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--days", type=float, default=200.0, help="spin-up from rest before the averaged year"
    )
    parser.add_argument("--members", type=int, default=2, help="independent runs averaged together")
    parser.add_argument("--output", type=Path, default=CLIMATE_FILE, help="where to write the .npz")
    args = parse_args(parser, argv)
    if args.days <= 0 or args.members < 1:
        raise ValueError("--days must be positive and --members at least 1")
    config = DefaultDatasetConfig()
    climate = spin_up_climate(config, spinup_days=args.days, members=args.members)
    metadata = json.dumps(
        {
            "atmosphere": dataclasses.asdict(config.atmosphere),
            "seed": config.seed,
            "land_fraction": config.land_fraction,
            "mountain_height_m": config.mountain_height_m,
            "spinup_days": args.days,
            "members": args.members,
        }
    )
    atomic_write(args.output, lambda f: np.savez_compressed(f, monthly_zonal_mean=climate, metadata=metadata))
    print(f"wrote {args.output}")
    return args.output


if __name__ == "__main__":
    sys.exit(run(main))
