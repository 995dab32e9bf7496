"""Latitude weights: WeatherBench2's sin-difference rule, GraphCast's cell areas, the spatial mean."""

import numpy as np
import pytest
import xarray as xr
from evalhelpers import THREE_LATITUDE_WEIGHTS, THREE_LATITUDES

from vecfield.evaluate.weights import latitude_cell_bounds, latitude_weights, spatial_mean

GRID_WITH_POLES = np.linspace(-90.0, 90.0, 121)  # WB2's 1.5° grid, 240×121
GRID_WITHOUT_POLES = -90.0 + 5.625 * (np.arange(32) + 0.5)  # WB2's 64×32 grid, ±87.1875


def test_hand_computed_three_row_grid():
    # bounds −90, −30, 30, 90; raw weights 0.5, 1, 0.5 (sum 2); mean 2/3 → 0.75, 1.5, 0.75
    lower, upper = latitude_cell_bounds(THREE_LATITUDES)
    np.testing.assert_allclose(lower, [-90.0, -30.0, 30.0])
    np.testing.assert_allclose(upper, [-30.0, 30.0, 90.0])
    np.testing.assert_allclose(latitude_weights(THREE_LATITUDES, normalize=False), [0.5, 1.0, 0.5])
    np.testing.assert_allclose(latitude_weights(THREE_LATITUDES), THREE_LATITUDE_WEIGHTS)


@pytest.mark.parametrize(
    "latitude",
    [GRID_WITH_POLES, GRID_WITHOUT_POLES, np.sort(np.random.default_rng(3).uniform(-89, 89, 17))],
    ids=["with-poles", "without-poles", "irregular"],
)
def test_raw_weights_sum_to_two_and_normalized_mean_is_one(latitude):
    # the sin-differences telescope: Σ (sin φ⁺ − sin φ⁻) = sin 90° − sin(−90°) = 2
    assert latitude_weights(latitude, normalize=False).sum() == pytest.approx(2.0, abs=1e-12)
    weights = latitude_weights(latitude)
    assert weights.mean() == pytest.approx(1.0, abs=1e-12)
    assert np.all(weights > 0)


def test_pole_rows_are_thin_caps_matching_graphcast_cell_areas():
    # GraphCast: cos(lat)·sin(Δ/2) for interior rows, sin²(Δ/4) for the pole rows, then mean 1
    delta = np.deg2rad(1.5)
    lat = np.deg2rad(GRID_WITH_POLES)
    graphcast = np.cos(lat) * np.sin(delta / 2)
    graphcast[[0, -1]] = np.sin(delta / 4) ** 2
    graphcast /= graphcast.mean()
    weights = latitude_weights(GRID_WITH_POLES)
    np.testing.assert_allclose(weights, graphcast, rtol=1e-12)
    # the pole cap 1 − cos(Δ/2) is about 1/8 of its neighbour's band 2·cos(Δ)·sin(Δ/2)
    assert weights[0] / weights[1] == pytest.approx(0.125, rel=1e-3)


def test_grid_without_poles_is_proportional_to_cos_latitude():
    cos_lat = np.cos(np.deg2rad(GRID_WITHOUT_POLES))
    np.testing.assert_allclose(latitude_weights(GRID_WITHOUT_POLES), cos_lat / cos_lat.mean(), rtol=1e-12)


def test_dataarray_in_dataarray_out():
    latitude = xr.DataArray(THREE_LATITUDES, dims="latitude", coords={"latitude": THREE_LATITUDES})
    weights = latitude_weights(latitude)
    assert isinstance(weights, xr.DataArray)
    np.testing.assert_array_equal(weights["latitude"].values, THREE_LATITUDES)
    np.testing.assert_allclose(weights.values, THREE_LATITUDE_WEIGHTS)


def test_spatial_mean_hand_case():
    # rows 4, 1, −2 with weights 0.75, 1.5, 0.75: (3 + 1.5 − 1.5) / 3 = 1
    field = xr.DataArray(
        np.array([[4.0, 4.0], [1.0, 1.0], [-2.0, -2.0]]),
        dims=("latitude", "longitude"),
        coords={"latitude": THREE_LATITUDES, "longitude": [0.0, 180.0]},
    )
    assert float(spatial_mean(field)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("latitude", "message"),
    [([60.0, 0.0, -60.0], "strictly increasing"), ([0.0, 95.0], r"\[-90, 90\]"), ([], "non-empty")],
)
def test_bad_latitudes_raise_with_a_fix(latitude, message):
    with pytest.raises(ValueError, match=message):
        latitude_weights(np.array(latitude))
