"""Spherical cell geometry: WeatherBench2's weights on global grids, cos φ on boxes, exact areas."""

from pathlib import Path

import numpy as np
import pytest

from vecfield import geo
from vecfield.forecast.config import load_forecast_config
from vecfield.forecast.weights import loss_weights

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GRID_WITH_POLES = np.linspace(-90.0, 90.0, 121)  # WB2's 1.5° grid, 240×121
GRID_WITHOUT_POLES = -90.0 + 5.625 * (np.arange(32) + 0.5)  # WB2's 64×32 grid, ±87.1875
GAUSSIAN_T21 = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(32)[0]))  # 32 rows, ±85.76
EUROPE = np.arange(34.0, 72.0 + 1e-9, 0.25)  # the regional preset's rows


def wb2_weights(latitude: np.ndarray) -> np.ndarray:
    """WeatherBench2's rule: bounds at the midpoints, closed at ±90°, weight sin φ⁺ − sin φ⁻, mean 1."""
    edges = np.concatenate([[-90.0], (latitude[1:] + latitude[:-1]) / 2, [90.0]])
    weights = np.diff(np.sin(np.deg2rad(edges)))
    return weights / weights.mean()


def test_hand_computed_three_row_grid():
    # bounds −90, −30, 30, 90; raw weights 0.5, 1, 0.5 (sum 2); mean 2/3 → 0.75, 1.5, 0.75
    lower, upper = geo.latitude_cell_bounds(np.array([-60.0, 0.0, 60.0]))
    np.testing.assert_allclose(lower, [-90.0, -30.0, 30.0])
    np.testing.assert_allclose(upper, [-30.0, 30.0, 90.0])
    np.testing.assert_allclose(geo.latitude_weights(np.array([-60.0, 0.0, 60.0]), normalize=False),
                               [0.5, 1.0, 0.5])
    np.testing.assert_allclose(geo.latitude_weights(np.array([-60.0, 0.0, 60.0])), [0.75, 1.5, 0.75])


@pytest.mark.parametrize("latitude", [GRID_WITH_POLES, GRID_WITHOUT_POLES, GAUSSIAN_T21],
                         ids=["with-poles", "without-poles", "gaussian"])
def test_global_grids_get_weatherbench2_weights(latitude):
    np.testing.assert_allclose(geo.latitude_weights(latitude), wb2_weights(latitude), rtol=0, atol=1e-12)
    # the sin-differences telescope: Σ (sin φ⁺ − sin φ⁻) = sin 90° − sin(−90°) = 2
    assert geo.latitude_weights(latitude, normalize=False).sum() == pytest.approx(2.0, abs=1e-12)


def test_pole_rows_are_thin_caps_matching_graphcast_cell_areas():
    # GraphCast: cos(lat)·sin(Δ/2) for interior rows, sin²(Δ/4) for the pole rows, then mean 1
    delta = np.deg2rad(1.5)
    graphcast = np.cos(np.deg2rad(GRID_WITH_POLES)) * np.sin(delta / 2)
    graphcast[[0, -1]] = np.sin(delta / 4) ** 2
    np.testing.assert_allclose(geo.latitude_weights(GRID_WITH_POLES), graphcast / graphcast.mean(),
                               rtol=1e-12)


@pytest.mark.parametrize(
    "latitude", [GRID_WITHOUT_POLES, EUROPE, np.arange(-20.0, 20.1, 2.0), np.arange(55.0, 80.1, 1.0)],
    ids=["global", "europe", "tropics", "arctic"],
)
def test_evenly_spaced_rows_are_weighted_by_cos_latitude(latitude):
    cos_lat = np.cos(np.deg2rad(latitude))
    np.testing.assert_allclose(geo.latitude_weights(latitude), cos_lat / cos_lat.mean(), rtol=0, atol=1e-3)


def test_box_bounds_close_half_a_step_outside_and_reach_only_a_pole_the_grid_reaches():
    lower, upper = geo.latitude_cell_bounds(EUROPE)
    assert (lower[0], upper[-1]) == (33.875, 72.125)
    arctic = np.arange(60.0, 88.1, 2.0)  # 88 + 2 reaches the pole: the top row is closed at 90°
    assert geo.latitude_cell_bounds(arctic)[1][-1] == 90.0
    assert geo.latitude_cell_bounds(arctic)[0][0] == 59.0


@pytest.mark.parametrize(("latitude", "longitude"), [
    (EUROPE, np.concatenate([np.arange(335.0, 360.0, 0.25), np.arange(0.0, 45.01, 0.25)])),
    (np.arange(-10.0, 30.1, 2.5), np.arange(100.0, 140.1, 2.5)),
])
def test_cell_areas_sum_to_the_boxs_exact_spherical_area(latitude, longitude):
    step = latitude[1] - latitude[0]
    south, north = np.deg2rad(latitude[0] - step / 2), np.deg2rad(latitude[-1] + step / 2)
    width = np.deg2rad(longitude.size * (longitude[1] - longitude[0]))
    exact = (np.sin(north) - np.sin(south)) * width
    assert geo.cell_areas(latitude, longitude).sum() == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize(("latitude", "n_lon"), [(GRID_WITHOUT_POLES, 64), (GRID_WITH_POLES, 240),
                                                  (GAUSSIAN_T21, 64)])
def test_global_cell_areas_cover_the_sphere(latitude, n_lon):
    longitude = np.arange(n_lon) * 360.0 / n_lon
    assert geo.cell_areas(latitude, longitude).sum() == pytest.approx(4 * np.pi, rel=1e-12)


def test_relative_cell_areas_are_row_weights_per_node():
    areas = geo.relative_cell_areas(GRID_WITHOUT_POLES, 64)
    assert areas.shape == (32 * 64,) and areas.mean() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(areas.reshape(32, 64)[:, 7], geo.latitude_weights(GRID_WITHOUT_POLES))


def test_europe_preset_weights_no_row_above_one_and_a_half_times_the_mean():
    # regression: the box used to be closed at the poles, giving its southern row ~119× the mean
    config = load_forecast_config(CONFIGS / "era5_regional_europe.yaml")
    north, _, south, _ = config.dataset.grid.area
    latitude = np.arange(south, north + 1e-9, 0.25)  # ERA5's native 0.25° (grid.resolution: null)
    rows = loss_weights(latitude, 4, [("2m_temperature", None)])[::4, 0].double().numpy()
    assert rows.mean() == pytest.approx(1.0, abs=1e-6)
    assert rows.max() < 1.5 * rows.mean()


@pytest.mark.parametrize(
    ("latitude", "message"),
    [([60.0, 0.0, -60.0], "strictly increasing"), ([0.0, 95.0], r"\[-90, 90\]"), ([], "non-empty")],
)
def test_bad_latitudes_raise_with_a_fix(latitude, message):
    with pytest.raises(ValueError, match=message):
        geo.latitude_weights(np.array(latitude))


def test_longitudes_that_do_not_run_west_to_east_raise():
    with pytest.raises(ValueError, match="west → east"):
        geo.longitude_edges(np.array([10.0, 5.0, 0.0]))
