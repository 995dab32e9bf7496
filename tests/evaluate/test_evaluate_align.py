"""Valid-time alignment and grid checks: scores can only compare a forecast with truth(init + lead)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evalhelpers import forecast_dataset, hours, truth_dataset

from vecfield.evaluate import align_truth, persistence_forecast, rmse

TIMES = pd.date_range("2021-03-01", periods=12, freq="6h")
LAT = np.array([-45.0, 0.0, 45.0])
LON = np.array([0.0, 90.0, 180.0, 270.0])
LEADS = hours(0, 6, 12, 18)
INITS = TIMES[:8]


@pytest.fixture
def truth() -> xr.Dataset:
    rng = np.random.default_rng(1)
    return truth_dataset(rng.normal(size=(TIMES.size, LAT.size, LON.size)), TIMES, LAT, LON)


def truth_at(truth: xr.Dataset, inits: pd.DatetimeIndex, leads: pd.TimedeltaIndex) -> np.ndarray:
    """Hand-built (init, lead, lat, lon) array of the truth at init + lead."""
    return np.stack([np.stack([truth["x"].sel(time=t + d).values for d in leads]) for t in inits])


def test_aligned_truth_is_the_truth_at_init_plus_lead(truth):
    forecast = forecast_dataset(
        np.zeros((INITS.size, LEADS.size, LAT.size, LON.size)), INITS, LEADS, LAT, LON
    )
    _, aligned = align_truth(forecast, truth)
    assert aligned["x"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    np.testing.assert_array_equal(aligned["x"].values, truth_at(truth, INITS, LEADS))
    expected_valid = np.array([[t + d for d in LEADS] for t in INITS], dtype="datetime64[ns]")
    np.testing.assert_array_equal(aligned["valid_time"].values, expected_valid)


def test_perfect_forecast_scores_zero_and_a_forecast_shifted_by_one_lead_scores_worse(truth):
    perfect = forecast_dataset(truth_at(truth, INITS, LEADS), INITS, LEADS, LAT, LON)
    np.testing.assert_allclose(rmse(perfect, truth)["x"].values, 0.0, atol=1e-12)
    # the classic init/valid mix-up: lead d holds the field valid at init + d − 6 h
    shifted_inits = INITS[1:]
    shifted = forecast_dataset(
        truth_at(truth, shifted_inits - pd.Timedelta("6h"), LEADS), shifted_inits, LEADS, LAT, LON
    )
    assert np.all(rmse(shifted, truth)["x"].values > 0.5)


def test_persistence_is_perfect_at_lead_zero_only(truth):
    scores = rmse(persistence_forecast(truth, INITS, LEADS), truth)["x"].values
    assert scores[0] == 0.0
    assert np.all(scores[1:] > 0.5)


def test_missing_valid_times_raise_unless_dropping_is_asked_for(truth):
    # the truth ends at TIMES[11]; with lead 18 h, init TIMES[9] reaches TIMES[12], init TIMES[10]
    # reaches TIMES[12] and TIMES[13]: 2 valid times missing, inits 9 and 10 to drop
    inits = TIMES[:11]
    data = np.zeros((inits.size, LEADS.size, LAT.size, LON.size))
    data[:9] = truth_at(truth, inits[:9], LEADS)
    forecast = forecast_dataset(data, inits, LEADS, LAT, LON)
    with pytest.raises(ValueError, match=r"lacks 2 valid time\(s\).*missing='drop'"):
        align_truth(forecast, truth)
    kept, aligned = align_truth(forecast, truth, missing="drop")
    np.testing.assert_array_equal(kept["time"].values, inits[:9].values)
    assert aligned.sizes["time"] == 9
    np.testing.assert_allclose(rmse(forecast, truth, missing="drop")["x"].values, 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="missing must be one of"):
        align_truth(forecast, truth, missing="ignore")


def test_grids_must_agree_within_a_thousandth_of_a_degree(truth):
    data = truth_at(truth, INITS, LEADS)
    close = forecast_dataset(data, INITS, LEADS, LAT + 5e-4, LON)
    np.testing.assert_allclose(rmse(close, truth)["x"].values, 0.0, atol=1e-12)
    far = forecast_dataset(data, INITS, LEADS, LAT, LON + 0.01)
    with pytest.raises(ValueError, match=r"longitude grid .* differs"):
        rmse(far, truth)
    coarser = forecast_dataset(data[..., ::2], INITS, LEADS, LAT, LON[::2])
    with pytest.raises(ValueError, match="regrid"):
        rmse(coarser, truth)


def test_descending_latitudes_are_flipped_not_mismatched(truth):
    perfect = forecast_dataset(truth_at(truth, INITS, LEADS), INITS, LEADS, LAT, LON)
    flipped_truth = truth.isel(latitude=slice(None, None, -1))
    flipped_forecast = perfect.isel(latitude=slice(None, None, -1))
    np.testing.assert_allclose(rmse(flipped_forecast, flipped_truth)["x"].values, 0.0, atol=1e-12)
    noisy = perfect + 1.0
    np.testing.assert_allclose(rmse(noisy.isel(latitude=slice(None, None, -1)), truth)["x"].values, 1.0)


def test_layout_mistakes_raise_with_a_fix(truth):
    forecast = forecast_dataset(truth_at(truth, INITS, LEADS), INITS, LEADS, LAT, LON)
    with pytest.raises(ValueError, match=r"rename\(\{'init_time': 'time'\}\)"):
        align_truth(forecast.rename(time="init_time"), truth)
    with pytest.raises(ValueError, match="lacks dim 'prediction_timedelta'"):
        align_truth(forecast.isel(prediction_timedelta=0, drop=True), truth)
    with pytest.raises(TypeError, match="timedelta64"):
        align_truth(forecast.assign_coords(prediction_timedelta=[0, 6, 12, 18]), truth)
    wrong_valid = forecast.assign_coords(valid_time=forecast["time"])  # 'time' used as the valid time
    with pytest.raises(ValueError, match="must be the initialization time"):
        align_truth(wrong_valid, truth)
    with pytest.raises(ValueError, match="not a forecast"):
        align_truth(forecast, forecast)
    with pytest.raises(ValueError, match=r"lacks forecast variables \['y'\]"):
        align_truth(forecast.rename(x="y"), truth)
    with pytest.raises(TypeError, match="to_dataset"):
        align_truth(forecast["x"], truth)


def test_levels_are_matched_by_value_and_missing_levels_raise():
    levels = [500, 850]
    rng = np.random.default_rng(2)
    values = rng.normal(size=(TIMES.size, 2, LAT.size, LON.size))
    truth = xr.Dataset(
        {"t": (("time", "level", "latitude", "longitude"), values)},
        coords={"time": TIMES, "level": levels, "latitude": LAT, "longitude": LON},
    )
    forecast = persistence_forecast(truth, INITS, LEADS).sel(level=[850])
    _, aligned = align_truth(forecast, truth)
    np.testing.assert_array_equal(
        aligned["t"].sel(level=850, prediction_timedelta=LEADS[2]).values, values[2:10, 1]
    )
    with pytest.raises(ValueError, match=r"lacks forecast levels \[700\]"):
        align_truth(forecast.assign_coords(level=[700]), truth)


def test_alignment_stays_lazy_on_dask_input(truth):
    forecast = forecast_dataset(truth_at(truth, INITS, LEADS), INITS, LEADS, LAT, LON).chunk({"time": 2})
    lazy_truth = truth.chunk({"time": 3})
    _, aligned = align_truth(forecast, lazy_truth)
    assert aligned["x"].chunks is not None
    score = rmse(forecast, lazy_truth)
    assert score["x"].chunks is not None
    np.testing.assert_allclose(score["x"].values, 0.0, atol=1e-12)


def test_a_longitude_convention_mismatch_gets_its_own_fix(truth):
    forecast = forecast_dataset(truth_at(truth, INITS, LEADS), INITS, LEADS, LAT, LON)
    shifted = forecast.assign_coords(longitude=np.where(LON >= 180, LON - 360, LON)).sortby("longitude")
    with pytest.raises(ValueError, match=r"longitude conventions .* % 360"):
        rmse(shifted, truth)
