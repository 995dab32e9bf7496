"""Download ERA5 from the Copernicus CDS, one netCDF file per month and dataset.

    python pipelines/download_era5.py --start 2022-01 --end 2022-12 --output data/cds \\
        --levels 500 850 --area 72 -25 34 45

Needs ~/.cdsapirc (see the error message for how to create it). Re-running resumes: complete
files are verified and skipped. Open the result with vecfield.data.open_dataset or build a
training set with pipelines/build_dataset.py (e.g. configs/era5_regional_europe.yaml).
"""

import argparse
import sys

from vecfield.cli import parse_args, run
from vecfield.data.cds import PRESSURE_VARIABLES, SINGLE_VARIABLES, WB13_LEVELS, download, month_requests


def main(argv: list[str] | None = None) -> list[str]:
    """Parse the command line and download; returns the paths of the files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--start", required=True, help="first month, YYYY-MM")
    parser.add_argument("--end", required=True, help="last month, YYYY-MM (inclusive)")
    parser.add_argument("--output", required=True, help="folder for the monthly netCDF files")
    parser.add_argument("--pressure-variables", nargs="*", default=list(PRESSURE_VARIABLES))
    parser.add_argument("--single-variables", nargs="*", default=list(SINGLE_VARIABLES))
    parser.add_argument(
        "--levels", nargs="*", type=int, default=list(WB13_LEVELS), help="pressure levels, hPa"
    )
    parser.add_argument(
        "--hours", nargs="*", type=int, default=list(range(24)), help="UTC hours (default all)"
    )
    parser.add_argument("--area", nargs=4, type=float, default=None, metavar=("N", "W", "S", "E"))
    parser.add_argument("--grid", type=float, default=None, help="grid spacing in degrees (default 0.25)")
    parser.add_argument("--retries", type=int, default=4)
    args = parse_args(parser, argv)
    requests = month_requests(
        args.start,
        args.end,
        args.output,
        args.pressure_variables,
        args.single_variables,
        args.levels,
        args.hours,
        args.area,
        args.grid,
    )
    return [str(p) for p in download(requests, retries=args.retries)]


if __name__ == "__main__":
    sys.exit(run(main))
