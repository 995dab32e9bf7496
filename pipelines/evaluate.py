"""Score a forecast zarr against the dataset's truth, persistence and climatology (WeatherBench2 metrics).

    python pipelines/evaluate.py --config configs/quickstart.yaml [--forecast runs/quickstart/forecast.zarr]

Writes into ``rollout.output``: scorecard.md (the evaluation period and number of initializations;
RMSE with ratios to the baselines, ACC and bias per variable, level and lead, with units),
rmse_vs_lead.png, acc_vs_lead.png, maps_<variable><level>.png at
``rollout.map_leads_hours`` and scores.json. The climatology is computed from the train split.
An ensemble forecast (dim ``realization``, from ``pipelines/rollout.py --members N``) is scored by
its mean there, plus crps_scorecard.md, crps_vs_lead.png and spread_skill.png.
"""

import argparse
import sys
from pathlib import Path

from vecfield.config.forecast import load_forecast_config
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
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    args = parser.parse_args(argv)
    config = load_forecast_config(args.config, args.overrides)
    forecast = Path(args.forecast) if args.forecast else Path(config.rollout.output) / "forecast.zarr"
    if not forecast.exists():
        raise ValueError(f"no forecast at {forecast}; make one with pipelines/rollout.py")
    written = evaluate_forecast(forecast, config)
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


if __name__ == "__main__":
    try:
        main()
    except ValueError as error:  # user errors: print the message, not a traceback
        sys.exit(f"error: {error}")
