"""The command-line path on a tiny dataset: build → train → roll out → evaluate; config errors."""

import json

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from tests.forecast.helpers import tiny_pipeline_config, wave_dataset
from vecfield.data.sources import SOURCE_OPENERS
from vecfield.forecast.config import (
    forecast_config_from_dict,
    forecast_config_to_dict,
    load_forecast_config,
)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pipeline")
    source = tmp_path / "source.zarr"
    wave_dataset(days=16).drop_attrs().to_zarr(source, zarr_format=2)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_pipeline_config(tmp_path, source)))
    return path


def test_build_train_rollout_evaluate_from_the_command_line(config_file, capsys) -> None:
    from pipelines.build_dataset import main as build
    from pipelines.evaluate import main as evaluate
    from pipelines.rollout import main as rollout
    from pipelines.train_forecaster import main as train

    build(["--config", str(config_file)])
    checkpoint = train(["--config", str(config_file)])
    assert checkpoint.name == "best.pt"
    forecast_path = rollout(["--config", str(config_file), "--checkpoint", str(checkpoint)])
    forecast = xr.open_zarr(forecast_path)
    assert dict(forecast.sizes) == {
        "time": 3,
        "prediction_timedelta": 4,
        "level": 2,
        "latitude": 16,
        "longitude": 32,
    }
    assert str(forecast["time"].values[0]).startswith("2020-01-11T06")  # the test split, t − Δt inside it
    written = evaluate(["--config", str(config_file)])
    scores = json.loads(written["scores"].read_text())
    assert set(scores["scores"]) == {"vecfield", "persistence", "climatology", "hourly_climatology",
                                     "damped_persistence", "best_baseline"}
    assert scores["lead_hours"] == [6.0, 12.0, 18.0, 24.0]
    assert all(np.isfinite(v).all() for s in scores["scores"].values() for v in s.values())
    assert written["maps_geopotential500"].exists() and written["rmse_plot"].exists()
    scorecard = written["scorecard"].read_text()
    period = ("Evaluation period: 3 initializations from 2020-01-11 06:00 to 2020-01-13 06:00 UTC "
              "(every 24 h); leads 6 h to 24 h; valid times to 2020-01-14 06:00 UTC.")
    assert period in scorecard.splitlines() and scores["evaluation"]["summary"] == period
    assert scores["evaluation"]["initializations"] == 3
    assert scores["evaluation"]["first_init"] == "2020-01-11T06:00"
    assert scores["evaluation"]["climatology_period"] == ["2020-01-01T00:00", "2020-01-08T18:00"]
    assert "climatology: the train split 2020-01-01T00:00 to 2020-01-08T18:00." in scorecard
    for metric in ("RMSE by lead", "ACC (anomaly correlation", "Bias (mean of forecast − truth)"):
        assert any(line.startswith(metric) for line in scorecard.splitlines()), metric
    assert scorecard.count("| geopotential | 500 | m² s⁻² | **vecfield** |") == 2  # RMSE and bias rows
    assert "| geopotential | 500 | 1 | **vecfield** |" in scorecard  # ACC
    assert "| 2m_temperature |  | K | persistence |" in scorecard
    assert scores["units"] == {"geopotential500": "m**2 s**-2", "geopotential850": "m**2 s**-2",
                               "u_component_of_wind500": "m s**-1", "u_component_of_wind850": "m s**-1",
                               "2m_temperature": "K"}
    assert set(scores["acc"]) == {"vecfield", "persistence"}
    assert set(scores["bias"]) == set(scores["scores"]) - {"best_baseline"}
    assert all(-1 <= a <= 1 for a in scores["acc"]["vecfield"]["geopotential500"])
    val_log = (config_file.parent / "train" / "val_log.csv").read_text().splitlines()
    assert "rmse_geopotential500_12h" in val_log[0] and "score" in val_log[0]


def test_unknown_config_key_lists_the_valid_keys(config_file) -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown key\(s\) \['lattent'\] \(did you mean 'latent'\?\).*"
        r"valid keys are \[.*'processor_layers'",
    ):
        load_forecast_config(config_file, ["model.lattent=8"])
    with pytest.raises(ValueError, match="unknown key"):
        load_forecast_config(config_file, ["rollout.stepz=3"])
    with pytest.raises(TypeError, match="expected int"):
        load_forecast_config(config_file, ["model.latent=wide"])


def test_overrides_and_the_stored_config_round_trip(config_file) -> None:
    config = load_forecast_config(config_file, ["model.latent=24", "rollout.steps=8"])
    assert config.model.latent == 24 and config.rollout.steps == 8
    assert forecast_config_from_dict(forecast_config_to_dict(config)) == config


def test_default_source_kind_opens_the_embedded_dataset(monkeypatch, tmp_path) -> None:
    import vecfield.data.synthetic.default_dataset as default_dataset

    seen = []

    def fake(cache_dir=None, **kwargs):
        seen.append(cache_dir)
        return wave_dataset(days=1)

    monkeypatch.setattr(default_dataset, "load_default_dataset", fake)
    ds = SOURCE_OPENERS["default"](str(tmp_path))
    assert seen == [str(tmp_path)] and "geopotential" in ds
    SOURCE_OPENERS["default"]("")
    assert seen[-1] is None  # "" means the default cache folder


@pytest.mark.parametrize("name", ["quickstart", "era5_wb2_64x32", "era5_arco_1deg", "era5_regional_europe",
                                  "regional_surface_hourly"])
def test_presets_are_valid_forecast_configs(name) -> None:
    from pathlib import Path

    config = load_forecast_config(Path(__file__).parents[2] / "configs" / f"{name}.yaml")
    assert config.rollout.steps >= 12 and config.train.curriculum[0] == (0, 1)


def test_the_regional_surface_hourly_preset_is_surface_only_hourly_on_a_box() -> None:
    from pathlib import Path

    config = load_forecast_config(Path(__file__).parents[2] / "configs" / "regional_surface_hourly.yaml")
    assert config.dataset.time.step_hours == 1 and config.dataset.levels == () and config.dataset.forcings
    assert config.dataset.grid.area is not None and config.rollout.steps == 72
    assert config.model.boundary_rim == 0 and config.rollout.boundary is None  # the one-file mode
    # trained on its own rollouts as far as it is scored, from noisy inputs (the benchmark's recipe)
    assert max(steps for _, steps in config.train.curriculum) == config.rollout.steps
    assert config.train.lr_restart_per_phase and config.model.input_noise > 0
    forced = load_forecast_config(Path(__file__).parents[2] / "configs" / "regional_surface_hourly.yaml",
                                  ["model.boundary_rim=4", "rollout.boundary=truth"])
    assert forced.model.boundary_rim == 4 and forced.rollout.boundary == "truth"


def test_grid_across_the_meridian_is_one_regular_box() -> None:
    from vecfield.forecast.build import grid_of

    grid = grid_of(np.array([34.0, 35.0]), np.r_[np.arange(335.0, 360.0), np.arange(0.0, 46.0)])
    assert (grid.lon_west, grid.lon_east, grid.resolution) == (335.0, 405.0, 1.0)
    with pytest.raises(ValueError, match="regular grid"):
        grid_of(np.array([0.0, 1.0, 3.0]), np.array([0.0, 1.0]))


@pytest.mark.slow
def test_torchrun_two_processes_train_the_same_forecaster_as_one(config_file, tmp_path) -> None:
    """pipelines/train_forecaster.py under torchrun (gloo, 2 processes) = 1 process, same global batch."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.build_dataset import main as build
    from pipelines.train_forecaster import main as train
    from vecfield.train.checkpoint import load_checkpoint

    config = load_forecast_config(config_file)
    if not Path(config.dataset.output).exists():
        build(["--config", str(config_file)])
    common = [
        "train.validate_every=null",
        "train.best_metric=null",
        "train.max_steps=3",
        "train.warmup_steps=0",
    ]
    single = train(["--config", str(config_file), f"train.run_dir={tmp_path / 'one'}", *common])
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(root / "pipelines" / "train_forecaster.py"),
            "--config",
            str(config_file),
            f"train.run_dir={tmp_path / 'two'}",
            *common,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=500,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    one = load_checkpoint(single)["model"]
    two = load_checkpoint(tmp_path / "two" / "checkpoints" / single.name)["model"]
    for name, tensor in one.items():
        torch.testing.assert_close(two[name], tensor, rtol=1e-4, atol=1e-5)
