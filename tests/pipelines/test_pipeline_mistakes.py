"""Each user mistake of issue 22 §2 through a real pipeline: a one-line ``error: …`` and exit code 2,
never a traceback (every case printed one before)."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from pipelines.build_dataset import main as build
from pipelines.evaluate import main as evaluate
from pipelines.rollout import main as rollout
from pipelines.train_forecaster import main as train
from vecfield import cli


def _fails(main, argv: list[str], capsys) -> str:
    """The message of a user error from ``main(argv)`` run as the command line runs it."""
    capsys.readouterr()  # drop what earlier steps printed
    code = cli.run(main, [str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def _config_with(tiny_world, tmp_path: Path, **sections) -> Path:
    """A copy of the tiny config with some keys of some sections replaced."""
    data = yaml.safe_load(tiny_world["config"].read_text())
    for section, values in sections.items():
        data[section].update(values)
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rollout.steps=three", "error: rollout.steps: expected int, got 'three' (str)"),
        ("model.latent=16.5", "error: model.latent: expected int, got 16.5 (float)"),
        ("dataset.time.start=2000-13-01", "error: dataset.time.start: '2000-13-01' is not a valid ISO 8601"),
        ("rollout.steps=[4", "error: the value of override 'rollout.steps=[4' is not valid YAML"),
    ],
)
def test_config_mistakes(tiny_world, override, message, capsys) -> None:
    err = _fails(rollout, ["--config", tiny_world["config"], "--checkpoint", tiny_world["checkpoint"],
                           override], capsys)
    assert err.startswith(message)


def test_broken_yaml_names_the_line(tmp_path, capsys) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("dataset:\n  output: x.zarr\n   sources: [a\n")
    err = _fails(train, ["--config", config], capsys)
    assert err.startswith(f"error: config file {config} is not valid YAML at line 3, column 11")


def test_a_valid_date_override_is_a_string(tiny_world) -> None:
    """YAML reads 2020-01-02 as a date, which the str fields refused (a TypeError); it stays a string."""
    from vecfield.forecast.config import load_forecast_config

    config = load_forecast_config(tiny_world["config"], ["dataset.time.end=2020-01-15"])
    assert config.dataset.time.end == "2020-01-15"


def test_missing_dataset_and_checkpoint(tiny_world, tmp_path, capsys) -> None:
    absent = tmp_path / "absent.zarr"
    err = _fails(evaluate, ["--config", tiny_world["config"], "--forecast", tiny_world["folder"] / "x.zarr",
                            f"dataset.output={absent}"], capsys)
    assert "no forecast at" in err
    err = _fails(rollout, ["--config", tiny_world["config"], "--checkpoint", tiny_world["checkpoint"],
                           f"dataset.output={absent}"], capsys)
    assert f"the dataset {absent} does not exist; build it first" in err
    err = _fails(rollout, ["--config", tiny_world["config"], "--checkpoint", tmp_path / "best.pt"], capsys)
    assert f"no checkpoint at {tmp_path / 'best.pt'}" in err


def test_resume_with_another_model_or_data_layout(tiny_world, tmp_path, capsys) -> None:
    config = _config_with(tiny_world, tmp_path, train={"run_dir": str(tmp_path / "run"), "max_steps": 1,
                                                       "validate_every": None, "best_metric": None})
    train(["--config", str(config)])
    err = _fails(train, ["--config", config, "model.latent=24"], capsys)
    assert "this run directory was trained with model.latent 16 (this config: 24)" in err
    assert "use a new train.run_dir" in err and "init_from" in err
    fewer = [f"dataset.output={tmp_path / 'fewer.zarr'}", "dataset.variables=[geopotential,2m_temperature]"]
    build(["--config", str(config), *fewer])
    err = _fails(train, ["--config", config, *fewer], capsys)
    assert "trained with the state channels (dataset.variables, dataset.levels)" in err


def test_forecast_variables_absent_from_the_truth(tiny_world, tmp_path, capsys) -> None:
    forecast = rollout(["--config", str(tiny_world["config"]), "--checkpoint", str(tiny_world["checkpoint"]),
                        "--output", str(tmp_path / "f.zarr")])
    renamed = xr.open_zarr(forecast).rename({"2m_temperature": "2m_dewpoint_temperature"})
    renamed.to_zarr(tmp_path / "renamed.zarr", zarr_format=2)
    err = _fails(evaluate, ["--config", tiny_world["config"], "--forecast", tmp_path / "renamed.zarr",
                            f"rollout.output={tmp_path}"], capsys)
    assert "lacks the forecast variable(s) ['2m_dewpoint_temperature']" in err


def test_a_six_hour_checkpoint_on_twelve_hourly_data(tiny_world, tmp_path, capsys) -> None:
    twelve = tmp_path / "twelve.zarr"
    build(["--config", str(tiny_world["config"]), f"dataset.output={twelve}", "dataset.time.step_hours=12"])
    err = _fails(rollout, ["--config", tiny_world["config"], "--checkpoint", tiny_world["checkpoint"],
                           f"dataset.output={twelve}", "dataset.time.step_hours=12"], capsys)
    assert "the time step does not match: the checkpoint forecasts 6-hour steps" in err
    assert "12 hours apart" in err


def test_geopotential_in_metres_at_the_build(tiny_world, tmp_path, capsys) -> None:
    source = xr.open_zarr(tiny_world["source"]).load()
    source["geopotential"] = source["geopotential"] / 9.80665  # heights in m, no units attribute
    metres = tmp_path / "metres.zarr"
    source.to_zarr(metres, zarr_format=2)
    err = _fails(build, ["--config", tiny_world["config"], f"dataset.output={tmp_path / 'm.zarr'}",
                         f"dataset.sources=[{{kind: zarr, path: {metres}}}]"], capsys)
    assert "geopotential at 500 hPa averages 55" in err and "Multiply them by g = 9.80665" in err
    assert not (tmp_path / "m.zarr.partial").exists()


def test_geopotential_in_metres_at_the_evaluation(tiny_world, tmp_path, capsys) -> None:
    forecast = rollout(["--config", str(tiny_world["config"]), "--checkpoint", str(tiny_world["checkpoint"]),
                        "--output", str(tmp_path / "f.zarr")])
    metres = xr.open_zarr(forecast).load()
    metres["geopotential"] = (metres["geopotential"] / 9.80665).assign_attrs(units="m")
    metres.to_zarr(tmp_path / "metres.zarr", zarr_format=2)
    err = _fails(evaluate, ["--config", tiny_world["config"], "--forecast", tmp_path / "metres.zarr",
                            f"rollout.output={tmp_path / 'out'}"], capsys)
    assert "the forecast" in err and "units 'm'" in err and "9.80665" in err


def test_incomplete_forecast_store_is_refused_or_scored_on_its_finished_leads(tiny_world, tmp_path,
                                                                               capsys) -> None:
    """Decision: evaluate refuses an interrupted store (exit 2, how to finish it); with
    --completed-leads-only it scores the finished leads and says so in the output and scorecard."""
    import zarr

    forecast = rollout(["--config", str(tiny_world["config"]), "--checkpoint", str(tiny_world["checkpoint"]),
                        "--output", str(tmp_path / "f.zarr")])
    zarr.open_group(str(forecast), mode="r+").attrs["completed_leads"] = 2  # as a rollout killed after 2
    argv = ["--config", tiny_world["config"], "--forecast", forecast, f"rollout.output={tmp_path / 'out'}"]
    err = _fails(evaluate, argv, capsys)
    assert "is incomplete: 2 of 4 leads were written" in err and "--completed-leads-only" in err
    assert not (tmp_path / "out" / "scorecard.md").exists()
    code = cli.run(evaluate, [str(a) for a in argv] + ["--completed-leads-only", "--debug"])
    assert code == 0 and "only the first 2 of 4 leads were completed" in capsys.readouterr().out
    written = {"scorecard": tmp_path / "out" / "scorecard.md", "scores": tmp_path / "out" / "scores.json"}
    scorecard = written["scorecard"].read_text()
    header = scorecard.split("RMSE by lead")[0]  # the notes stand above the first table
    assert "**Note:** Incomplete forecast store: only the first 2 of 4 leads" in header
    scores = yaml.safe_load(written["scores"].read_text())
    assert scores["lead_hours"] == [6.0, 12.0]
    assert all(np.isfinite(v).all() for s in scores["scores"].values() for v in s.values())


def test_every_initialization_with_leads_past_the_data(tiny_world, tmp_path, capsys) -> None:
    """rollout --inits all starts at every test-split time (also the last ones, whose forecasts run
    past the data); evaluate then scores each lead where truth exists and says over how many inits."""
    common = ["--config", str(tiny_world["config"])]
    forecast = rollout([*common, "--checkpoint", str(tiny_world["checkpoint"]), "--inits", "all",
                        "--output", str(tmp_path / "all.zarr"), "rollout.max_inits=null",
                        "rollout.init_every_hours=6"])
    inits = xr.open_zarr(forecast)["time"].values
    assert str(inits[-1]).startswith("2020-01-15T18")  # the split's (and the data's) last time
    out = tmp_path / "out"
    err = _fails(evaluate, [*common, "--forecast", forecast, f"rollout.output={out}", "--missing", "raise"],
                 capsys)
    assert "--missing drop" in err
    written = evaluate([*common, "--forecast", str(forecast), f"rollout.output={out}", "rollout.inits=all"])
    scores = yaml.safe_load(written["scores"].read_text())
    n = len(inits)
    assert scores["evaluation"]["initializations"] == n
    assert scores["evaluation"]["initializations_per_lead"] == [n - 1, n - 2, n - 3, n - 4]
    assert all(np.isfinite(v).all() for s in scores["scores"].values() for v in s.values())
    assert f"initializations per lead: 6 h: {n - 1}, 12 h: {n - 2}" in written["scorecard"].read_text()
    assert written["rmse_plot"].exists()
