"""Fields derived from what a source holds: 6-hour precipitation, TISR check, structural features.

- ``total_precipitation_6hr`` from ERA5's hourly accumulations (each value is the precipitation of
  the hour *ending* at its time):

      tp6h(t) = Σ_{k=0}^{5} tp(t − k·1h)                                                      (1)

  so a 6-hourly state at t carries the rain of (t − 6h, t], as in GraphCast / WeatherBench2.
- TOA incident solar radiation is always computed (:mod:`vecfield.data.forcings`); a source's own
  ``toa_incident_solar_radiation`` is only used to validate the convention (J m⁻² over 1 h).
- Structural features of each grid node (GraphCast): sin φ (= cos of colatitude), cos λ, sin λ.
"""

import numpy as np
import xarray as xr

from vecfield.data.forcings import toa_incident_solar_radiation
from vecfield.geo import latitude_weights

ONE_HOUR = np.timedelta64(1, "h")


def total_precipitation_6hr(hourly: xr.DataArray) -> xr.DataArray:
    """Eq. (1) at every time of ``hourly`` (time, latitude, longitude), NaN for the first 5 hours.

    ``hourly`` must be hourly; lazy with dask.
    """
    steps = np.unique(np.diff(hourly["time"].values))
    if steps.size != 1 or steps[0] != ONE_HOUR:
        raise ValueError(
            "total_precipitation_6hr is summed from hourly total_precipitation, but the source's time "
            f"steps are {steps.astype('timedelta64[m]').tolist()}; use an hourly source (ARCO-ERA5, CDS)"
        )
    summed = hourly.rolling(time=6).sum()
    return summed.rename("total_precipitation_6hr").assign_attrs(
        units="m", long_name="total precipitation accumulated over the previous 6 h"
    )


def validate_tisr(source: xr.DataArray, tolerance: float = 0.02) -> None:
    """Raise when a source's TISR (time, latitude, longitude) disagrees with the computed one.

    Compares the area-weighted totals per time (:func:`vecfield.geo.latitude_weights`); a relative
    difference above ``tolerance`` means a different convention (W m⁻² instead of J m⁻², another
    accumulation period, a shift).
    """
    times = source["time"].values
    computed = toa_incident_solar_radiation(times, source["latitude"].values, source["longitude"].values)
    weights = latitude_weights(source["latitude"].values)[None, :, None]
    given = (np.asarray(source.values, dtype=np.float64) * weights).sum((1, 2))
    expected = (computed * weights).sum((1, 2))
    worst = np.max(np.abs(given - expected) / np.maximum(expected, 1e-12))
    if worst > tolerance:
        raise ValueError(
            f"the source's toa_incident_solar_radiation differs from the computed ERA5 convention (J m**-2 "
            f"accumulated over the hour ending at the valid time) by up to {worst:.1%}; check its units and "
            "accumulation period, or drop it: vecfield always computes TISR itself"
        )


def structural_features(latitude: np.ndarray, longitude: np.ndarray) -> dict[str, np.ndarray]:
    """(H, W) arrays sin φ, cos λ, sin λ for every grid node (degrees in)."""
    lat = np.deg2rad(np.asarray(latitude, dtype=np.float64))[:, None]
    lon = np.deg2rad(np.asarray(longitude, dtype=np.float64))[None, :]
    shape = (lat.size, lon.size)
    return {
        "sin_latitude": np.broadcast_to(np.sin(lat), shape).copy(),
        "cos_longitude": np.broadcast_to(np.cos(lon), shape).copy(),
        "sin_longitude": np.broadcast_to(np.sin(lon), shape).copy(),
    }
