"""Score a forecast zarr against the dataset's truth and simple baselines (WeatherBench2 metrics).

    python pipelines/evaluate.py --config configs/quickstart.yaml [--forecast runs/quickstart/forecast.zarr]

Writes into ``rollout.output``: scorecard.md (the evaluation period and number of initializations;
RMSE with ratios to the baselines, ACC and bias per variable, level and lead, with units),
rmse_vs_lead.png, acc_vs_lead.png, maps_<variable><level>.png at
``rollout.map_leads_hours`` and scores.json. The baselines are persistence, the climatology (day of
year × hour), the per-hour-of-day climatology and damped anomaly persistence, all fitted on the train
split, and the best of them at each lead (the scorecard's ``best_baseline`` row, naming the one chosen).
An ensemble forecast (dim ``realization``, from ``pipelines/rollout.py --members N``) is scored by
its mean there, plus crps_scorecard.md, crps_vs_lead.png and spread_skill.png.

A forecast store whose rollout was interrupted is refused (exit code 2) with the way to finish it;
``--completed-leads-only`` scores its finished leads instead and says so in the scorecard. Forecasts
that run past the dataset's end are an error unless ``--missing drop`` (the default when
``rollout.inits: all``): each lead is then scored over the initializations whose valid time the
dataset has, and the scorecard gives that number per lead.
"""

import argparse
import sys
from pathlib import Path

from vecfield.cli import parse_args, run
from vecfield.forecast.config import load_forecast_config
from vecfield.pipelines.forecast_evaluation import evaluate_forecast


def main(argv: list[str] | None = None) -> dict[str, Path]:
    """Parse the command line, evaluate, print and return the written files."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML config (dataset and rollout sections are used)")
    parser.add_argument(
        "--forecast", default=None, help="forecast zarr (default <rollout.output>/forecast.zarr)"
    )
    parser.add_argument(
        "--missing", choices=("raise", "drop"), default=None,
        help="forecasts reaching valid times the dataset lacks: raise an error, or drop them lead by lead "
        "(as the API's missing='drop'); default drop when rollout.inits is all, else raise",
    )
    parser.add_argument(
        "--completed-leads-only", action="store_true",
        help="score an interrupted forecast store's finished leads instead of refusing it",
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    args = parse_args(parser, argv)
    config = load_forecast_config(args.config, args.overrides)
    forecast = Path(args.forecast) if args.forecast else Path(config.rollout.output) / "forecast.zarr"
    written = evaluate_forecast(
        forecast, config, missing=args.missing, completed_only=args.completed_leads_only
    )
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


if __name__ == "__main__":
    sys.exit(run(main))
