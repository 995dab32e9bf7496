"""Cells of regular latitude–longitude grids on the unit sphere: bounds, areas and latitude weights.

This is the package's one definition of spherical cell geometry. Regridding, derived fields, the
forecaster's loss weights, the evaluation metrics and the generative forecaster's sphere noise
all read it, so a global grid and a limited-area box are weighted the same way everywhere.

Cell bounds. Row i of an increasing latitude axis φ_0 < … < φ_{H−1} spans [φ⁻_i, φ⁺_i]:

    φ⁻_i = (φ_{i−1} + φ_i) / 2,   φ⁺_i = (φ_i + φ_{i+1}) / 2                                  (1)

inside the grid. The outer bounds are closed at the pole when the grid reaches it, that is when
the outermost row lies within one row spacing of ±90° (grids with pole rows, WeatherBench2's
equiangular grids, Gaussian grids); otherwise (a limited-area box) they are closed half a
spacing beyond the outermost row, the same as an interior cell. A grid that reaches the poles
thus gets WeatherBench2's bounds, and a box gets cells of its own spacing instead of a
1,000-km band reaching to the pole.

Areas. A cell [φ⁻, φ⁺] × [λ⁻, λ⁺] has area (sin φ⁺ − sin φ⁻)(λ⁺ − λ⁻) on the unit sphere (λ in
radians), so the latitude weight of row i is

    w_i = (sin φ⁺_i − sin φ⁻_i) / mean_j (sin φ⁺_j − sin φ⁻_j),                              (2)

which on an evenly spaced box is cos φ_i / mean(cos φ) exactly, and on a global grid the
WeatherBench2 and GraphCast weights. Longitudes are assumed evenly spaced, so every cell of a
row has the same area and the relative area of a grid node is its row's weight.
"""

import numpy as np

#: tolerance in degrees when deciding whether a grid reaches a pole
_POLE_TOLERANCE = 1e-6


def latitude_edges(latitude: np.ndarray) -> np.ndarray:
    """(H + 1,) cell edges in degrees of increasing row centres (H,), eq. (1).

    An outer edge is ±90° when the outermost row is within one row spacing of that pole, else
    half a spacing beyond the row. A single row is the whole sphere, [−90°, 90°].
    """
    lat = np.asarray(latitude, dtype=np.float64)
    if lat.ndim != 1 or lat.size == 0:
        raise ValueError(f"latitude must be a non-empty 1-D array, got shape {lat.shape}")
    if np.any(np.abs(lat) > 90.0):
        raise ValueError(f"latitudes must lie in [-90, 90] degrees, got range [{lat.min()}, {lat.max()}]")
    if lat.size == 1:
        return np.array([-90.0, 90.0])
    if not np.all(np.diff(lat) > 0):
        raise ValueError(
            "latitude must be strictly increasing; flip a descending grid first, "
            "e.g. ds.sortby('latitude') (ERA5 files from the CDS run 90 → -90)"
        )
    first_step, last_step = lat[1] - lat[0], lat[-1] - lat[-2]
    south = -90.0 if lat[0] - first_step <= -90.0 + _POLE_TOLERANCE else lat[0] - first_step / 2
    north = 90.0 if lat[-1] + last_step >= 90.0 - _POLE_TOLERANCE else lat[-1] + last_step / 2
    return np.concatenate([[south], (lat[:-1] + lat[1:]) / 2, [north]])


def latitude_cell_bounds(latitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds φ⁻_i, φ⁺_i (degrees), each (H,), of increasing rows (H,), eq. (1)."""
    edges = latitude_edges(latitude)
    return edges[:-1], edges[1:]


def longitude_edges(longitude: np.ndarray) -> np.ndarray:
    """(W + 1,) cell edges in degrees of column centres (W,) running west → east: midpoints, and
    half a spacing beyond the outer columns (on a global grid the outer edges meet across 0°/360°).

    A box across the meridian given in [0, 360) (…, 359.75, 0, 0.25, …) is unwrapped first, so
    its edges increase through 360°.
    """
    lon = np.asarray(longitude, dtype=np.float64)
    if lon.ndim != 1 or lon.size < 2:
        raise ValueError(f"longitude must be a 1-D array of at least two columns, got shape {lon.shape}")
    lon = np.unwrap(lon, period=360.0)
    if not np.all(np.diff(lon) > 0):
        raise ValueError("longitudes must run west → east (sort them, e.g. ds.sortby('longitude'))")
    first = lon[0] - (lon[1] - lon[0]) / 2
    last = lon[-1] + (lon[-1] - lon[-2]) / 2
    return np.concatenate([[first], (lon[:-1] + lon[1:]) / 2, [last]])


def latitude_band_areas(latitude: np.ndarray) -> np.ndarray:
    """(H,) sin φ⁺_i − sin φ⁻_i: each row's area per radian of longitude on the unit sphere."""
    return np.diff(np.sin(np.deg2rad(latitude_edges(latitude))))


def cell_areas(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """(H, W) cell areas on the unit sphere, (sin φ⁺ − sin φ⁻)(λ⁺ − λ⁻) with λ in radians.

    They sum to 4π over a global grid and to the box's exact area over a limited-area grid.
    """
    return latitude_band_areas(latitude)[:, None] * np.diff(np.deg2rad(longitude_edges(longitude)))[None, :]


def latitude_weights(latitude: np.ndarray, normalize: bool = True) -> np.ndarray:
    """(H,) row weights of eq. (2), mean 1; ``normalize=False`` gives the band areas of
    :func:`latitude_band_areas` (they sum to 2 over a grid that reaches both poles)."""
    areas = latitude_band_areas(latitude)
    return areas / areas.mean() if normalize else areas


def relative_cell_areas(latitude: np.ndarray, n_longitude: int) -> np.ndarray:
    """(H · W,) area of each grid node's cell over the mean cell, nodes latitude-major
    (node = i_lat · W + i_lon), for evenly spaced longitudes: row i's weight repeated W times."""
    if n_longitude < 1:
        raise ValueError(f"n_longitude must be ≥ 1, got {n_longitude}")
    return np.repeat(latitude_weights(latitude), n_longitude)
