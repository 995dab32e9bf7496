"""Regional scores: keep the truth inside a region and set it to NaN outside.

Every score in ``vecfield.evaluate`` leaves out cells where the truth is NaN, so scoring against
``restrict_to_region(truth, region)`` averages over the region with the *global* grid's latitude
weights, as WeatherBench2's region masks do. (Cutting the grid instead would re-derive the cell
bounds of the edge rows out to ±90° and over-weight them.)

Predefined latitude bands, as in WeatherBench2: ``tropics`` (|φ| ≤ 20°), ``extratropics``
(|φ| ≥ 20°), ``northern_extratropics`` (φ ≥ 20°), ``southern_extratropics`` (φ ≤ −20°).
"""

from dataclasses import dataclass

import xarray as xr


@dataclass(frozen=True)
class Region:
    """A latitude band, optionally mirrored into both hemispheres, and an optional longitude range.

    latitude: (south, north) in degrees, bounds included. both_hemispheres: also include the
    band mirrored about the equator. longitude: (west, east) in degrees east on [0, 360), bounds
    included; west > east wraps through 0° (e.g. (350, 40) for 10°W–40°E). None = all longitudes.
    """

    name: str
    latitude: tuple[float, float] = (-90.0, 90.0)
    both_hemispheres: bool = False
    longitude: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        south, north = self.latitude
        if not -90.0 <= south <= north <= 90.0:
            raise ValueError(
                f"region {self.name!r}: latitude must be (south, north) within [-90, 90], got {self.latitude}"
            )
        if self.longitude is not None and not all(0.0 <= x < 360.0 for x in self.longitude):
            raise ValueError(
                f"region {self.name!r}: longitude bounds must lie in [0, 360), got {self.longitude}"
            )

    def mask(self, data: xr.Dataset | xr.DataArray) -> xr.DataArray:
        """Boolean (latitude, longitude) mask of the region on ``data``'s grid."""
        latitude, longitude = data["latitude"], data["longitude"] % 360.0
        south, north = self.latitude
        inside = (latitude >= south) & (latitude <= north)
        if self.both_hemispheres:
            inside = inside | ((-latitude >= south) & (-latitude <= north))
        if self.longitude is not None:
            west, east = self.longitude
            if west <= east:
                in_longitude = (longitude >= west) & (longitude <= east)
            else:
                in_longitude = (longitude >= west) | (longitude <= east)
            inside = inside & in_longitude
        else:
            inside = inside & xr.ones_like(longitude, dtype=bool)
        return inside.transpose("latitude", "longitude")


REGIONS = {
    region.name: region
    for region in (
        Region("global"),
        Region("tropics", latitude=(-20.0, 20.0)),
        Region("extratropics", latitude=(20.0, 90.0), both_hemispheres=True),
        Region("northern_extratropics", latitude=(20.0, 90.0)),
        Region("southern_extratropics", latitude=(-90.0, -20.0)),
    )
}


def restrict_to_region(truth: xr.Dataset, region: str | Region) -> xr.Dataset:
    """``truth`` with NaN outside ``region`` (a name from REGIONS or a Region); lazy."""
    if isinstance(region, str):
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; choose one of {sorted(REGIONS)} or pass a Region")
        region = REGIONS[region]
    mask = region.mask(truth)
    if not bool(mask.any()):
        raise ValueError(f"region {region.name!r} contains no grid cell of the truth's grid")
    return truth.where(mask)
