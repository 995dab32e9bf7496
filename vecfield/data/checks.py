"""Checks on canonical datasets that turn silent data problems into clear errors."""

import numpy as np
import xarray as xr

from vecfield.data.catalogue import check_units

#: standard gravity g₀ (m s⁻²): geopotential Φ = g₀ × geopotential height
STANDARD_GRAVITY = 9.80665


def check_time_axis(ds: xr.Dataset) -> np.timedelta64 | None:
    """The (uniform) time step of ``ds``; ValueError for duplicated, unsorted or irregular times.

    Returns None when ``ds`` has fewer than two times.
    """
    if "time" not in ds.dims:
        raise ValueError("the dataset has no 'time' dimension; it looks static")
    times = ds["time"].values
    if times.size < 2:
        return None
    unique, counts = np.unique(times, return_counts=True)
    if (counts > 1).any():
        dupes = [str(t) for t in unique[counts > 1][:5]]
        raise ValueError(
            f"duplicated time steps {dupes} ({int((counts > 1).sum())} in all); drop duplicates "
            "(e.g. ds.drop_duplicates('time')) or fix overlapping source files"
        )
    deltas = np.diff(times)
    if (deltas <= np.timedelta64(0)).any():
        raise ValueError("times are not increasing; sort the dataset by time (ds.sortby('time'))")
    expected = deltas[0]
    bad = np.nonzero(deltas != expected)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"non-uniform time steps: expected {expected.astype('timedelta64[m]')} but "
            f"{np.datetime_as_string(times[i], 'm')} → {np.datetime_as_string(times[i + 1], 'm')} is "
            f"{deltas[i].astype('timedelta64[m]')} ({bad.size} irregular gap(s)); "
            "fill the missing times (e.g. download the missing month) or choose a time range without gaps"
        )
    return expected


def nan_report(ds: xr.Dataset, max_places: int = 5) -> dict[str, tuple[int, list[str]]]:
    """Per variable with NaNs: (count, up to ``max_places`` descriptions of where they are).

    A place names the time (and level) that holds NaNs and how many grid points there are NaN.
    Computed with dask, reading each chunk once.
    """
    import dask

    counts = {name: var.isnull().sum() for name, var in ds.data_vars.items()}
    (counts,) = dask.compute(counts)
    report = {}
    for name, count in counts.items():
        total = int(count)
        if total == 0:
            continue
        var = ds[name]
        spatial = [d for d in ("latitude", "longitude") if d in var.dims]
        per_slice = var.isnull().sum(spatial).compute() if spatial else var.isnull().compute()
        places = []
        for index in np.argwhere(per_slice.values > 0)[:max_places]:
            where = {d: per_slice[d].values[i] for d, i in zip(per_slice.dims, index, strict=True)}
            text = ", ".join(
                f"{d}={np.datetime_as_string(v, 'h') if d == 'time' else v}" for d, v in where.items()
            )
            places.append(f"{text}: {int(per_slice.values[tuple(index)])} points")
        report[str(name)] = (total, places)
    return report


def check_no_nans(ds: xr.Dataset, source: str = "the dataset") -> None:
    """ValueError with the count and location of NaNs, if any."""
    report = nan_report(ds)
    if report:
        lines = [
            f"{name}: {count} NaNs, e.g. " + "; ".join(places) for name, (count, places) in report.items()
        ]
        raise ValueError(
            f"{source} contains NaNs:\n  " + "\n  ".join(lines) + "\nChoose a time range without "
            "them, or set an explicit fill value (dataset.nan_fill=<number>)"
        )


def select_levels(ds: xr.Dataset, levels: list[int]) -> xr.Dataset:
    """``ds`` restricted to pressure ``levels`` (hPa); ValueError listing the available levels."""
    if not levels:
        return ds
    if "level" not in ds.dims:
        raise ValueError(f"levels {levels} were requested but the dataset has no pressure levels")
    available = [int(v) for v in ds["level"].values]
    missing = [lev for lev in levels if lev not in available]
    if missing:
        raise ValueError(
            f"pressure level(s) {missing} hPa are not in the source; available levels: {available}"
        )
    return ds.sel(level=sorted(levels))


def standard_atmosphere_height(level_hpa: float) -> float:
    """Geopotential height (m) of the pressure level ``level_hpa`` in the ICAO standard atmosphere:
    h = T₀/L·(1 − (p/p₀)^(R·L/g₀)) below the tropopause (226.32 hPa), h = 11 km + R·T₁/g₀·ln(p₁/p)
    above it (T₀ 288.15 K, L 6.5 K/km, T₁ 216.65 K, R 287.053 J/(kg K)); 500 hPa → 5574 m."""
    if level_hpa >= 226.32:
        return 288.15 / 0.0065 * (1.0 - (level_hpa / 1013.25) ** (287.053 * 0.0065 / STANDARD_GRAVITY))
    return 11000.0 + 287.053 * 216.65 / STANDARD_GRAVITY * float(np.log(226.32 / level_hpa))


def check_geopotential_magnitude(ds: xr.Dataset, where: str) -> None:
    """ValueError when ``ds['geopotential']`` holds geopotential *heights* in metres.

    Units attributes are often absent, so the values are checked: the spatial mean of one field at
    the pressure level closest to 500 hPa (levels above 850 hPa only: near the surface heights are
    small and vary) is compared with g₀ × the standard-atmosphere height of that level (about
    5.5×10⁴ m² s⁻² at 500 hPa). A mean within a factor 2 of the bare height (about 5.5×10³) is an
    error giving the conversion. Reads one field; datasets without pressure-level geopotential
    pass.
    """
    if "geopotential" not in ds.data_vars or "level" not in ds["geopotential"].dims:
        return
    field = ds["geopotential"]
    levels = [value for value in field["level"].values if float(value) <= 850]
    if not levels:
        return
    chosen = min(levels, key=lambda value: abs(float(value) - 500.0))
    level = float(chosen)
    field = field.sel(level=chosen)
    field = field.isel({d: 0 for d in field.dims if d not in ("latitude", "longitude")})
    mean = float(field.mean())
    height = standard_atmosphere_height(level)
    if 0.5 < mean / height < 2.0:
        raise ValueError(
            f"{where}: geopotential at {level:g} hPa averages {mean:.4g}, close to the geopotential "
            f"height there (about {height:.0f} m) but not to the geopotential (about "
            f"{STANDARD_GRAVITY * height:.3g} m**2 s**-2): the values are heights in metres. Multiply "
            f"them by g = {STANDARD_GRAVITY} m s**-2 (ds['geopotential'] *= {STANDARD_GRAVITY}) and set "
            "units to 'm**2 s**-2'"
        )


def check_physical_units(ds: xr.Dataset, where: str) -> None:
    """ValueError when a catalogue variable of ``ds`` has a units attribute that contradicts the
    catalogue (:func:`vecfield.data.catalogue.check_units`, which gives the conversion) or holds
    geopotential heights in metres (:func:`check_geopotential_magnitude`, for data without units)."""
    for name, variable in ds.data_vars.items():
        try:
            check_units(str(name), variable.attrs.get("units"))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    check_geopotential_magnitude(ds, where)
