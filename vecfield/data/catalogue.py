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

Role = Literal["state", "forcing", "static", "accumulation"]


@dataclass(frozen=True)
class Variable:
    """One catalogue entry. ``pressure_level``: defined on pressure levels (has a ``level`` dim)."""

    name: str
    units: str
    role: Role
    pressure_level: bool
    aliases: tuple[str, ...] = ()
    description: str = ""


CATALOGUE: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable("geopotential", "m**2 s**-2", "state", True, ("z",), "geopotential Φ = g·height"),
        Variable("temperature", "K", "state", True, ("t",)),
        Variable("u_component_of_wind", "m s**-1", "state", True, ("u",)),
        Variable("v_component_of_wind", "m s**-1", "state", True, ("v",)),
        Variable("specific_humidity", "kg kg**-1", "state", True, ("q",)),
        Variable("vertical_velocity", "Pa s**-1", "state", True, ("w",)),
        Variable("2m_temperature", "K", "state", False, ("t2m", "2t")),
        Variable("10m_u_component_of_wind", "m s**-1", "state", False, ("u10", "10u")),
        Variable("10m_v_component_of_wind", "m s**-1", "state", False, ("v10", "10v")),
        Variable("mean_sea_level_pressure", "Pa", "state", False, ("msl",)),
        Variable("surface_pressure", "Pa", "state", False, ("sp",)),
        Variable("sea_surface_temperature", "K", "state", False, ("sst",)),
        Variable("total_column_water_vapour", "kg m**-2", "state", False, ("tcwv",)),
        Variable("2m_dewpoint_temperature", "K", "state", False, ("d2m", "2d")),
        Variable(
            "total_precipitation_6hr", "m", "state", False, ("tp06",), "precipitation over the previous 6 h"
        ),
        Variable("total_precipitation", "m", "accumulation", False, ("tp",), "hourly accumulation (ERA5)"),
        Variable(
            "toa_incident_solar_radiation",
            "J m**-2",
            "forcing",
            False,
            ("tisr",),
            "1-h accumulation ending at t",
        ),
        Variable("year_progress_sin", "1", "forcing", False),
        Variable("year_progress_cos", "1", "forcing", False),
        Variable("day_progress_sin", "1", "forcing", False),
        Variable("day_progress_cos", "1", "forcing", False),
        Variable("land_sea_mask", "1", "static", False, ("lsm",)),
        Variable(
            "geopotential_at_surface", "m**2 s**-2", "static", False, (), "surface geopotential (orography·g)"
        ),
    )
}

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
