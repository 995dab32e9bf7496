"""Forecaster.rollout: WB2 layout, batching, streaming to zarr with resume, checkpoints, bad input."""

import numpy as np
import pytest
import torch
import xarray as xr

from tests.forecast.helpers import tiny_spec, wave_dataset
from vecfield.forecast import Forecaster, ForecastTask
from vecfield.train import Trainer, TrainerConfig
from vecfield.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny forecaster trained for a few steps through vecfield.train, and its checkpoint."""
    ds = wave_dataset()
    spec, windows, _ = tiny_spec(ds, n_leads=2)
    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    module = spec.build(str(root / "graphs"))
    task = ForecastTask(spec.state_layout.channels, 6, spec.normalization.state_std)
    config = TrainerConfig(
        run_dir=str(root / "train"),
        max_steps=6,
        batch_size=4,
        lr=1e-3,
        curriculum=((0, 1), (3, 2)),
        progress_bar=False,
        ema_decay=0.9,
    )
    with Trainer(task, module, windows, config, metadata=spec.to_metadata()) as trainer:
        trainer.fit()
        path = trainer.store.latest()
    return ds, Forecaster.load(path, graph_cache=str(root / "graphs")), path


def test_rollout_is_in_weatherbench2_forecast_layout(trained) -> None:
    ds, forecaster, path = trained
    forecast = forecaster.rollout(ds.isel(time=slice(0, 4)), steps=3)
    assert forecast["geopotential"].dims == ("time", "prediction_timedelta", "level", "latitude", "longitude")
    assert forecast["2m_temperature"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    np.testing.assert_array_equal(forecast["time"].values, ds["time"].values[1:4])  # inits with a predecessor
    np.testing.assert_array_equal(
        forecast["prediction_timedelta"].values,
        np.array([6, 12, 18], "timedelta64[h]").astype("timedelta64[ns]"),
    )
    assert forecast.attrs["source_checkpoint"] == str(path)
    assert forecast.attrs["source_weights"] == "ema"


def test_loaded_forecaster_repeats_the_training_rollout(trained) -> None:
    """The loaded EMA weights give what the shared rollout gives on a training window."""
    ds, forecaster, _ = trained
    spec = forecaster.spec
    _, windows, _ = tiny_spec(ds, n_leads=2)
    item = windows[3]
    from vecfield.forecast import autoregressive

    with torch.no_grad():
        states = [
            r.state
            for r in autoregressive(
                forecaster.module, item.inputs[None], item.forcings[None], spec.static[None], 2
            )
        ]
    init = ds["time"].values[windows.window_times(3)[1]]
    forecast = forecaster.rollout(ds, steps=2, init_times=[init])
    expected = spec.state_layout.unstack(
        torch.stack(states, 1)[0],
        spec.latitude,
        spec.longitude,
        {"prediction_timedelta": forecast["prediction_timedelta"].values},
    )
    xr.testing.assert_allclose(forecast.isel(time=0).drop_vars("time"), expected, rtol=1e-5, atol=1e-4)


def test_a_batch_of_initializations_equals_single_ones(trained) -> None:
    ds, forecaster, _ = trained
    inits = ds["time"].values[[3, 8, 17]]
    together = forecaster.rollout(ds, steps=4, init_times=inits, batch_size=3)
    for init in inits:
        alone = forecaster.rollout(ds, steps=4, init_times=[init], batch_size=1)
        xr.testing.assert_allclose(together.sel(time=[init]), alone, rtol=1e-5, atol=1e-3)


def test_streaming_rollout_resumes_after_an_interruption_with_identical_values(
    trained, tmp_path, monkeypatch
) -> None:
    ds, forecaster, _ = trained
    inits = ds["time"].values[[2, 5, 9]]
    reference = forecaster.rollout_to_zarr(ds, 7, tmp_path / "whole.zarr", init_times=inits, batch_size=2)
    original = Forecaster._lead_dataset

    def interrupted(self, state, times, lead):
        if lead == 5:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, state, times, lead)

    monkeypatch.setattr(Forecaster, "_lead_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        forecaster.rollout_to_zarr(ds, 7, tmp_path / "resumed.zarr", init_times=inits, batch_size=2)
    assert xr.open_zarr(tmp_path / "resumed.zarr").attrs["completed_leads"] == 4
    monkeypatch.setattr(Forecaster, "_lead_dataset", original)
    forecaster.rollout_to_zarr(ds, 7, tmp_path / "resumed.zarr", init_times=inits, batch_size=2)
    whole, resumed = xr.open_zarr(reference).load(), xr.open_zarr(tmp_path / "resumed.zarr").load()
    assert resumed.attrs["completed_leads"] == 7
    xr.testing.assert_identical(whole, resumed)
    in_memory = forecaster.rollout(ds, 7, init_times=inits, batch_size=2)
    xr.testing.assert_equal(whole.drop_attrs(), in_memory.drop_attrs())


def test_the_forecast_store_carries_cf_metadata_and_the_checkpoints_hash(trained, tmp_path) -> None:
    """rollout_to_zarr keeps what the in-memory rollout attaches (units, long and standard names on
    every variable and coordinate), CF time and lead encodings, and the checkpoint's sha256."""
    import hashlib

    import zarr

    ds, forecaster, path = trained
    inits = ds["time"].values[[2, 5]]
    store = forecaster.rollout_to_zarr(ds, 2, tmp_path / "forecast.zarr", init_times=inits)
    stored, in_memory = xr.open_zarr(store), forecaster.rollout(ds, 2, init_times=inits)
    for name in [*in_memory.data_vars, *in_memory.coords]:
        assert stored[name].attrs == in_memory[name].attrs, name
        assert {"long_name", "standard_name"} <= stored[name].attrs.keys(), name
    assert stored["geopotential"].attrs["units"] == "m**2 s**-2"
    assert stored["u_component_of_wind"].attrs["standard_name"] == "eastward_wind"
    assert stored["time"].attrs["standard_name"] == "forecast_reference_time"
    assert stored["prediction_timedelta"].attrs["standard_name"] == "forecast_period"
    group = zarr.open_group(str(store), mode="r", zarr_format=2)
    assert group["time"].attrs["units"].startswith("hours since 1970-01-01")
    assert group["time"].attrs["calendar"] == "proleptic_gregorian"
    assert group["prediction_timedelta"].attrs["units"] == "hours"
    assert group["prediction_timedelta"][:].tolist() == [6, 12]
    assert stored.attrs["source_checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_initial_data_is_refused_with_what_to_do(trained) -> None:
    ds, forecaster, _ = trained
    with pytest.raises(ValueError, match=r"lacks the state variable\(s\) \['u_component_of_wind'\]"):
        forecaster.rollout(ds.drop_vars("u_component_of_wind").isel(time=slice(0, 2)), 2)
    with pytest.raises(ValueError, match="needs two states"):
        forecaster.rollout(ds.isel(time=[0]), 2)
    with pytest.raises(ValueError, match="need the states at t and t − 6 h"):
        forecaster.rollout(ds.isel(time=[0, 2]), 2, init_times=[ds["time"].values[2]])
    coarse = ds.isel(latitude=slice(0, None, 2), longitude=slice(0, None, 2))
    with pytest.raises(ValueError, match="differ from the forecaster's grid"):
        forecaster.rollout(coarse.isel(time=slice(0, 2)), 2)
    with pytest.raises(ValueError, match=r"lacks pressure level\(s\) \[850\]"):
        forecaster.rollout(ds.sel(level=[500]).isel(time=slice(0, 2)), 2)


def test_grid_mismatch_names_the_first_differing_point_and_float_noise_passes(trained) -> None:
    """The message showed two identical ranges; it now gives the first differing value and by how
    much. Float noise (≤ 1e-6°, or equal in float32) is accepted."""
    ds, forecaster, _ = trained
    initial = ds.isel(time=slice(0, 2))
    reference = forecaster.rollout(initial, 1)
    noisy = initial.assign_coords(latitude=initial["latitude"] + 5e-7)
    np.testing.assert_array_equal(forecaster.rollout(noisy, 1)["geopotential"].values,
                                  reference["geopotential"].values)
    shifted = initial["latitude"].values.copy()
    shifted[3] += 0.01
    with pytest.raises(ValueError, match=r"latitude\[3\] is -50\.615000° against -50\.625000° "
                                         r"\(off by 0\.01°; 1 of 16 differ"):
        forecaster.rollout(initial.assign_coords(latitude=shifted), 1)


def test_nan_input_leaves_no_store_behind(trained, tmp_path) -> None:
    ds, forecaster, _ = trained
    initial = ds.isel(time=slice(0, 3)).copy(deep=True)
    initial["2m_temperature"][1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        forecaster.rollout_to_zarr(initial, 2, tmp_path / "forecast.zarr")
    assert not (tmp_path / "forecast.zarr").exists()


def test_geopotential_in_metres_is_refused_with_the_conversion(trained) -> None:
    ds, forecaster, _ = trained
    initial = ds.isel(time=slice(0, 2))
    heights = initial.assign(geopotential=initial["geopotential"] / 9.80665)  # no units attribute
    with pytest.raises(ValueError, match=r"the values are heights in metres\. Multiply them by g = 9\.80665"):
        forecaster.rollout(heights, 1)
    labelled = heights.assign(geopotential=heights["geopotential"].assign_attrs(units="m"))
    with pytest.raises(ValueError, match=r"units 'm'.*9\.80665"):
        forecaster.rollout(labelled, 1)


def test_checkpoint_of_another_schema_or_with_a_pickle_payload_is_refused(trained, tmp_path) -> None:
    _, _, path = trained
    checkpoint = load_checkpoint(path)
    checkpoint["metadata"]["forecast_schema_version"] = 0
    save_checkpoint(tmp_path / "old.pt", checkpoint)
    with pytest.raises(ValueError, match=r"schema version 0.*retrain with pipelines/train_forecaster.py"):
        Forecaster.load(tmp_path / "old.pt")

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"format": "vecfield.train.checkpoint", "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="nothing was executed"):
        Forecaster.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def _tiny_regional_run(folder) -> tuple:
    """A tiny limited-area forecaster (a 6 × 9 box of the wave world) trained for a few steps, and
    its truth store with train/test splits: (checkpoint path, store path)."""
    import json

    from vecfield.data.regrid import crop_area

    box = crop_area(wave_dataset(), 62.0, 0.0, 5.0, 90.0)
    spec, windows, _ = tiny_spec(box, n_leads=2)
    torch.manual_seed(0)
    module = spec.build(str(folder / "graphs"))
    task = ForecastTask(spec.state_layout.channels, 6, spec.normalization.state_std)
    config = TrainerConfig(run_dir=str(folder / "train"), max_steps=4, batch_size=4, lr=1e-3,
                           progress_bar=False, ema_decay=0.9)
    with Trainer(task, module, windows, config, metadata=spec.to_metadata()) as trainer:
        trainer.fit()
        checkpoint = trainer.store.latest()
    splits = {"train": ["2020-01-01T00", "2020-01-08T18"], "val": None,
              "test": ["2020-01-09T00", "2020-01-12T18"]}
    box.drop_attrs().assign_attrs(splits=json.dumps(splits)).to_zarr(folder / "box.zarr", zarr_format=2)
    return checkpoint, folder / "box.zarr"


def test_quickstart_notebook_runs_on_a_tiny_checkpoint(trained, tmp_path, monkeypatch) -> None:
    """notebooks/forecast_quickstart.ipynb executes top to bottom (nbclient, kernel python3), its
    regional case on a tiny box forecaster."""
    import os
    from pathlib import Path

    from tests.notebooks import output_text, run_notebook

    ds, _, path = trained
    ds.drop_attrs().to_zarr(tmp_path / "truth.zarr", zarr_format=2)
    root = Path(__file__).parents[2]
    monkeypatch.setenv("VECFIELD_CHECKPOINT", str(path))
    monkeypatch.setenv("VECFIELD_DATASET", str(tmp_path / "truth.zarr"))
    monkeypatch.setenv("VECFIELD_STEPS", "3")
    regional_checkpoint, box = _tiny_regional_run(tmp_path)
    monkeypatch.setenv("VECFIELD_REGIONAL_CHECKPOINT", str(regional_checkpoint))
    monkeypatch.setenv("VECFIELD_REGIONAL_DATASET", str(box))
    monkeypatch.setenv("VECFIELD_REGIONAL_STEPS", "4")
    monkeypatch.setenv("VECFIELD_REGIONAL_INIT_EVERY_HOURS", "12")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    outputs = run_notebook("forecast_quickstart.ipynb", tmp_path, timeout=120)
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4  # 2 global, 2 regional figures
    text = output_text(outputs)
    assert f"regional run: {regional_checkpoint}" in text
    assert "best baseline by lead:" in text and "damped_persistence" in text


def test_interrupted_forecaster_training_resumes_bit_for_bit(tmp_path) -> None:
    """Training in two chunks (checkpoint, new process state, resume) equals one uninterrupted run,
    through the curriculum change from 1 to 2 unrolled steps."""
    ds = wave_dataset(days=6)
    spec, windows, _ = tiny_spec(ds, n_leads=2)

    def run(run_dir, until=None):
        torch.manual_seed(0)
        module = spec.build(str(tmp_path / "graphs"))
        task = ForecastTask(spec.state_layout.channels, 6, spec.normalization.state_std)
        config = TrainerConfig(
            run_dir=str(run_dir),
            max_steps=4,
            batch_size=2,
            curriculum=((0, 1), (2, 2)),
            progress_bar=False,
            ema_decay=0.9,
            checkpoint_every=2,
        )
        with Trainer(task, module, windows, config, metadata=spec.to_metadata()) as trainer:
            trainer.fit(until_step=until)
            return {k: v.clone() for k, v in trainer.ema_model.state_dict().items()}

    whole = run(tmp_path / "whole")
    run(tmp_path / "chunks", until=2)
    resumed = run(tmp_path / "chunks")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert (tmp_path / "whole" / "train_log.csv").read_text().splitlines()[-1].split(",")[2] == (
        tmp_path / "chunks" / "train_log.csv"
    ).read_text().splitlines()[-1].split(",")[2]
