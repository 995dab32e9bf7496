"""Deterministic scores against hand-computed values on a 3 × 2 grid (weights 0.75, 1.5, 0.75)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evalhelpers import THREE_LATITUDES, TWO_LONGITUDES, forecast_dataset, hours, rows, truth_dataset

from vecfield.evaluate import (
    acc,
    bias,
    deterministic_scores,
    mae,
    mse,
    rmse,
    rmse_sqrt_before_time_mean,
    wind_vector_rmse,
)

INITS = pd.DatetimeIndex(["2020-01-01T00", "2020-01-01T12"])
TRUTH_TIMES = pd.date_range("2020-01-01", periods=4, freq="6h")
LEAD = hours(6)


def one_lead_case(errors_per_init: list[list[float]]) -> tuple[xr.Dataset, xr.Dataset]:
    """Truth = 0 everywhere; forecast error at init k is the row pattern errors_per_init[k]."""
    truth = truth_dataset(np.zeros((4, 3, 2)), TRUTH_TIMES, THREE_LATITUDES, TWO_LONGITUDES)
    data = np.stack([rows(e) for e in errors_per_init])[:, None]  # (init, lead=1, lat, lon)
    return forecast_dataset(data, INITS, LEAD, THREE_LATITUDES, TWO_LONGITUDES), truth


def test_mse_rmse_bias_mae_equal_hand_computed_values():
    # init 1: errors rows (2, 0, −2): ⟨e²⟩ = (0.75·4 + 1.5·0 + 0.75·4)/3 = 2, ⟨e⟩ = 0, ⟨|e|⟩ = 1
    # init 2: errors rows (1, 1, 1):  ⟨e²⟩ = 1,                                ⟨e⟩ = 1, ⟨|e|⟩ = 1
    forecast, truth = one_lead_case([[2.0, 0.0, -2.0], [1.0, 1.0, 1.0]])
    assert mse(forecast, truth)["x"].item() == pytest.approx((2 + 1) / 2)
    assert rmse(forecast, truth)["x"].item() == pytest.approx(np.sqrt(1.5))
    assert rmse_sqrt_before_time_mean(forecast, truth)["x"].item() == pytest.approx((np.sqrt(2) + 1) / 2)
    assert bias(forecast, truth)["x"].item() == pytest.approx((0 + 1) / 2)
    assert mae(forecast, truth)["x"].item() == pytest.approx((1 + 1) / 2)


def test_rmse_conventions_differ_sqrt_after_time_mean_is_larger():
    # spatially uniform errors 1 and 3: WB2 sqrt((1 + 9)/2) = √5 ≈ 2.236, WB1/GraphCast (1 + 3)/2 = 2
    forecast, truth = one_lead_case([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])
    assert rmse(forecast, truth)["x"].item() == pytest.approx(np.sqrt(5.0))
    assert rmse_sqrt_before_time_mean(forecast, truth)["x"].item() == pytest.approx(2.0)


def test_scores_from_one_alignment_match_the_single_functions():
    forecast, truth = one_lead_case([[2.0, 0.0, -2.0], [1.0, 3.0, 1.0]])
    scores = deterministic_scores(forecast, truth)
    for name, function in [("mse", mse), ("rmse", rmse), ("bias", bias), ("mae", mae)]:
        xr.testing.assert_allclose(scores[name], function(forecast, truth))
    xr.testing.assert_allclose(
        scores["rmse_sqrt_before_time_mean"], rmse_sqrt_before_time_mean(forecast, truth)
    )


def climatology_by_day_and_hour() -> xr.Dataset:
    """C(doy, hour) = 10·doy + hour/6, constant in space, on days 1–3 and hours 0, 6, 12, 18."""
    days, hours_of_day = np.arange(1, 4), np.array([0, 6, 12, 18])
    values = 10.0 * days[:, None] + hours_of_day[None, :] / 6
    field = np.broadcast_to(values[:, :, None, None], (3, 4, 3, 2))
    return xr.Dataset(
        {"x": (("dayofyear", "hour", "latitude", "longitude"), field)},
        coords={
            "dayofyear": days,
            "hour": hours_of_day,
            "latitude": THREE_LATITUDES,
            "longitude": TWO_LONGITUDES,
        },
    )


def test_acc_hand_case_uses_climatology_at_the_valid_time():
    # init 2020-01-01T12 + 18 h is valid 2020-01-02T06: climatology 10·2 + 1 = 21 (at the init it is 12)
    # anomalies f' rows (1, 2, 0), o' rows (1, 0, 1):
    # ⟨f'o'⟩ = 0.75/3 = 0.25, ⟨f'²⟩ = (0.75 + 6)/3 = 2.25, ⟨o'²⟩ = 1.5/3 = 0.5 → ACC = 0.25/√1.125
    init, lead = pd.DatetimeIndex(["2020-01-01T12"]), hours(18)
    truth_times = pd.date_range("2020-01-01", periods=8, freq="6h")
    climatology = climatology_by_day_and_hour()
    truth_values = np.zeros((8, 3, 2))
    truth_values[5] = 21.0 + rows([1.0, 0.0, 1.0])  # truth_times[5] = 2020-01-02T06
    truth = truth_dataset(truth_values, truth_times, THREE_LATITUDES, TWO_LONGITUDES)
    forecast = forecast_dataset(
        (21.0 + rows([1.0, 2.0, 0.0]))[None, None], init, lead, THREE_LATITUDES, TWO_LONGITUDES
    )
    assert acc(forecast, truth, climatology)["x"].item() == pytest.approx(0.25 / np.sqrt(1.125))


def test_acc_is_one_for_a_perfect_forecast():
    rng = np.random.default_rng(5)
    truth_times = pd.date_range("2020-01-01", periods=8, freq="6h")
    truth = truth_dataset(50.0 + rng.normal(size=(8, 3, 2)), truth_times, THREE_LATITUDES, TWO_LONGITUDES)
    inits, leads = truth_times[:4], hours(0, 6, 12, 18)
    perfect = np.stack([np.stack([truth["x"].sel(time=t + d).values for d in leads]) for t in inits])
    forecast = forecast_dataset(perfect, inits, leads, THREE_LATITUDES, TWO_LONGITUDES)
    np.testing.assert_allclose(acc(forecast, truth, climatology_by_day_and_hour())["x"].values, 1.0)


def test_acc_needs_the_valid_times_hours_in_the_climatology():
    forecast, truth = one_lead_case([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="climatology lacks hour"):
        acc(forecast, truth, climatology_by_day_and_hour().sel(hour=[0, 12]))


def test_wind_vector_rmse_hand_case():
    # Δu rows (3, 0, 0), Δv rows (4, 0, 0): ⟨Δu² + Δv²⟩ = 0.75·25/3 = 6.25 → RMSE 2.5
    truth = truth_dataset(np.zeros((4, 3, 2)), TRUTH_TIMES, THREE_LATITUDES, TWO_LONGITUDES)
    truth = truth.assign(v=truth["x"]).rename(x="u")
    forecast = xr.Dataset(
        {
            "u": (("time", "prediction_timedelta", "latitude", "longitude"), rows([3.0, 0, 0])[None, None]),
            "v": (("time", "prediction_timedelta", "latitude", "longitude"), rows([4.0, 0, 0])[None, None]),
        },
        coords={
            "time": INITS[:1],
            "prediction_timedelta": LEAD,
            "latitude": THREE_LATITUDES,
            "longitude": TWO_LONGITUDES,
        },
    )
    assert wind_vector_rmse(forecast, truth, wind=("u", "v")).item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="Pass wind="):
        wind_vector_rmse(forecast, truth)


def test_ensemble_forecasts_are_refused_by_deterministic_scores():
    forecast, truth = one_lead_case([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    ensemble = forecast.expand_dims(realization=3)
    with pytest.raises(ValueError, match=r"forecast.mean\('realization'\)"):
        rmse(ensemble, truth)


def test_acc_refuses_a_climatology_without_the_forecasts_field_dims():
    forecast, truth = one_lead_case([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="field dims"):
        acc(forecast, truth, climatology_by_day_and_hour().expand_dims(level=[500]))
