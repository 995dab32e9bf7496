"""The variable catalogue: canonical (ARCO-ERA5 / WeatherBench2) names, aliases, units and roles.

Roles:
- ``state``: prognostic variables a forecaster takes as input and predicts;
- ``forcing``: known in advance for any time (computed by :mod:`vecfield.data.forcings`);
- ``static``: constant in time (land-sea mask, surface geopotential);
- ``accumulation``: raw hourly accumulations that derived state variables are built from.
"""

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import xarray as xr

Role = Literal["state", "forcing", "static", "accumulation"]


@dataclass(frozen=True)
class Variable:
    """One catalogue entry. ``pressure_level``: defined on pressure levels (has a ``level`` dim).
    ``long_name``: a readable name for plots and files; ``standard_name``: the CF standard name, or
    "" where CF has none."""

    name: str
    units: str
    role: Role
    pressure_level: bool
    aliases: tuple[str, ...] = ()
    description: str = ""
    long_name: str = ""
    standard_name: str = ""


def _var(name: str, units: str, role: Role, pressure_level: bool, aliases: tuple[str, ...], long_name: str,
         standard_name: str = "", description: str = "") -> Variable:
    return Variable(name, units, role, pressure_level, aliases, description, long_name, standard_name)


CATALOGUE: dict[str, Variable] = {
    v.name: v
    for v in (
        _var("geopotential", "m**2 s**-2", "state", True, ("z",), "geopotential", "geopotential",
             "geopotential Φ = g·height"),
        _var("temperature", "K", "state", True, ("t",), "temperature", "air_temperature"),
        _var("u_component_of_wind", "m s**-1", "state", True, ("u",), "u wind", "eastward_wind"),
        _var("v_component_of_wind", "m s**-1", "state", True, ("v",), "v wind", "northward_wind"),
        _var("specific_humidity", "kg kg**-1", "state", True, ("q",), "specific humidity",
             "specific_humidity"),
        _var("vertical_velocity", "Pa s**-1", "state", True, ("w",), "vertical velocity (ω)",
             "lagrangian_tendency_of_air_pressure"),
        _var("2m_temperature", "K", "state", False, ("t2m", "2t"), "2 m temperature", "air_temperature"),
        _var("10m_u_component_of_wind", "m s**-1", "state", False, ("u10", "10u"), "10 m u wind",
             "eastward_wind"),
        _var("10m_v_component_of_wind", "m s**-1", "state", False, ("v10", "10v"), "10 m v wind",
             "northward_wind"),
        _var("mean_sea_level_pressure", "Pa", "state", False, ("msl",), "mean sea level pressure",
             "air_pressure_at_mean_sea_level"),
        _var("surface_pressure", "Pa", "state", False, ("sp",), "surface pressure", "surface_air_pressure"),
        _var("sea_surface_temperature", "K", "state", False, ("sst",), "sea surface temperature",
             "sea_surface_temperature"),
        _var("total_column_water_vapour", "kg m**-2", "state", False, ("tcwv",), "total column water vapour",
             "atmosphere_mass_content_of_water_vapor"),
        _var("2m_dewpoint_temperature", "K", "state", False, ("d2m", "2d"), "2 m dewpoint temperature",
             "dew_point_temperature"),
        _var("total_precipitation_6hr", "m", "state", False, ("tp06",), "6-hour total precipitation",
             "lwe_thickness_of_precipitation_amount", "precipitation over the previous 6 h"),
        _var("total_precipitation", "m", "accumulation", False, ("tp",), "1-hour total precipitation",
             "lwe_thickness_of_precipitation_amount", "hourly accumulation (ERA5)"),
        _var("toa_incident_solar_radiation", "J m**-2", "forcing", False, ("tisr",),
             "TOA incident solar radiation, accumulated over 1 h", "",
             "1-h accumulation ending at t"),
        _var("year_progress_sin", "1", "forcing", False, (), "sine of the fraction of the year"),
        _var("year_progress_cos", "1", "forcing", False, (), "cosine of the fraction of the year"),
        _var("day_progress_sin", "1", "forcing", False, (), "sine of the local fraction of the day"),
        _var("day_progress_cos", "1", "forcing", False, (), "cosine of the local fraction of the day"),
        _var("land_sea_mask", "1", "static", False, ("lsm",), "land-sea mask (land fraction)",
             "land_area_fraction"),
        _var("geopotential_at_surface", "m**2 s**-2", "static", False, (), "surface geopotential",
             "surface_geopotential", "surface geopotential (orography·g)"),
    )
}

#: WeatherBench2's forecast layout: ``time`` is the initialization, these dims the lead and the member
LEAD_DIM = "prediction_timedelta"
ENSEMBLE_DIM = "realization"

# CF attributes of the coordinates (units of time coordinates are set by their encoding, see
# TIME_ENCODING). In a forecast (WeatherBench2 layout, with a lead dim) ``time`` is the initialization.
COORDINATES: dict[str, dict[str, str]] = {
    "latitude": {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude",
                 "axis": "Y"},
    "longitude": {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude",
                  "axis": "X"},
    "level": {"units": "hPa", "standard_name": "air_pressure", "long_name": "pressure level",
              "positive": "down", "axis": "Z"},
    "time": {"standard_name": "time", "long_name": "valid time", "axis": "T"},
    LEAD_DIM: {"standard_name": "forecast_period", "long_name": "lead time"},
    ENSEMBLE_DIM: {"units": "1", "standard_name": "realization", "long_name": "ensemble member"},
}
FORECAST_TIME = {"standard_name": "forecast_reference_time", "long_name": "initialization time"}
# CF time encodings: hours since an epoch on the proleptic Gregorian calendar; leads in hours
TIME_ENCODING = {"units": "hours since 1970-01-01 00:00:00", "calendar": "proleptic_gregorian",
                 "dtype": "int64"}
LEAD_ENCODING = {"units": "hours", "dtype": "int64"}


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def display_units(units: str) -> str:
    """Units for people: ``m**2 s**-2`` → ``m² s⁻²``, ``m s**-1`` → ``m s⁻¹``; "1" (dimensionless) → ""."""
    if units.strip() == "1":
        return ""
    parts = []
    for part in units.split():
        base, _, power = part.partition("**")
        parts.append(base + power.translate(_SUPERSCRIPTS))
    return " ".join(parts)


def variable_units(name: str, attrs: dict | None = None) -> str | None:
    """The units of ``name``: its ``units`` attribute when given, else the catalogue's, else None."""
    if attrs and attrs.get("units"):
        return str(attrs["units"])
    entry = CATALOGUE.get(ALIASES.get(name, name))
    return entry.units if entry is not None else None


def cf_attributes(dataset: xr.Dataset) -> xr.Dataset:
    """``dataset`` with ``units``, ``long_name`` and (where CF has one) ``standard_name`` on every
    catalogue variable and known coordinate, and CF encodings for ``time`` and
    ``prediction_timedelta`` (used when it is written to zarr or netCDF). Other attributes are kept.
    A dataset with ``prediction_timedelta`` is a forecast: its ``time`` is the forecast reference
    (initialization) time. Returns a shallow copy; the data are not touched.
    """
    out = dataset.copy()
    for name, variable in out.data_vars.items():
        entry = CATALOGUE.get(str(name))
        if entry is not None:
            attrs = {"units": entry.units, "long_name": entry.long_name or entry.name}
            if entry.standard_name:
                attrs["standard_name"] = entry.standard_name
            variable.attrs.update(attrs)
    forecast = LEAD_DIM in out.coords
    for name, attrs in COORDINATES.items():
        if name not in out.coords:
            continue
        coordinate = out[name]
        coordinate.attrs.update({**attrs, **(FORECAST_TIME if forecast and name == "time" else {})})
        if name == "time" and np.issubdtype(coordinate.dtype, np.datetime64):
            coordinate.encoding.update(TIME_ENCODING)
        if name == LEAD_DIM and np.issubdtype(coordinate.dtype, np.timedelta64):
            coordinate.encoding.update(LEAD_ENCODING)
    return out


# short name → canonical name; surface ``z`` is resolved to geopotential_at_surface by the opener
ALIASES: dict[str, str] = {alias: v.name for v in CATALOGUE.values() for alias in v.aliases}


def _normalize_units(units: str) -> str:
    text = units.strip().lower().replace(" ", "").replace("*", "").replace("^", "").replace(".", "")
    for slash, negative in (("/s2", "s-2"), ("/s", "s-1"), ("/kg", "kg-1"), ("/m2", "m-2")):
        text = text.replace(slash, negative)
    return {"kelvin": "k", "(0-1)": "1", "0-1": "1", "dimensionless": "1", "": "1", "fraction": "1"}.get(
        text, text
    )


def units_match(found: str, expected: str) -> bool:
    """True when two unit spellings agree (``m**2 s**-2`` = ``m2 s-2`` = ``m^2/s^2``)."""
    return _normalize_units(found) == _normalize_units(expected)


def check_units(name: str, units: str | None) -> None:
    """Raise ValueError when ``units`` (the file's attribute) contradict the catalogue for ``name``.

    Geopotential in m (geopotential *height*) is reported as such: multiply by g = 9.80665 m s⁻².
    A missing units attribute is accepted (nothing to check).
    """
    variable = CATALOGUE.get(name)
    if variable is None or units is None or units_match(units, variable.units):
        return
    if variable.units == "m**2 s**-2" and _normalize_units(units) in {"m", "gpm", "dam"}:
        raise ValueError(
            f"variable {name!r} has units {units!r}: that is geopotential height, not geopotential "
            f"({variable.units}); convert it first (Φ = 9.80665 m s**-2 × height in m) and set units "
            f"to {variable.units!r}"
        )
    raise ValueError(
        f"variable {name!r} has units {units!r} but the catalogue expects {variable.units!r}; "
        "convert the data (and its units attribute) before opening it"
    )


def unknown_name_error(name: str, available: Iterable[str], what: str = "variable") -> ValueError:
    """A ValueError for an unknown ``name``, naming the closest matches and the available list."""
    available = sorted(available)
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown {what} {name!r}{hint} Available: {available}")


def lookup(name: str) -> Variable:
    """The catalogue entry for ``name`` (canonical name or short alias)."""
    canonical = ALIASES.get(name, name)
    if canonical not in CATALOGUE:
        raise unknown_name_error(name, list(CATALOGUE) + list(ALIASES), "catalogue variable")
    return CATALOGUE[canonical]


def require_variables(requested: Sequence[str], available: Iterable[str]) -> None:
    """Raise ValueError for the first requested name absent from ``available`` (with close matches)."""
    available = list(available)
    for name in requested:
        if name not in available:
            raise unknown_name_error(name, available)
