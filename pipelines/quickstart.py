"""The main job: build (or reuse) the data, train, roll out 5 days and evaluate, on the embedded default.

    python pipelines/quickstart.py [--config configs/quickstart.yaml] [--threads 1] [section.key=value ...]

Everything lands under runs/quickstart/: dataset.zarr, train/ (checkpoints, logs), forecast.zarr,
scorecard.md, rmse_vs_lead.png, acc_vs_lead.png, maps_*.png, scores.json. Rerunning reuses the
data, resumes or skips training, and resumes the rollout.
"""

import argparse
import sys
import time
from pathlib import Path

from vecfield.cli import parse_args, run
from vecfield.data.build import build_dataset
from vecfield.forecast.config import load_forecast_config
from vecfield.forecast.forecaster import Forecaster
from vecfield.forecast.training import train_forecaster
from vecfield.pipelines.forecast_evaluation import evaluate_forecast, forecast_split, skill_table


def main(argv: list[str] | None = None) -> dict[str, Path]:
    """Run the four stages; print each stage's time and where the outputs are."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/quickstart.yaml", help="YAML config")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides (YAML values)")
    args = parse_args(parser, argv, default_threads=1)  # 1: fastest for this small model
    config = load_forecast_config(args.config, args.overrides)
    times = {}
    start = time.perf_counter()
    build_dataset(config.dataset, reuse=True)
    times["data"] = time.perf_counter() - start
    checkpoint = train_forecaster(config)
    times["train"] = time.perf_counter() - start - sum(times.values())
    forecast = forecast_split(Forecaster.load(checkpoint), config)
    times["rollout"] = time.perf_counter() - start - sum(times.values())
    written = evaluate_forecast(forecast, config)
    times["evaluate"] = time.perf_counter() - start - sum(times.values())
    print(skill_table(written["scores"]))
    print("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    print(f"checkpoint: {checkpoint}\nforecast: {forecast}")
    for name, path in written.items():
        print(f"{name}: {path}")
    return {"checkpoint": checkpoint, "forecast": forecast, **written}


if __name__ == "__main__":
    sys.exit(run(main))
