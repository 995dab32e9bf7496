"""The simple baselines a regional user is judged against: per-hour-of-day climatology, damped
anomaly persistence (an AR(1) process recovers its φ^L), and the best of several baselines."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vecfield.evaluate import (
    anomaly_persistence_coefficients,
    best_baseline,
    climatology_forecast,
    compute_climatology,
    damped_anomaly_persistence_forecast,
    persistence_forecast,
)

LAT = np.array([-10.0, 0.0, 10.0])
LON = np.array([0.0, 10.0, 20.0, 30.0])


def hourly(values: np.ndarray, start: str = "2020-01-01") -> xr.Dataset:
    times = pd.date_range(start, periods=values.shape[0], freq="h")
    return xr.Dataset({"t2m": (("time", "latitude", "longitude"), values)},
                      coords={"time": times, "latitude": LAT, "longitude": LON})


def test_hour_of_day_climatology_is_the_mean_by_hour():
    rng = np.random.default_rng(0)
    hours = np.arange(24 * 40) % 24
    cycle = 5 * np.sin(2 * np.pi * hours / 24)[:, None, None]
    truth = hourly(cycle + rng.normal(size=(hours.size, 3, 4)))
    climatology = compute_climatology(truth, by_day_of_year=False)
    assert dict(climatology.sizes) == {"hour": 24, "latitude": 3, "longitude": 4}
    expected = truth["t2m"].groupby("time.hour").mean("time")
    np.testing.assert_allclose(climatology["t2m"].values, expected.values, rtol=1e-12)
    inits, leads = truth["time"].values[:2], pd.to_timedelta([1, 25], unit="h")
    forecast = climatology_forecast(climatology, inits, leads)  # selected by the valid time's hour only
    # valid 01:00 on day 1 and on day 2: the same hour, the same value
    np.testing.assert_allclose(forecast["t2m"].values[0, 0], forecast["t2m"].values[0, 1], rtol=1e-12)


def test_an_ar1_anomaly_gives_damping_phi_to_the_lead():
    """x′(t) = φ x′(t − 1) + ε on a zero climatology: the least-squares a_L → φ^L."""
    rng = np.random.default_rng(1)
    phi, n = 0.8, 20000
    anomaly = np.zeros((n, 3, 4))
    for t in range(1, n):
        anomaly[t] = phi * anomaly[t - 1] + rng.normal(size=(3, 4))
    truth = hourly(anomaly)
    climatology = xr.zeros_like(compute_climatology(truth, by_day_of_year=False))
    leads = pd.to_timedelta([1, 3, 6], unit="h")
    a = anomaly_persistence_coefficients(truth, climatology, leads)["t2m"].values
    np.testing.assert_allclose(a, phi ** np.array([1, 3, 6]), atol=0.02)


def test_damping_is_eq2_over_pairs_within_one_run_with_latitude_weights():
    """a_L against eq. (2) written out in numpy: pairs L apart in one run, rows weighted; a lead
    longer than the data has no pair and is NaN."""
    from vecfield.data.trajectories import TRAJECTORY_COORD
    from vecfield.geo import latitude_weights

    rng = np.random.default_rng(3)
    values = rng.normal(size=(30, 3, 4)) + np.linspace(0, 3, 30)[:, None, None]  # a trend: a_L ≠ 0
    runs = (np.arange(30) >= 17).astype(np.int64)  # two runs: hours 0–16 and 17–29
    truth = hourly(values).assign_coords({TRAJECTORY_COORD: ("time", runs)})
    climatology = compute_climatology(truth, by_day_of_year=False)
    leads = pd.to_timedelta([1, 5, 40], unit="h")
    got = anomaly_persistence_coefficients(truth, climatology, leads)["t2m"].values

    anomaly = values - climatology["t2m"].sel(hour=truth["time"].dt.hour).values
    w = latitude_weights(LAT)[:, None]
    for a, lead in zip(got[:2], (1, 5), strict=True):
        first = np.array([t for t in range(30 - lead) if runs[t] == runs[t + lead]])
        x, y = anomaly[first], anomaly[first + lead]
        assert a == pytest.approx((w * x * y).sum() / (w * x * x).sum(), rel=1e-12)
    assert np.isnan(got[2])


def test_damped_forecast_is_climatology_plus_the_damped_initial_anomaly():
    rng = np.random.default_rng(2)
    truth = hourly(rng.normal(size=(72, 3, 4)) + 280)
    climatology = compute_climatology(truth, by_day_of_year=False)
    leads = pd.to_timedelta([1, 2], unit="h")
    coefficients = xr.Dataset({"t2m": ("prediction_timedelta", [0.5, 0.25])},
                              coords={"prediction_timedelta": leads})
    inits = truth["time"].values[[3, 10]]
    forecast = damped_anomaly_persistence_forecast(truth, climatology, coefficients, inits)
    clim = climatology_forecast(climatology, inits, leads)["t2m"]
    initial = persistence_forecast(truth, inits, leads)["t2m"]
    at_init = climatology_forecast(climatology, inits, pd.to_timedelta([0], unit="h"))["t2m"].isel(
        prediction_timedelta=0, drop=True)
    expected = clim + coefficients["t2m"] * (initial - at_init)
    np.testing.assert_allclose(forecast["t2m"].values, expected.transpose(*forecast["t2m"].dims).values,
                               rtol=1e-12)
    # a_L = 0 is the climatology
    zeros = xr.zeros_like(coefficients)
    np.testing.assert_allclose(damped_anomaly_persistence_forecast(truth, climatology, zeros, inits)["t2m"],
                               clim.transpose(*forecast["t2m"].dims), rtol=1e-12)


def test_best_baseline_takes_the_smallest_error_and_names_it():
    leads = pd.to_timedelta([1, 12, 24], unit="h")
    def score(values):
        return xr.Dataset({"t2m": ("prediction_timedelta", values)}, coords={"prediction_timedelta": leads})
    best = best_baseline({"persistence": score([0.5, 2.0, 3.0]), "climatology": score([1.9, 1.9, 1.9]),
                          "damped": score([0.4, 1.7, np.nan])})
    np.testing.assert_allclose(best["t2m"].values, [0.4, 1.7, 1.9])
    assert best["t2m_baseline"].values.tolist() == ["damped", "damped", "climatology"]
    with pytest.raises(ValueError, match="at least one baseline"):
        best_baseline({})
