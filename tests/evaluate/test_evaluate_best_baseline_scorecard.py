"""The scorecard of pipelines/evaluate.py scores the model against the best simple baseline at every
lead (issue 21): on an hourly AR(1) anomaly over a diurnal cycle, damped anomaly persistence is the
best linear forecast, so it is the best baseline at every short lead, with a_L ≈ φ^L."""

import json

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from vecfield.forecast.config import load_forecast_config
from vecfield.forecast.store import COMPLETED
from vecfield.pipelines.forecast_evaluation import evaluate_forecast

PHI = 0.9
LEADS = 6


def _truth(hours: int, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    lat, lon = np.arange(40.0, 46.0, 2.0), np.arange(0.0, 8.0, 2.0)
    time = pd.date_range("2021-01-01", periods=hours, freq="h")
    anomaly = np.zeros((hours, lat.size, lon.size))
    for t in range(1, hours):
        anomaly[t] = PHI * anomaly[t - 1] + rng.normal(size=(lat.size, lon.size))
    diurnal = 4.0 * np.sin(2 * np.pi * time.hour.values / 24)[:, None, None]
    values = 280.0 + diurnal + anomaly
    truth = xr.Dataset({"2m_temperature": (("time", "latitude", "longitude"), values.astype(np.float32),
                                           {"units": "K"})},
                       coords={"time": time, "latitude": lat, "longitude": lon})
    return truth


def test_scorecard_names_the_best_baseline_and_the_model_ratio_to_it(tmp_path) -> None:
    hours = 24 * 200
    truth = _truth(hours)
    times = truth["time"].values
    splits = {"train": [str(times[0]), str(times[24 * 150 - 1])],
              "test": [str(times[24 * 150]), str(times[-1])]}
    truth.attrs["splits"] = json.dumps(splits)
    truth.to_zarr(tmp_path / "data.zarr", zarr_format=2)
    inits = times[24 * 150 + 1: -LEADS: 5]
    leads = pd.to_timedelta(np.arange(1, LEADS + 1), unit="h").values
    valid = truth["2m_temperature"].sel(time=(inits[:, None] + leads[None, :]).reshape(-1)).values
    rng = np.random.default_rng(1)
    noise = 0.1 * rng.normal(size=(inits.size, LEADS, 3, 4))
    model = valid.reshape(inits.size, LEADS, *valid.shape[1:]) + noise
    forecast = xr.Dataset(
        {"2m_temperature": (("time", "prediction_timedelta", "latitude", "longitude"),
                            model.astype(np.float32))},
        coords={"time": inits, "prediction_timedelta": leads, "latitude": truth["latitude"],
                "longitude": truth["longitude"]},
        attrs={COMPLETED: LEADS},
    )
    forecast.to_zarr(tmp_path / "forecast.zarr", zarr_format=2)
    config = {
        "dataset": {"output": str(tmp_path / "data.zarr"), "sources": [{"kind": "zarr", "path": "x.zarr"}],
                    "variables": ["2m_temperature"],
                    "time": {"start": splits["train"][0], "end": splits["test"][1], "step_hours": 1},
                    "splits": splits},
        "model": {},
        "train": {"run_dir": str(tmp_path / "train"), "max_steps": 1},
        "rollout": {"output": str(tmp_path / "out"), "steps": LEADS, "map_leads_hours": []},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    written = evaluate_forecast(tmp_path / "forecast.zarr", load_forecast_config(tmp_path / "config.yaml"))

    scores = json.loads(written["scores"].read_text())
    rmse = {name: np.array(channels["2m_temperature"]) for name, channels in scores["scores"].items()}
    baselines = ["persistence", "climatology", "hourly_climatology", "damped_persistence"]
    assert set(rmse) == {"vecfield", *baselines, "best_baseline"}
    np.testing.assert_allclose(rmse["best_baseline"], np.min([rmse[b] for b in baselines], axis=0))
    # AR(1) + a fixed diurnal cycle: C + φ^L x′ is the best linear forecast, at every lead
    assert scores["best_baseline_choice"]["2m_temperature"] == ["damped_persistence"] * LEADS
    np.testing.assert_allclose(scores["damped_persistence_coefficients"]["2m_temperature"],
                               PHI ** np.arange(1, LEADS + 1), atol=0.03)
    assert (rmse["damped_persistence"] < 0.95 * rmse["persistence"]).all()
    scorecard = written["scorecard"].read_text()
    assert "- 2m_temperature: damped_persistence 1 h–6 h" in scorecard
    row = next(line for line in scorecard.splitlines()
               if line.startswith("| 2m_temperature |  | K | best_baseline"))
    ratios = [float(cell.split("(")[1].rstrip(") ")) for cell in row.split("|")[5:-1]]
    np.testing.assert_allclose(ratios, rmse["vecfield"] / rmse["best_baseline"], atol=0.006)
