"""The command-line path for a generative forecaster: build → train (EDM) → roll out --members → evaluate."""

import json

import numpy as np
import pytest
import xarray as xr
import yaml

from tests.forecast.helpers import tiny_pipeline_config, wave_dataset
from vecfield import evaluate as ev


@pytest.mark.slow  # ~60 s on 2 shared cores: a dataset build, training, sampling and evaluation
def test_generative_train_ensemble_rollout_and_probabilistic_evaluation(tmp_path) -> None:
    from pipelines.build_dataset import main as build
    from pipelines.evaluate import main as evaluate
    from pipelines.rollout import main as rollout
    from pipelines.train_forecaster import main as train

    source = tmp_path / "source.zarr"
    wave_dataset(days=16).drop_attrs().to_zarr(source, zarr_format=2)
    config = tiny_pipeline_config(tmp_path, source)
    config["model"].update({"method": "edm", "sampling_steps": 2})
    config["train"].update({"max_steps": 2, "curriculum": [[0, 1]], "validate_every": 2})
    # a churned sampler chosen at rollout time, not at validation
    config["rollout"].update({"steps": 3, "max_inits": 2, "validation_steps": 1, "member_chunk": 4,
                              "sampling_churn": 2.5, "sampling_churn_noise": 1.2})
    path = tmp_path / "tiny_edm.yaml"
    path.write_text(yaml.safe_dump(config))

    build(["--config", str(path)])
    checkpoint = train(["--config", str(path)])
    stored = rollout(["--config", str(path), "--checkpoint", str(checkpoint), "--members", "3"])
    forecast = xr.open_zarr(stored)
    assert forecast["geopotential"].dims == (
        "time", "prediction_timedelta", "realization", "level", "latitude", "longitude")
    assert forecast.sizes["realization"] == 3
    sampler = ("sampling_steps", "sampling_churn", "sampling_churn_noise")
    assert tuple(forecast.attrs[name] for name in sampler) == (2, 2.5, 1.2)
    written = evaluate(["--config", str(path)])
    for name in ("crps_scorecard", "crps_plot", "spread_skill_plot", "rmse_plot", "scorecard"):
        assert written[name].exists(), name
    record = json.loads(written["scores"].read_text())["ensemble"]
    assert record["members"] == 3
    truth = xr.open_zarr(config["dataset"]["output"])[list(forecast.data_vars)]
    expected = ev.crps(forecast.load(), truth.load())["geopotential"].sel(level=500).values
    np.testing.assert_allclose(record["crps"]["geopotential500"], expected, rtol=1e-6)
    ratio = ev.spread_skill_ratio(forecast, truth)["u_component_of_wind"].sel(level=850).values
    np.testing.assert_allclose(record["spread_skill_ratio"]["u_component_of_wind850"], ratio, rtol=1e-6)
    assert set(record["mae"]) == {"persistence", "climatology", "hourly_climatology", "damped_persistence"}
    assert "| geopotential | 500 | m² s⁻² | **vecfield** |" in written["crps_scorecard"].read_text()
