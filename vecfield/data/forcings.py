"""Forcings computed from astronomy and the calendar, never downloaded.

- ``toa_incident_solar_radiation``: ERA5's ``tisr`` convention, the incoming solar energy at the
  top of the atmosphere **accumulated over the hour ending at the valid time**, in J m⁻²:

      TISR(t) = ∫_{t−1h}^{t} S₀ · (r₀/r(τ))² · max(cos θ_z(τ), 0) dτ          (1)

  with the solar constant S₀ = 1361 W m⁻², the Earth–Sun distance r in AU and the solar zenith
  angle θ_z from the low-precision solar coordinates of the Astronomical Almanac (accurate to
  ~0.01° in declination between 1950 and 2050). The integral uses the midpoint rule on 5-minute
  sub-steps by default.
- Progress features (as in GraphCast): year progress p_y = mod(s / (86400·365.24219), 1) with
  s the seconds since 1970-01-01, and *local* day progress p_d = mod(s_day/86400 + λ/360°, 1);
  each enters as (sin 2πp, cos 2πp).
"""

import numpy as np
import xarray as xr

SOLAR_CONSTANT = 1361.0  # W m⁻²
_J2000 = np.datetime64("2000-01-01T12:00:00", "ns")
_UNIX_EPOCH = np.datetime64("1970-01-01T00:00:00", "ns")
_SECONDS_PER_DAY = 86_400.0
_DAYS_PER_YEAR = 365.24219
ONE_HOUR = np.timedelta64(1, "h")

FORCING_VARIABLES = (
    "toa_incident_solar_radiation",
    "year_progress_sin",
    "year_progress_cos",
    "day_progress_sin",
    "day_progress_cos",
)


def _as_datetime64(time: np.ndarray) -> np.ndarray:
    time = np.asarray(time)
    if not np.issubdtype(time.dtype, np.datetime64):
        raise TypeError(f"times must be numpy datetime64 values, got dtype {time.dtype}")
    return time.astype("datetime64[ns]")


def solar_position(time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solar declination δ (rad), Greenwich hour angle of the Sun (rad) and distance r (AU).

    time: datetime64 array of any shape; outputs have the same shape. Uses the Astronomical
    Almanac's low-precision formulas with n = days since J2000.0.
    """
    n = (_as_datetime64(time) - _J2000) / np.timedelta64(1, "D")
    mean_longitude = np.deg2rad((280.460 + 0.9856474 * n) % 360.0)
    mean_anomaly = np.deg2rad((357.528 + 0.9856003 * n) % 360.0)
    ecliptic_longitude = (
        mean_longitude
        + np.deg2rad(1.915) * np.sin(mean_anomaly)
        + np.deg2rad(0.020) * np.sin(2 * mean_anomaly)
    )
    obliquity = np.deg2rad(23.439 - 4.0e-7 * n)
    declination = np.arcsin(np.sin(obliquity) * np.sin(ecliptic_longitude))
    right_ascension = np.arctan2(np.cos(obliquity) * np.sin(ecliptic_longitude), np.cos(ecliptic_longitude))
    sidereal_hours = 18.697374558 + 24.06570982441908 * n  # Greenwich mean sidereal time
    greenwich_hour_angle = np.deg2rad((sidereal_hours % 24.0) * 15.0) - right_ascension
    distance = 1.00014 - 0.01671 * np.cos(mean_anomaly) - 0.00014 * np.cos(2 * mean_anomaly)
    return declination, greenwich_hour_angle, distance


def instantaneous_solar_flux(time: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """TOA flux S₀ (r₀/r)² max(cos θ_z, 0) in W m⁻², shape (time, lat, lon).

    cos θ_z = sin φ sin δ + cos φ cos δ cos(h_G + λ), with h_G the Greenwich hour angle.
    """
    declination, hour_angle, distance = solar_position(np.atleast_1d(time))
    lat = np.deg2rad(np.asarray(latitude, dtype=np.float64))[None, :, None]
    lon = np.deg2rad(np.asarray(longitude, dtype=np.float64))[None, None, :]
    dec, gha = declination[:, None, None], hour_angle[:, None, None]
    cos_zenith = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(gha + lon)
    return SOLAR_CONSTANT / distance[:, None, None] ** 2 * np.maximum(cos_zenith, 0.0)


def toa_incident_solar_radiation(
    time: np.ndarray,
    latitude: np.ndarray,
    longitude: np.ndarray,
    accumulation: np.timedelta64 = ONE_HOUR,
    substeps: int = 12,
) -> np.ndarray:
    """Eq. (1): solar energy accumulated over ``accumulation`` ending at each time, J m⁻².

    time: (T,) datetime64; latitude: (H,) degrees; longitude: (W,) degrees → (T, H, W) float64.
    """
    if substeps < 1:
        raise ValueError(f"substeps must be ≥ 1, got {substeps}")
    time = _as_datetime64(np.atleast_1d(time))
    seconds = accumulation / np.timedelta64(1, "s")
    if seconds <= 0:
        raise ValueError(f"accumulation must be a positive duration, got {accumulation}")
    # midpoints of the sub-intervals of (t − accumulation, t]
    offsets = ((np.arange(substeps) + 0.5) / substeps - 1.0) * seconds
    energy = np.zeros((time.size, np.size(latitude), np.size(longitude)))
    for offset in offsets:
        shifted = time + np.round(offset * 1e9).astype("timedelta64[ns]")
        energy += instantaneous_solar_flux(shifted, latitude, longitude)
    return energy * (seconds / substeps)


def year_progress(time: np.ndarray) -> np.ndarray:
    """Fraction of the tropical year elapsed since 1970-01-01, in [0, 1); same shape as time."""
    days = (_as_datetime64(time) - _UNIX_EPOCH) / np.timedelta64(1, "D")
    return np.mod(days / _DAYS_PER_YEAR, 1.0)


def day_progress(time: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Local fraction of the solar day, (time, lon): mod(UTC seconds of day / 86400 + λ/360, 1)."""
    time = _as_datetime64(np.atleast_1d(time))
    seconds_of_day = (time - time.astype("datetime64[D]")) / np.timedelta64(1, "s")
    return np.mod(seconds_of_day[:, None] / _SECONDS_PER_DAY + np.asarray(longitude)[None, :] / 360.0, 1.0)


def compute_forcings(time: np.ndarray, latitude: np.ndarray, longitude: np.ndarray) -> xr.Dataset:
    """All forcing variables on a (time, latitude, longitude) grid, float32.

    Returns ``toa_incident_solar_radiation`` (time, latitude, longitude) in J m⁻²,
    ``year_progress_sin/cos`` (time) and ``day_progress_sin/cos`` (time, longitude).
    """
    time = _as_datetime64(np.atleast_1d(time))
    latitude = np.asarray(latitude, dtype=np.float64)
    longitude = np.asarray(longitude, dtype=np.float64)
    coords = {"time": time, "latitude": latitude, "longitude": longitude}
    year = 2 * np.pi * year_progress(time)
    day = 2 * np.pi * day_progress(time, longitude)
    tisr = toa_incident_solar_radiation(time, latitude, longitude)
    return xr.Dataset(
        {
            "toa_incident_solar_radiation": (
                ("time", "latitude", "longitude"),
                tisr.astype(np.float32),
                {"units": "J m**-2", "long_name": "TOA incident solar radiation, accumulated over 1 h"},
            ),
            "year_progress_sin": ("time", np.sin(year).astype(np.float32)),
            "year_progress_cos": ("time", np.cos(year).astype(np.float32)),
            "day_progress_sin": (("time", "longitude"), np.sin(day).astype(np.float32)),
            "day_progress_cos": (("time", "longitude"), np.cos(day).astype(np.float32)),
        },
        coords=coords,
    )


def add_forcings(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` (canonical layout: time, latitude, longitude coordinates) with the forcing variables added.

    Existing forcing variables are replaced by the computed ones, so a downloaded ``tisr`` never
    disagrees with what the forecaster computes at inference time.
    """
    missing = [c for c in ("time", "latitude", "longitude") if c not in ds.coords]
    if missing:
        raise ValueError(
            f"cannot compute forcings: coordinates {missing} are missing; open the data with "
            "vecfield.data so it is in the canonical (time, level, latitude, longitude) layout"
        )
    forcings = compute_forcings(ds["time"].values, ds["latitude"].values, ds["longitude"].values)
    return ds.drop_vars([v for v in FORCING_VARIABLES if v in ds]).merge(forcings)
