"""Regridding between regular latitude-longitude grids, and limited-area cropping.

Conservative (first-order, area-weighted) remapping: with source cells i and target cells j, the
target value is the area-weighted mean of the source cells it overlaps,

    y_j = Σ_i |A_i ∩ B_j| x_i / Σ_i |A_i ∩ B_j|,                                   (1)

and on the sphere a lat-lon cell's area factorizes, |[φ₀,φ₁]×[λ₀,λ₁]| = R² (sin φ₁ − sin φ₀)(λ₁ − λ₀),
so (1) is a product of two 1-D overlap matrices (latitude in sin φ, longitude periodic in λ),
applied lazily with ``xarray.dot``. Whenever every source cell is covered by target cells, the
area-weighted global mean Σ_j |B_j| y_j / Σ_j |B_j| equals the source's exactly. Cell bounds are
the package's one definition (:mod:`vecfield.geo`): midpoints between centres, the outer bounds at
the poles on grids that reach them (so a pole row is a thin cap, as in WeatherBench2's
``equiangular_with_poles`` grids) and half a spacing beyond the outer rows of a regional box.

Bilinear interpolation (``xarray.Dataset.interp`` with scipy) serves refinement and non-integer
ratios; longitude is treated as periodic.
"""

import numpy as np
import xarray as xr

from vecfield.geo import latitude_edges, longitude_edges


def regular_grid(resolution: float, include_poles: bool) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes (increasing) and longitudes in [0, 360) of a regular grid, in degrees.

    With poles: lat = −90, −90+Δ, …, 90 (180/Δ + 1 rows); without: lat = −90+Δ/2, …, 90−Δ/2
    (180/Δ rows, WeatherBench2 ``equiangular``); longitudes 0, Δ, …, 360−Δ.
    """
    rows, columns = 180.0 / resolution, 360.0 / resolution
    if not (np.isclose(rows, round(rows)) and np.isclose(columns, round(columns))):
        raise ValueError(
            f"resolution {resolution}° does not divide 180° and 360°; choose e.g. 5.625, 1.5, 1, 0.25"
        )
    latitude: np.ndarray
    if include_poles:
        latitude = np.linspace(-90.0, 90.0, round(rows) + 1)
    else:
        latitude = -90.0 + resolution * (np.arange(round(rows)) + 0.5)
    return latitude, resolution * np.arange(round(columns))


def _latitude_overlap(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(H_target, H_source) overlaps in sin φ of the latitude bands."""
    s, t = np.sin(np.deg2rad(latitude_edges(source))), np.sin(np.deg2rad(latitude_edges(target)))
    upper = np.minimum(t[1:, None], s[None, 1:])
    lower = np.maximum(t[:-1, None], s[None, :-1])
    return np.maximum(upper - lower, 0.0)


def _longitude_overlap(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(W_target, W_source) overlaps in degrees, counting the 360° periodicity."""
    s, t = longitude_edges(source), longitude_edges(target)
    overlap = np.zeros((t.size - 1, s.size - 1))
    for shift in (-360.0, 0.0, 360.0):
        upper = np.minimum(t[1:, None], s[None, 1:] + shift)
        lower = np.maximum(t[:-1, None], s[None, :-1] + shift)
        overlap += np.maximum(upper - lower, 0.0)
    return overlap


def conservative_regrid(ds: xr.Dataset, latitude: np.ndarray, longitude: np.ndarray) -> xr.Dataset:
    """Eq. (1) from the grid of ``ds`` (canonical layout) to the given target centres (degrees).

    Every target cell must be covered by source cells (ValueError otherwise). Lazy with dask.
    """
    w_lat = _latitude_overlap(ds["latitude"].values, latitude)
    w_lon = _longitude_overlap(ds["longitude"].values, longitude)
    if (w_lat.sum(1) <= 0).any() or (w_lon.sum(1) <= 0).any():
        raise ValueError("the target grid reaches outside the source grid; crop the target area first")
    lat_weights = xr.DataArray(w_lat / w_lat.sum(1, keepdims=True), dims=("lat_out", "latitude"))
    lon_weights = xr.DataArray(w_lon / w_lon.sum(1, keepdims=True), dims=("lon_out", "longitude"))
    regridded = {}
    for name, var in ds.data_vars.items():
        if "latitude" not in var.dims or "longitude" not in var.dims:
            regridded[name] = var
            continue
        order = [d for d in var.dims]
        out = xr.dot(xr.dot(var, lat_weights, dim="latitude"), lon_weights, dim="longitude")
        out = out.rename(lat_out="latitude", lon_out="longitude").transpose(*order)
        regridded[name] = out.astype(var.dtype).assign_attrs(var.attrs)
    coords = {
        "latitude": ("latitude", np.asarray(latitude, float), ds["latitude"].attrs),
        "longitude": ("longitude", np.asarray(longitude, float), ds["longitude"].attrs),
    }
    other = {k: v for k, v in ds.coords.items() if k not in ("latitude", "longitude")}
    return xr.Dataset(regridded, coords={**other, **coords}, attrs=ds.attrs)


def bilinear_regrid(ds: xr.Dataset, latitude: np.ndarray, longitude: np.ndarray) -> xr.Dataset:
    """Bilinear interpolation to the target centres; longitude periodic, latitude inside the source range."""
    lat = ds["latitude"].values
    if np.min(latitude) < lat.min() - 1e-9 or np.max(latitude) > lat.max() + 1e-9:
        raise ValueError(
            f"target latitudes [{np.min(latitude)}, {np.max(latitude)}] reach outside the source's "
            f"[{lat.min()}, {lat.max()}]; choose include_poles=False or the conservative method"
        )
    # wrap one column on each side so the interpolation is periodic in longitude
    padded = xr.concat(
        [
            ds.isel(longitude=[-1]).assign_coords(longitude=ds["longitude"][-1:] - 360.0),
            ds,
            ds.isel(longitude=[0]).assign_coords(longitude=ds["longitude"][:1] + 360.0),
        ],
        dim="longitude",
        data_vars="minimal",
        coords="minimal",
        compat="override",
    )
    out = padded.interp(latitude=np.asarray(latitude, float), longitude=np.asarray(longitude, float))
    for name, var in ds.data_vars.items():
        out[name] = out[name].astype(var.dtype).assign_attrs(var.attrs)
    return out


def is_integer_coarsening(source_spacing: float, target_spacing: float) -> bool:
    """True when the target spacing is an integer multiple (≥ 1) of the source spacing."""
    ratio = target_spacing / source_spacing
    return ratio >= 1 - 1e-9 and bool(np.isclose(ratio, round(ratio), atol=1e-6))


def regrid(ds: xr.Dataset, resolution: float, include_poles: bool, method: str = "auto") -> xr.Dataset:
    """``ds`` on the regular grid of ``resolution`` degrees.

    method: ``conservative``, ``bilinear`` or ``auto`` (conservative for integer coarsening of a
    regular source, bilinear otherwise).
    """
    latitude, longitude = regular_grid(resolution, include_poles)
    if method == "auto":
        spacing = float(np.median(np.diff(ds["longitude"].values)))
        method = "conservative" if is_integer_coarsening(spacing, resolution) else "bilinear"
    if method == "conservative":
        return conservative_regrid(ds, latitude, longitude)
    if method == "bilinear":
        return bilinear_regrid(ds, latitude, longitude)
    raise ValueError(f"unknown regrid method {method!r}; choose 'auto', 'conservative' or 'bilinear'")


def crop_area(ds: xr.Dataset, north: float, west: float, south: float, east: float) -> xr.Dataset:
    """A limited-area subset; longitudes run eastwards from ``west`` and may wrap across 0°.

    Longitude values stay in [0, 360); across the meridian they are ordered west → east
    (e.g. 335, …, 357.5, 0, …, 45), so neighbouring columns stay neighbours.
    """
    if not (-90 <= south < north <= 90):
        raise ValueError(f"area needs −90 ≤ south < north ≤ 90, got north={north}, south={south}")
    lat = ds["latitude"].values
    rows = np.nonzero((lat >= south) & (lat <= north))[0]
    lon = ds["longitude"].values
    start, width = west % 360.0, (east - west) % 360.0
    if width == 0:
        raise ValueError(f"area west={west} and east={east} give an empty longitude range")
    offset = (lon - start) % 360.0
    columns = np.nonzero(offset <= width)[0]
    columns = columns[np.argsort(offset[columns])]
    if rows.size < 2 or columns.size < 2:
        raise ValueError(f"area [{north}, {west}, {south}, {east}] holds fewer than 2×2 grid points")
    return ds.isel(latitude=rows, longitude=columns)
