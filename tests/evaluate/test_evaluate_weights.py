"""The evaluation's latitude weights on DataArrays and the spatial mean (geometry: tests/test_geo.py)."""

import numpy as np
import pytest
import xarray as xr
from evalhelpers import THREE_LATITUDE_WEIGHTS, THREE_LATITUDES

from vecfield.evaluate.weights import latitude_weights, spatial_mean


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
