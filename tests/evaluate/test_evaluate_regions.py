"""Regional scores: a region mask keeps the global latitude weights."""

import numpy as np
import pandas as pd
import pytest
from evalhelpers import forecast_dataset, hours, truth_dataset

from vecfield.evaluate import REGIONS, Region, restrict_to_region, rmse
from vecfield.evaluate.weights import latitude_weights

LAT = np.array([-67.5, -22.5, 22.5, 67.5])  # bounds −90, −45, 0, 45, 90
LON = np.array([0.0, 90.0, 180.0, 270.0])


def test_latitude_bands_and_wrapping_longitudes():
    truth = truth_dataset(np.zeros((1, 4, 4)), pd.DatetimeIndex(["2020-01-01"]), LAT, LON)
    assert REGIONS["tropics"].mask(truth).values.any(axis=1).tolist() == [False, False, False, False]
    assert REGIONS["extratropics"].mask(truth).values.all(axis=1).tolist() == [True, True, True, True]
    assert REGIONS["northern_extratropics"].mask(truth).values.all(axis=1).tolist() == [
        False,
        False,
        True,
        True,
    ]
    wrapped = Region("wrap", latitude=(0.0, 90.0), longitude=(200.0, 100.0)).mask(truth)
    np.testing.assert_array_equal(wrapped.sel(latitude=67.5).values, [True, True, False, True])
    with pytest.raises(ValueError, match="unknown region 'europa'; choose one of"):
        restrict_to_region(truth, "europa")
    with pytest.raises(ValueError, match="no grid cell"):
        restrict_to_region(truth, "tropics")
    with pytest.raises(ValueError, match="latitude must be"):
        Region("bad", latitude=(30.0, -30.0))


def test_regional_rmse_uses_the_global_grids_weights():
    # errors by row 1, 2, 3, 4; the northern extratropics hold rows 3 and 4 whose global weights are
    # sin 45° − sin 0° and 1 − sin 45°: MSE = (w₃·9 + w₄·16)/(w₃ + w₄)
    times = pd.date_range("2020-01-01", periods=2, freq="6h")
    truth = truth_dataset(np.zeros((2, 4, 4)), times, LAT, LON)
    errors = np.repeat(np.array([1.0, 2.0, 3.0, 4.0])[:, None], 4, axis=1)
    forecast = forecast_dataset(errors[None, None], times[:1], hours(6), LAT, LON)
    w3, w4 = np.sin(np.pi / 4), 1 - np.sin(np.pi / 4)
    regional = rmse(forecast, restrict_to_region(truth, "northern_extratropics"))["x"].item()
    assert regional == pytest.approx(np.sqrt((w3 * 9 + w4 * 16) / (w3 + w4)))
    # cutting the grid to those rows instead gives them the same areas: the cut grid still reaches
    # the pole (67.5° + 45° ≥ 90°) and its lower bound is the midpoint 0°
    np.testing.assert_allclose(latitude_weights(LAT[2:], normalize=False), [w3, w4], rtol=1e-12)
