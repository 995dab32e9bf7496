"""Bring any ERA5-like xarray Dataset into the canonical layout.

The canonical layout (documented in docs/data.md):
- variables named as in ARCO-ERA5 / WeatherBench2 (``geopotential``, ``2m_temperature`` ...);
- dimensions ordered (time, level, latitude, longitude), with ``realization`` first when ensemble
  members are kept; latitude increasing (−90 → 90), longitude in [0, 360) increasing, level in
  hPa increasing, time = the **valid** time;
- units agreeing with the catalogue (geopotential in m² s⁻², never geopotential height in m).
"""

from collections.abc import Hashable

import numpy as np
import xarray as xr

from vecfield.data.catalogue import ALIASES, CATALOGUE, check_units
from vecfield.data.trajectories import TRAJECTORY_COORD

CANONICAL_DIMS = ("realization", "time", "level", "latitude", "longitude")
_COORD_ALIASES = {
    "lat": "latitude",
    "lon": "longitude",
    "pressure_level": "level",
    "isobaricInhPa": "level",
    "plev": "level",
}


def _use_valid_time(ds: xr.Dataset) -> xr.Dataset:
    """Make ``time`` the valid time (new-CDS netCDF: ``valid_time``; cfgrib: ``time`` + ``step``)."""
    if "valid_time" not in ds.variables:
        return ds
    if "valid_time" in ds.dims:  # new CDS netCDF: valid_time is the dimension
        return ds.drop_vars([v for v in ("time", "step") if v in ds.variables]).rename(valid_time="time")
    if "step" in ds.dims and ds.sizes["step"] > 1:
        raise ValueError(
            "this source holds forecasts with several lead times (a 'step' dimension); the data layer "
            "reads analyses/reanalyses: select one step first (select={'step': ...})"
        )
    if ds["valid_time"].dims in ((), ("time",)):  # cfgrib: time = reference time, valid = time + step
        ds = ds.assign_coords(time=ds["valid_time"].variable)
    return ds.drop_vars([v for v in ("valid_time", "step") if v in ds.variables])


def _merge_expver(ds: xr.Dataset) -> xr.Dataset:
    """Combine ERA5 (expver 1) and ERA5T (expver 5): prefer the final product where it exists."""
    if "expver" in ds.dims:
        order = sorted(ds["expver"].values.tolist(), key=lambda e: int(e))
        merged = ds.sel(expver=order[0], drop=True)
        for expver in order[1:]:
            merged = merged.combine_first(ds.sel(expver=expver, drop=True))
        return merged
    return ds.drop_vars("expver") if "expver" in ds.variables else ds


def _handle_members(ds: xr.Dataset, member: int | None, keep_members: bool) -> xr.Dataset:
    if "number" not in ds.variables:
        if member is not None:
            raise ValueError(f"member={member} was requested but the source has no ensemble ('number')")
        return ds
    if "number" not in ds.dims:  # scalar member id (e.g. 0 for the control / reanalysis)
        return ds.drop_vars("number")
    members = ds["number"].values.tolist()
    if keep_members:
        return ds.rename(number="realization")
    if member is not None:
        if member not in members:
            raise ValueError(f"member={member} is not in the source; its members are {members}")
        return ds.sel(number=member, drop=True)
    if len(members) == 1:
        return ds.isel(number=0, drop=True)
    raise ValueError(
        f"the source has {len(members)} ensemble members {members}; choose one with member=<id> "
        "or keep them all as a 'realization' dimension with keep_members=True"
    )


def _canonical_name(name: Hashable, var: xr.DataArray) -> Hashable:
    if name == "z" and "level" not in var.dims:
        return "geopotential_at_surface"
    return ALIASES.get(str(name), name)


def _fix_level(ds: xr.Dataset) -> xr.Dataset:
    if "level" not in ds.dims:
        return ds.drop_vars("level") if "level" in ds.variables else ds
    level = ds["level"]
    units = str(level.attrs.get("units", "hPa")).strip().lower()
    values = level.values.astype(np.float64)
    if units == "pa":
        values = values / 100.0
    elif units not in ("hpa", "mbar", "millibars", "millibar", "mb"):
        raise ValueError(f"pressure levels have units {level.attrs['units']!r}; expected hPa or Pa")
    if np.allclose(values, np.round(values)):
        values = np.round(values).astype(np.int64)
    ds = ds.assign_coords(level=("level", values, {"units": "hPa", "long_name": "pressure level"}))
    return ds.sortby("level")


def _fix_grid(ds: xr.Dataset) -> xr.Dataset:
    for dim in ("latitude", "longitude"):
        if dim not in ds.dims:
            raise ValueError(
                f"the source has no {dim!r} dimension (dims: {dict(ds.sizes)}); the data layer reads "
                "regular latitude-longitude grids"
            )
    lon = np.mod(ds["longitude"].values.astype(np.float64), 360.0)
    if np.unique(lon).size != lon.size:
        raise ValueError("longitudes repeat after wrapping to [0, 360) (e.g. both −180 and 180); drop one")
    ds = ds.assign_coords(
        latitude=("latitude", ds["latitude"].values.astype(np.float64), {"units": "degrees_north"}),
        longitude=("longitude", lon, {"units": "degrees_east"}),
    )
    return ds.sortby(["latitude", "longitude"])


def to_canonical(ds: xr.Dataset, member: int | None = None, keep_members: bool = False) -> xr.Dataset:
    """``ds`` in the canonical layout (see the module docstring); lazy arrays stay lazy.

    member / keep_members: how an ensemble ``number`` dimension is handled (select one member, or
    keep all as ``realization``); several members with neither is an error listing them.
    Raises ValueError for extra dimensions, unit mismatches and two source variables that map to
    the same canonical name.
    """
    ds = ds.rename({k: v for k, v in _COORD_ALIASES.items() if k in ds.variables and v not in ds.variables})
    ds = _use_valid_time(ds)
    if "time" in ds.coords and "time" not in ds.dims:  # a single-time file keeps its time as a dimension
        ds = ds.expand_dims("time")
    ds = _merge_expver(ds)
    ds = _handle_members(ds, member, keep_members)
    ds = _fix_level(_fix_grid(ds))
    renames: dict[Hashable, Hashable] = {}
    for name, var in ds.data_vars.items():
        target = _canonical_name(name, var)
        if target in renames.values() or (target != name and target in ds.data_vars):
            raise ValueError(f"two source variables map to {target!r}; drop one before opening")
        renames[name] = target
    ds = ds.rename({k: v for k, v in renames.items() if k != v})
    extra = [d for d in ds.dims if d not in CANONICAL_DIMS]
    if extra:
        raise ValueError(
            f"dimension(s) {extra} are not part of the canonical layout {CANONICAL_DIMS}; select a "
            f"value first, e.g. select={{{extra[0]!r}: {ds[extra[0]].values[0].item()!r}}}"
        )
    kept = (*CANONICAL_DIMS, TRAJECTORY_COORD)  # the runs of a multi-run dataset (data.trajectories)
    ds = ds.drop_vars([c for c in ds.coords if c not in kept])
    ds = load_coordinates(ds)
    for name in list(ds.data_vars):
        var = ds[name]
        check_units(str(name), var.attrs.get("units"))
        if name in CATALOGUE:
            var = var.assign_attrs(units=CATALOGUE[str(name)].units)
        ds[name] = var.transpose(*[d for d in CANONICAL_DIMS if d in var.dims])
    return ds


def load_coordinates(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its non-index coordinates (e.g. ``trajectory``) in memory: a zarr writer's metadata
    pass and a dask rechunk then take them whole, whatever chunks they were stored in."""
    extra = {name: coord.compute() for name, coord in ds.coords.items() if name not in ds.dims}
    return ds.assign_coords(extra)
