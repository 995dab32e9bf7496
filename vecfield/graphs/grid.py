"""Regular latitude-longitude grids: global (with or without the poles) and regional boxes.

Grid nodes are numbered latitude-major: node = i_lat · n_lon + i_lon, latitudes in the order of
``latitudes()`` (south → north unless ``descending``), longitudes west → east.
"""

import math
from dataclasses import dataclass

import numpy as np

_TOLERANCE = 1e-9


def _steps(span: float, resolution: float, what: str) -> int:
    steps = span / resolution
    if abs(steps - round(steps)) > 1e-6 or round(steps) < 0:
        raise ValueError(f"{what} ({span:g}°) is not a whole number of {resolution:g}° steps; "
                         "choose a resolution that divides it")
    return round(steps)


@dataclass(frozen=True)
class LatLonGrid:
    """A regular lat-lon box: latitudes south…north and longitudes west…east, both inclusive.

    Use ``LatLonGrid.global_grid(resolution, poles=...)`` for the whole sphere, or the constructor
    for a regional (limited-area) box. ``lon_east`` may exceed 360 to wrap past the meridian
    (e.g. west 350, east 370). Degrees throughout.
    """

    lat_south: float
    lat_north: float
    lon_west: float
    lon_east: float
    resolution: float
    descending: bool = False

    def __post_init__(self) -> None:
        if not self.resolution > 0:
            raise ValueError(f"resolution must be > 0 degrees, got {self.resolution}")
        if not -90.0 <= self.lat_south <= self.lat_north <= 90.0:
            raise ValueError(f"need −90 ≤ lat_south ≤ lat_north ≤ 90, got {self.lat_south}, {self.lat_north}")
        if not self.lon_west <= self.lon_east < self.lon_west + 360.0:
            raise ValueError(f"need lon_west ≤ lon_east < lon_west + 360, got {self.lon_west}, "
                             f"{self.lon_east} (write a box across the meridian as e.g. 350…370)")
        _steps(self.lat_north - self.lat_south, self.resolution, "the latitude span")
        _steps(self.lon_east - self.lon_west, self.resolution, "the longitude span")

    @classmethod
    def global_grid(cls, resolution: float, poles: bool = True, descending: bool = False) -> "LatLonGrid":
        """The whole sphere: longitudes 0, r, …, 360 − r; latitudes −90…90 with poles, else
        −90 + r/2 … 90 − r/2 (WeatherBench2's 64×32 at 5.625° has no poles; ERA5's 0.25° has).
        """
        _steps(360.0, resolution, "360°")
        _steps(180.0, resolution, "180°")
        edge = 90.0 if poles else 90.0 - resolution / 2.0
        return cls(-edge, edge, 0.0, 360.0 - resolution, resolution, descending)

    @property
    def shape(self) -> tuple[int, int]:
        """(n_lat, n_lon)."""
        return (_steps(self.lat_north - self.lat_south, self.resolution, "") + 1,
                _steps(self.lon_east - self.lon_west, self.resolution, "") + 1)

    @property
    def num_nodes(self) -> int:
        return math.prod(self.shape)

    @property
    def is_global(self) -> bool:
        """True when the longitudes close the circle and the latitudes reach within a step of both poles."""
        n_lon = self.shape[1]
        closes = abs(n_lon * self.resolution - 360.0) < 1e-6
        return (closes and self.lat_south <= -90.0 + self.resolution + _TOLERANCE
                and self.lat_north >= 90.0 - self.resolution - _TOLERANCE)

    def latitudes(self) -> np.ndarray:
        """(n_lat,) float64 degrees, south → north (north → south when ``descending``)."""
        lat = self.lat_south + self.resolution * np.arange(self.shape[0])
        return lat[::-1].copy() if self.descending else lat

    def longitudes(self) -> np.ndarray:
        """(n_lon,) float64 degrees, west → east, as given (not wrapped to [0, 360))."""
        return self.lon_west + self.resolution * np.arange(self.shape[1])

    def node_lat_lon(self) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude (num_nodes,) of every grid node, latitude-major."""
        lat, lon = self.latitudes(), self.longitudes()
        return np.repeat(lat, lon.size), np.tile(lon, lat.size)
