"""Lateral boundary forcing of a limited-area forecaster (vecfield.forecast.boundary): the rim, eq. (1)
in the shared rollout, the boundary data read from a dataset (same grid, coarser global grid,
forecast layout) and the errors a user can cause."""

import numpy as np
import pytest
import torch
import xarray as xr

from tests.forecast.helpers import TINY_MODEL, tiny_spec, wave_dataset
from vecfield.data.channels import ChannelLayout
from vecfield.forecast.boundary import Boundary, BoundarySource, check_rim, rim_mask
from vecfield.forecast.rollout import StepResult, autoregressive

LAT = np.arange(30.0, 46.0, 2.0)  # 8 rows
LON = np.r_[np.arange(350.0, 360.0, 2.0), np.arange(0.0, 14.0, 2.0)]  # 12 columns across 0°
LAYOUT = ChannelLayout((("2m_temperature", None), ("geopotential", 500)))


def test_rim_is_the_outer_cells_of_the_box() -> None:
    mask = rim_mask(1, 4, 5).reshape(4, 5)
    assert mask.sum() == 4 * 5 - 2 * 3 and not mask[1:-1, 1:-1].any() and mask[0].all() and mask[:, -1].all()
    assert rim_mask(2, 6, 7).reshape(6, 7)[2:-2, 2:-2].sum() == 0 and rim_mask(2, 6, 7).sum() == 42 - 2 * 3
    with pytest.raises(ValueError, match="leaves no interior"):
        check_rim(3, 6, 20)
    with pytest.raises(ValueError, match="global"):
        check_rim(1, 32, 64, is_global=True)
    with pytest.raises(ValueError, match="≥ 0"):
        check_rim(-1, 8, 8)


class _AddOne:
    """A stepper whose next state is the current one + 1 (so the chain is visible)."""

    def step(self, previous, current, forcings, static, target=None):
        return StepResult(current + 1)


def test_the_rollout_imposes_the_boundary_after_every_step_and_feeds_it_back() -> None:
    mask = rim_mask(1, 3, 4)
    values = torch.full((1, 3, 12, 1), -5.0)
    states = [r.state for r in autoregressive(_AddOne(), torch.zeros(1, 2, 12, 1), torch.zeros(1, 5, 12, 1),
                                              torch.zeros(1, 12, 0), 3, boundary=Boundary(mask, values))]
    for j, state in enumerate(states):
        assert (state[0, mask] == -5.0).all()  # the rim is the boundary data …
        assert (state[0, ~mask] == j + 1).all()  # … and the interior is the model's chain
    with pytest.raises(ValueError, match="boundary states at 4 times"):
        list(autoregressive(_AddOne(), torch.zeros(1, 2, 12, 1), torch.zeros(1, 6, 12, 1),
                            torch.zeros(1, 12, 0), 4, boundary=Boundary(mask, values)))


def _box(times: np.ndarray, lat: np.ndarray = LAT, lon: np.ndarray = LON) -> xr.Dataset:
    """2m_temperature and geopotential500 linear in latitude, longitude (unwrapped across 0°) and time."""
    hours = (times - times[0]) / np.timedelta64(1, "h")
    east = np.where(lon > 180, lon - 360, lon)
    t2m = 280 + 0.5 * lat[None, :, None] + 0.25 * east[None, None, :] + 0.1 * hours[:, None, None]
    z = 9.81 * 5500 + 10 * t2m[:, None]
    return xr.Dataset({"2m_temperature": (("time", "latitude", "longitude"), t2m),
                       "geopotential": (("time", "level", "latitude", "longitude"), z)},
                      coords={"time": times, "level": [500], "latitude": lat, "longitude": lon})


TIMES = np.datetime64("2020-01-01T00", "ns") + np.arange(8) * np.timedelta64(6, "h")


def test_boundary_states_on_the_box_grid_and_from_a_coarser_global_grid() -> None:
    truth = _box(TIMES)
    expected = torch.from_numpy(LAYOUT.stack(truth.isel(time=[2, 3, 3, 4]))).reshape(2, 2, -1, 2)
    source = BoundarySource(truth, LAYOUT, LAT, LON, 6)
    np.testing.assert_allclose(source.values(TIMES[[1, 2]], 1, 2), expected, rtol=1e-6)
    # a global 4° grid, north → south, 0 … 356°: a linear field is reproduced exactly by linear
    # interpolation, across the 0° seam too
    coarse = _box(TIMES, np.arange(88.0, -89.0, -4.0), np.arange(0.0, 360.0, 4.0))
    interpolated = BoundarySource(coarse, LAYOUT, LAT, LON, 6).values(TIMES[[1, 2]], 1, 2)
    np.testing.assert_allclose(interpolated, expected, rtol=1e-5)


def test_boundary_states_from_a_forecast_layout_are_those_of_each_initialization() -> None:
    truth = _box(TIMES)
    inits, leads = TIMES[:3], np.arange(1, 5) * np.timedelta64(6, "h")
    rows = [truth.sel(time=init + leads).assign_coords(time=leads).rename(time="prediction_timedelta")
            + 100.0 * i for i, init in enumerate(inits)]
    forecast = xr.concat(rows, dim=xr.DataArray(inits, dims="time", name="time"))
    values = BoundarySource(forecast, LAYOUT, LAT, LON, 6).values(inits[[0, 2]], 2, 2)
    expected = LAYOUT.stack(truth.sel(time=[inits[2] + leads[1], inits[2] + leads[2]]) + 200.0)
    np.testing.assert_allclose(values[1].numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="lacks some of the leads"):
        BoundarySource(forecast, LAYOUT, LAT, LON, 6).values(inits[:1], 4, 2)
    with pytest.raises(ValueError, match="no initialization"):
        BoundarySource(forecast, LAYOUT, LAT, LON, 6).values(TIMES[5:6], 1, 1)


def test_bad_boundary_data_are_refused_with_what_to_do() -> None:
    truth = _box(TIMES)
    with pytest.raises(ValueError, match=r"lacks the state variable\(s\) \['geopotential'\]"):
        BoundarySource(truth[["2m_temperature"]], LAYOUT, LAT, LON, 6)
    with pytest.raises(ValueError, match=r"pressure level\(s\) \[850\]"):
        BoundarySource(truth, ChannelLayout((("geopotential", 850),)), LAT, LON, 6)
    with pytest.raises(ValueError, match="do not cover the box"):
        BoundarySource(truth.isel(latitude=slice(1, None)), LAYOUT, LAT, LON, 6)
    with pytest.raises(ValueError, match="longitudes do not cover the box"):
        BoundarySource(truth.isel(longitude=slice(0, -1)), LAYOUT, LAT, LON, 6)
    with pytest.raises(ValueError, match="without a gap"):  # 358° and 2° but not 0°
        BoundarySource(truth.drop_sel(longitude=[0.0]), LAYOUT, LAT, LON, 6)
    with pytest.raises(ValueError, match="no state at 2 valid time"):
        BoundarySource(truth, LAYOUT, LAT, LON, 6).values(TIMES[-2:-1], 1, 3)
    with pytest.raises(TypeError, match=r"xarray\.Dataset"):
        BoundarySource(truth["2m_temperature"], LAYOUT, LAT, LON, 6)  # type: ignore[arg-type]


def test_a_forecaster_with_a_rim_needs_boundary_data_and_one_without_refuses_it() -> None:
    from dataclasses import replace

    from vecfield.forecast.forecaster import Forecaster

    ds = wave_dataset(days=3)
    box = ds.isel(latitude=slice(4, 12), longitude=slice(0, 10))
    spec, _, _ = tiny_spec(box)
    free = Forecaster(spec.build(), spec)
    forced_spec = replace(spec, model=replace(TINY_MODEL, boundary_rim=1))
    forced = Forecaster(forced_spec.build(), forced_spec)
    assert forced.module.loss_weight[forced.module.rim].eq(0).all()  # the loss is on the interior
    assert forced.module.loss_weight[~forced.module.rim].gt(0).all()
    with pytest.raises(ValueError, match="boundary forcing in a rim of 1 cells"):
        forced.rollout(box, 2)
    with pytest.raises(ValueError, match="free boundary"):
        free.rollout(box, 2, boundary=box)
    out = forced.rollout(box, 2, init_times=box["time"].values[1:2], boundary=box)
    rim = forced.module.rim.reshape(8, 10).numpy()
    lead2 = out["2m_temperature"].isel(time=0, prediction_timedelta=1).values
    np.testing.assert_allclose(lead2[rim], box["2m_temperature"].isel(time=3).values[rim], rtol=1e-6)
    assert out.attrs["boundary_rim"] == 1
    with pytest.raises(ValueError, match="leaves no interior"):
        replace(spec, model=replace(TINY_MODEL, boundary_rim=4)).build()
    with pytest.raises(ValueError, match="global"):
        global_spec, _, _ = tiny_spec(ds)
        replace(global_spec, model=replace(TINY_MODEL, boundary_rim=1)).build()


def test_the_pipeline_trains_rolls_out_and_scores_a_box_with_truth_in_its_rim(tmp_path) -> None:
    import json

    import yaml

    from pipelines.build_dataset import main as build
    from pipelines.evaluate import main as evaluate
    from pipelines.rollout import main as rollout
    from pipelines.train_forecaster import main as train
    from tests.forecast.helpers import tiny_pipeline_config

    source = tmp_path / "source.zarr"
    wave_dataset(days=16).drop_attrs().to_zarr(source, zarr_format=2)
    config = tiny_pipeline_config(tmp_path, source)
    config["dataset"]["grid"] = {"area": [61.875, 0.0, -28.125, 101.25]}  # 9 × 10 cells of 11.25°
    config["model"]["boundary_rim"] = 1
    config["rollout"]["boundary"] = "truth"
    path = tmp_path / "box.yaml"
    path.write_text(yaml.safe_dump(config))
    build(["--config", str(path)])
    checkpoint = train(["--config", str(path)])
    forecast = xr.open_zarr(rollout(["--config", str(path), "--checkpoint", str(checkpoint)]))
    truth = xr.open_zarr(tmp_path / "data.zarr")
    assert forecast.attrs["boundary_rim"] == 1 and forecast.sizes["latitude"] == 9
    lead = forecast["2m_temperature"].isel(time=0, prediction_timedelta=2)
    valid = truth["2m_temperature"].sel(time=forecast["time"].values[0] + lead["prediction_timedelta"].values)
    np.testing.assert_allclose(lead.isel(latitude=0).values, valid.isel(latitude=0).values, rtol=1e-6)
    np.testing.assert_allclose(lead.isel(longitude=-1).values, valid.isel(longitude=-1).values, rtol=1e-6)
    assert not np.allclose(lead.values[1:-1, 1:-1], valid.values[1:-1, 1:-1], rtol=1e-6)  # the model's
    written = evaluate(["--config", str(path)])
    assert "every score is over the interior only" in written["scorecard"].read_text()
    scores = json.loads(written["scores"].read_text())
    from vecfield.evaluate import rmse

    inner = {"latitude": slice(1, -1), "longitude": slice(1, -1)}
    t2m_forecast, t2m_truth = forecast[["2m_temperature"]].load(), truth[["2m_temperature"]].load()
    expected = rmse(t2m_forecast.isel(inner), t2m_truth.isel(inner))["2m_temperature"].values
    whole = rmse(t2m_forecast, t2m_truth)["2m_temperature"].values
    np.testing.assert_allclose(scores["scores"]["vecfield"]["2m_temperature"], expected, rtol=1e-5)
    assert not np.allclose(expected, whole, rtol=1e-3)
    with pytest.raises(ValueError, match="boundary forcing in a rim of 1 cells"):
        rollout(["--config", str(path), "--checkpoint", str(checkpoint), "rollout.boundary=null",
                 "rollout.output=" + str(tmp_path / "other")])


def test_a_crps_ensemble_with_a_rim_holds_the_boundary_in_every_member_and_trains() -> None:
    """The CRPS forecaster rolls each member with the boundary data in its rim, at inference and in
    its training loss (which stays finite and reaches the network's weights)."""
    from dataclasses import replace

    from vecfield.forecast.forecaster import Forecaster

    ds = wave_dataset(days=3)
    box = ds.isel(latitude=slice(4, 12), longitude=slice(0, 10))
    spec, windows, _ = tiny_spec(box)
    torch.manual_seed(0)
    crps = replace(TINY_MODEL, method="crps", boundary_rim=1, noise_features=4, time_features=4)
    forced_spec = replace(spec, model=crps)
    forecaster = Forecaster(forced_spec.build(), forced_spec)
    out = forecaster.rollout(box, 2, init_times=box["time"].values[1:2], boundary=box, members=3)
    rim = forecaster.module.rim.reshape(8, 10).numpy()
    lead2 = out["2m_temperature"].isel(time=0, prediction_timedelta=1).values  # (realization, lat, lon)
    truth = box["2m_temperature"].isel(time=3).values
    for member in lead2:
        np.testing.assert_allclose(member[rim], truth[rim], rtol=1e-6)
    assert np.ptp(lead2[:, ~rim], axis=0).max() > 0  # the members differ inside
    window = windows[0]
    loss = forecaster.module(window.inputs[None], window.forcings[None], window.static[None],
                             window.targets[None])
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0
                                        for p in forecaster.module.parameters())
