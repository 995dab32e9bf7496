"""Latitude (cell-area) weights and the area-weighted spatial mean, as WeatherBench2 defines them.

Each latitude row i of a regular latitude–longitude grid is the band between its cell bounds
φ⁻_i and φ⁺_i: the midpoints between neighbouring latitudes, closed by −90° and +90°. The area
of the band on the unit sphere, per radian of longitude, is

    a_i = sin φ⁺_i − sin φ⁻_i,          Σ_i a_i = sin 90° − sin(−90°) = 2,           (1)

and the weights are a_i normalized to mean 1, w_i = a_i / mean(a). This handles grids with poles
(the pole row is the thin cap between the pole and the first midpoint) and grids without poles
(the outermost rows extend to ±90°).

These are also GraphCast's training-loss weights: for an equiangular grid with spacing Δ, (1)
gives 2·cos φ_i·sin(Δ/2) for interior rows and 2·sin²(Δ/4) for pole rows, which is GraphCast's
``cos(lat)·sin(Δ/2)`` / ``sin²(Δ/4)`` rule up to a constant that the normalization removes.
"""

import numpy as np
import xarray as xr

SPATIAL_DIMS = ("latitude", "longitude")


def latitude_cell_bounds(latitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper cell bounds (degrees) of each latitude row, each of shape (n_lat,).

    latitude: 1-D, strictly increasing, in [−90, 90] degrees. Bounds are the midpoints between
    neighbouring rows, with −90 below the first row and +90 above the last.
    """
    lat = np.asarray(latitude, dtype=np.float64)
    if lat.ndim != 1 or lat.size == 0:
        raise ValueError(f"latitude must be a non-empty 1-D array, got shape {lat.shape}")
    if np.any(np.abs(lat) > 90.0):
        raise ValueError(f"latitudes must lie in [-90, 90] degrees, got range [{lat.min()}, {lat.max()}]")
    if lat.size > 1 and not np.all(np.diff(lat) > 0):
        raise ValueError(
            "latitude must be strictly increasing; flip a descending grid first, "
            "e.g. ds.sortby('latitude') (ERA5 files from the CDS run 90 → -90)"
        )
    midpoints = (lat[:-1] + lat[1:]) / 2
    lower = np.concatenate([[-90.0], midpoints])
    upper = np.concatenate([midpoints, [90.0]])
    return lower, upper


def latitude_weights(
    latitude: np.ndarray | xr.DataArray, normalize: bool = True
) -> np.ndarray | xr.DataArray:
    """Cell-area weights of latitude rows, eq. (1): w_i = sin φ⁺_i − sin φ⁻_i, normalized to mean 1.

    latitude: 1-D increasing latitudes in degrees, shape (n_lat,); a numpy array gives a numpy
    array of shape (n_lat,), a DataArray gives a DataArray on the same ``latitude`` coordinate.
    normalize=False returns the raw sin-differences, which sum to 2 over any global grid.
    Usable both for evaluation and as GraphCast's latitude weights in the training loss.
    """
    values = latitude.values if isinstance(latitude, xr.DataArray) else latitude
    lower, upper = latitude_cell_bounds(values)
    weights = np.sin(np.deg2rad(upper)) - np.sin(np.deg2rad(lower))
    if normalize:
        weights = weights / weights.mean()
    if isinstance(latitude, xr.DataArray):
        return xr.DataArray(weights, dims=latitude.dims, coords=latitude.coords, name="latitude_weight")
    return weights


def spatial_mean(data: xr.Dataset | xr.DataArray) -> xr.Dataset | xr.DataArray:
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
