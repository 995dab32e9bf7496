"""The area-weighted spatial mean of WeatherBench2, with the package's latitude weights.

The weights are :func:`vecfield.geo.latitude_weights`: each row's cell area normalized to mean 1,
sin φ⁺_i − sin φ⁻_i with the outer bounds at the poles on a global grid (WeatherBench2's and
GraphCast's weights) and half a row spacing beyond the outer rows on a limited-area box.
"""

from typing import TypeVar, cast

import numpy as np
import xarray as xr

from vecfield import geo

SPATIAL_DIMS = ("latitude", "longitude")
XarrayT = TypeVar("XarrayT", xr.Dataset, xr.DataArray)  # a score keeps the kind of object it was given
LatitudeT = TypeVar("LatitudeT", np.ndarray, xr.DataArray)


def latitude_weights(latitude: LatitudeT, normalize: bool = True) -> LatitudeT:
    """Row weights of :func:`vecfield.geo.latitude_weights` for a numpy array (n_lat,), or as a
    DataArray on the same ``latitude`` coordinate when given one."""
    if isinstance(latitude, xr.DataArray):
        weights = geo.latitude_weights(latitude.values, normalize=normalize)
        return xr.DataArray(weights, dims=latitude.dims, coords=latitude.coords, name="latitude_weight")
    return geo.latitude_weights(latitude, normalize=normalize)


def spatial_mean(data: XarrayT) -> XarrayT:
    """Area-weighted mean over (latitude, longitude): Σ_ij w_i x_ij / Σ_ij w_i (NaN cells skipped).

    data: any object with ``latitude`` (increasing) and ``longitude`` dims; those two dims are
    reduced, all others kept. Lazy on dask-backed input.
    """
    missing = [dim for dim in SPATIAL_DIMS if dim not in data.dims]
    if missing:
        raise ValueError(
            f"spatial_mean needs dims {SPATIAL_DIMS}; {missing} missing from dims {tuple(data.dims)}"
        )
    weights = latitude_weights(data["latitude"])
    return data.weighted(weights).mean(SPATIAL_DIMS)


def sqrt(data: XarrayT) -> XarrayT:
    """Element-wise √ by numpy's ufunc, which xarray dispatches (keeps the object's kind; lazy on dask)."""
    return cast(XarrayT, np.sqrt(data))  # numpy's stubs type a ufunc on a non-array as returning ndarray
