"""Climatology (day of year × hour, running window) and the persistence/climatology forecasts."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evalhelpers import hours

from vecfield.evaluate import climatology_forecast, compute_climatology, persistence_forecast

LAT = np.array([-30.0, 30.0])
LON = np.array([0.0, 120.0, 240.0])


def two_year_truth() -> xr.Dataset:
    """Every 12 h through 2001–2002 (no leap day): x(t) = doy(t) + 100·hour(t) + 1000·[year = 2002]."""
    times = pd.date_range("2001-01-01", "2002-12-31T12", freq="12h")
    values = times.day_of_year + 100.0 * times.hour + 1000.0 * (times.year == 2002)
    field = np.broadcast_to(np.asarray(values, dtype=np.float64)[:, None, None], (times.size, 2, 3))
    return xr.Dataset(
        {"x": (("time", "latitude", "longitude"), field)},
        coords={"time": times, "latitude": LAT, "longitude": LON},
    )


def test_raw_climatology_is_the_mean_over_years_by_day_and_hour():
    climatology = compute_climatology(two_year_truth(), window_days=1)
    assert climatology["x"].dims == ("dayofyear", "hour", "latitude", "longitude")
    np.testing.assert_array_equal(climatology["hour"].values, [0, 12])
    # mean over 2001 and 2002 of doy + 100·hour + {0, 1000} = doy + 100·hour + 500
    expected = np.arange(1, 366)[:, None] + 100.0 * np.array([0, 12])[None, :] + 500.0
    np.testing.assert_allclose(climatology["x"].isel(latitude=0, longitude=0).values[:365], expected)
    assert np.isnan(climatology["x"].sel(dayofyear=366)).all()  # no leap day in the data


def test_running_window_weights_samples_equally_and_wraps_the_year():
    climatology = compute_climatology(two_year_truth(), window_days=3)["x"].isel(latitude=0, longitude=0)
    at_midnight = climatology.sel(hour=0)
    # interior day: mean of (d−1, d, d+1) + 500 = d + 500
    assert at_midnight.sel(dayofyear=100).item() == pytest.approx(600.0)
    # day 1: window {366 (empty), 1, 2} → (1 + 2)/2 + 500; day 365: {364, 365, 366 (empty)} → 364.5 + 500
    assert at_midnight.sel(dayofyear=1).item() == pytest.approx(501.5)
    assert at_midnight.sel(dayofyear=365).item() == pytest.approx(864.5)
    # day 366 has no data itself but its window {365, 366, 1} wraps to January: (365 + 1)/2 + 500
    assert at_midnight.sel(dayofyear=366).item() == pytest.approx(683.0)


def test_default_window_is_wb2s_61_days_and_bad_windows_raise():
    assert compute_climatology(two_year_truth().isel(time=slice(0, 60))).attrs["window_days"] == 61
    for window in (0, 4, 367, 2.0):
        with pytest.raises(ValueError, match="window_days"):
            compute_climatology(two_year_truth(), window_days=window)


def test_climatology_is_lazy_on_dask_input_and_equals_the_eager_result():
    truth = two_year_truth()
    lazy = compute_climatology(truth.chunk({"time": 100}), window_days=5)
    assert lazy["x"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), compute_climatology(truth, window_days=5))


def test_a_store_with_one_time_step_per_chunk_gives_a_small_graph_and_the_same_climatology():
    """vecfield's build writes one time step per chunk; the reduction must not keep that chunking
    (28,276 tasks for 1,460 input chunks before, ~4,600 now: the docs example took 5× the pipeline)."""
    truth = two_year_truth()
    chunked = truth.chunk({"time": 1})
    lazy = compute_climatology(chunked)
    tasks, inputs = len(dict(lazy.__dask_graph__())), chunked["x"].data.npartitions
    assert tasks < 4 * inputs, (tasks, inputs)
    xr.testing.assert_allclose(lazy.compute(), compute_climatology(truth))


def test_static_fields_without_time_pass_through_the_climatology():
    """A dataset vecfield built holds the static fields (land_sea_mask, …) without a time dim."""
    truth = two_year_truth().assign(land_sea_mask=(("latitude", "longitude"), np.eye(2, 3)))
    for data in (truth, truth.chunk({"time": 100})):
        climatology = compute_climatology(data, window_days=3).compute()
        xr.testing.assert_equal(climatology["land_sea_mask"], truth["land_sea_mask"])
        assert climatology["x"].dims == ("dayofyear", "hour", "latitude", "longitude")


def test_climatology_forecast_takes_the_climatology_at_the_valid_time():
    climatology = compute_climatology(two_year_truth(), window_days=1)
    inits = pd.DatetimeIndex(["2001-03-01T00", "2003-07-01T12"])  # inits outside the training years are fine
    forecast = climatology_forecast(climatology, inits, hours(0, 36))
    assert forecast["x"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    values = forecast["x"].isel(latitude=1, longitude=2).values
    # 2001-03-01T00 → doy 60 hour 0; + 36 h → 2001-03-02T12, doy 61 hour 12
    # 2003-07-01T12 → doy 182 hour 12; + 36 h → 2003-07-03T00, doy 184 hour 0
    np.testing.assert_allclose(values, [[60 + 500, 61 + 1200 + 500], [182 + 1200 + 500, 184 + 500]])
    with pytest.raises(ValueError, match="climatology lacks hour"):
        climatology_forecast(climatology, inits, hours(6))
    with pytest.raises(TypeError, match="timedelta64"):
        climatology_forecast(climatology, inits, [0, 6])


def test_persistence_repeats_the_initial_state_over_leads():
    truth = two_year_truth()
    inits = truth["time"].values[[3, 10]]
    forecast = persistence_forecast(truth, inits, hours(0, 12, 240))
    assert forecast["x"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
    for k, init in enumerate(inits):
        for j in range(3):
            np.testing.assert_array_equal(forecast["x"].values[k, j], truth["x"].sel(time=init).values)
    with pytest.raises(ValueError, match="persistence needs the truth at every init time"):
        persistence_forecast(truth, np.array(["1999-01-01"], dtype="datetime64[ns]"), hours(6))


def test_missing_values_are_skipped_not_counted():
    truth = two_year_truth()
    values = truth["x"].values.copy()
    values[0, 0, 0] = np.nan  # 2001-01-01T00 at one cell: day 1, hour 0 then averages 2002 alone
    truth = truth.copy(data={"x": values})
    for data in (truth, truth.chunk({"time": 97})):
        climatology = compute_climatology(data, window_days=1)["x"].sel(dayofyear=1, hour=0).compute()
        assert climatology.values[0, 0] == pytest.approx(1 + 1000.0)
        assert climatology.values[1, 1] == pytest.approx(1 + 500.0)
