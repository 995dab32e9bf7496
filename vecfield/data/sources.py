"""Open any supported source into the canonical layout with one call.

Source kinds (``SOURCE_OPENERS``; adding a kind is one function and one dictionary entry):
- ``zarr``: a zarr store (v2 or v3), local path or fsspec URL (``file://``, ``gs://``, ``memory://``);
- ``netcdf``: one netCDF file or a glob of them (netCDF4 engine);
- ``grib``: one GRIB file or a glob (cfgrib, optional extra ``vecfield[grib]``); no index file is
  ever written;
- ``arco_era5``: the ARCO-ERA5 zarr (``gs://gcp-public-data-arco-era5/ar/...``), trimmed to its
  valid times;
- ``weatherbench2``: a WeatherBench2 ERA5 zarr (``gs://weatherbench2/datasets/era5/...``);
- ``default``: the embedded Held–Suarez atmosphere, cached in the folder ``path`` ("" for the default
  cache folder), generated on first use.

Cloud stores on ``gs://`` are read anonymously through gcsfs (optional extra ``vecfield[cloud]``).
Nothing is ever written next to a source.
"""

import glob
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr

from vecfield.data.canonical import to_canonical
from vecfield.data.catalogue import require_variables

ARCO_ERA5_STORE = "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3"
WEATHERBENCH2_STORES = {
    "64x32": "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr",
    "240x121": "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-240x121_equiangular_with_poles_conservative.zarr",
    "1440x721": "gs://weatherbench2/datasets/era5/1959-2023_01_10-wb13-6h-1440x721_with_derived_variables.zarr",
}


def _storage_options(path: str) -> dict[str, Any]:
    if path.startswith(("gs://", "gcs://")):
        try:
            import gcsfs  # noqa: F401
        except ImportError as error:
            raise ValueError(
                f"reading {path} needs gcsfs: pip install 'vecfield[cloud]' (or pip install gcsfs)"
            ) from error
        return {"token": "anon"}
    return {}


def _open_zarr(path: str) -> xr.Dataset:
    is_url = "://" in path
    if not is_url and not Path(path).exists():
        raise ValueError(f"zarr store {path} does not exist; check the path")
    try:
        return xr.open_zarr(path, storage_options=_storage_options(path) if is_url else None, chunks={})
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"cannot open zarr store {path}: {error}; is it a complete zarr store (v2 or v3)?"
        ) from error


def _expand(path: str) -> list[str]:
    """The files named by ``path`` (a file or a glob pattern), sorted."""
    files = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
    if not files:
        raise ValueError(f"no file matches {path}")
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise ValueError(f"file {missing[0]} does not exist; check the path")
    return files


def _verify_classic_netcdf(file: str) -> None:
    """Raise when a classic-format (CDF-1/2) netCDF file is shorter than its header says.

    The netCDF-C library reads missing bytes of a truncated classic file as zeros without an
    error; scipy's reader checks every variable's extent against the file size.
    """
    with open(file, "rb") as stream:
        if stream.read(3) != b"CDF":
            return
    from scipy.io import netcdf_file

    with netcdf_file(file, mmap=True) as reader:
        for variable in reader.variables.values():
            variable.data.shape  # noqa: B018 (the extent check happens when the array is mapped)


def verify_grib_file(file: str | os.PathLike[str]) -> int:
    """The number of GRIB messages in ``file``; ValueError when it is truncated or corrupt.

    cfgrib opens a GRIB file cut short without an error: the missing messages become NaN fields.
    Every message starts with ``GRIB``, states its total length in section 0 (3 bytes at offset 4 in
    edition 1, 8 bytes at offset 8 in edition 2) and ends with ``7777``; between messages only zero
    padding may follow. Reads 16 bytes per message (and the padding), not the data.
    """
    size = os.path.getsize(file)
    count, offset = 0, 0
    with open(file, "rb") as stream:
        while offset < size:
            stream.seek(offset)
            head = stream.read(16)
            if head[:4] != b"GRIB":
                padding = _zero_run(stream, offset)
                if padding == 0:
                    raise ValueError(f"{file} is truncated or corrupt (no GRIB message at byte {offset}): "
                                     "download it again")
                offset += padding
                continue
            edition = head[7]
            length = int.from_bytes(head[4:7] if edition == 1 else head[8:16], "big")
            if edition == 1 and length & 0x800000:  # ECMWF's large-GRIB-1 length: not checked
                following = _next_grib(stream, offset + 4)
                offset, count = (following if following is not None else size), count + 1
                continue
            if offset + length > size:
                raise ValueError(
                    f"{file} is truncated or corrupt: its GRIB message {count + 1} (at byte {offset}) needs "
                    f"{length} bytes but the file ends after {size - offset}; download it again"
                )
            stream.seek(offset + length - 4)
            if stream.read(4) != b"7777":
                raise ValueError(f"{file} is truncated or corrupt: GRIB message {count + 1} (at byte "
                                 f"{offset}) lacks its end marker 7777; download it again")
            count, offset = count + 1, offset + length
    if count == 0:
        raise ValueError(f"{file} holds no GRIB message: it is truncated or corrupt, download it again")
    return count


def check_grib_complete(file: str | os.PathLike[str], ds: xr.Dataset) -> None:
    """ValueError unless the GRIB ``file`` is intact (:func:`verify_grib_file`) and holds exactly one
    message for every 2-D field of ``ds``, the dataset cfgrib opened from it. A file cut between two
    messages is intact message by message, but cfgrib fills the fields it lacks with NaN, or skips
    (with a log line only) a variable whose messages no longer form one hypercube."""
    count = verify_grib_file(file)
    fields = sum(
        int(np.prod([variable.sizes[d] for d in variable.dims if d not in ("latitude", "longitude")]))
        for variable in ds.data_vars.values()
    )
    if count < fields:
        raise ValueError(
            f"{file} is truncated or corrupt: it holds {count} GRIB messages but its variables need {fields} "
            "fields (the missing ones would read as NaN); download it again"
        )
    if count > fields:
        raise ValueError(
            f"{file} is truncated or corrupt: {count - fields} of its {count} GRIB messages were not read "
            "(cfgrib skips a variable whose messages do not form a full hypercube); download it again. "
            "If the file is whole but mixes level types, split it with grib_copy and open each part"
        )


def _zero_run(stream: Any, start: int) -> int:
    """The number of zero bytes (padding between GRIB messages) from ``start`` in ``stream``."""
    stream.seek(start)
    run = 0
    while chunk := stream.read(1 << 16):
        kept = chunk.lstrip(b"\0")
        run += len(chunk) - len(kept)
        if kept:
            break
    return run


def _next_grib(stream: Any, start: int) -> int | None:
    """The offset of the next ``GRIB`` at or after ``start`` in the binary ``stream``, or None."""
    stream.seek(start)
    position, tail = start, b""
    while chunk := stream.read(1 << 20):
        found = (tail + chunk).find(b"GRIB")
        if found >= 0:
            return position - len(tail) + found
        position, tail = position + len(chunk), chunk[-3:]
    return None


def _open_files(path: str, engine: str, backend_kwargs: dict[str, Any] | None = None) -> xr.Dataset:
    parts = []
    for file in _expand(path):
        try:
            if engine == "netcdf4":
                _verify_classic_netcdf(file)
            ds = xr.open_dataset(file, engine=engine, chunks={}, backend_kwargs=backend_kwargs)
            # read one value of each variable: a truncated file fails here, not mid-build
            for var in ds.data_vars.values():
                var.isel({d: slice(-1, None) for d in var.dims}).load()
        except Exception as error:  # any reader failure means this file is unusable
            if type(error).__name__ == "DatasetBuildError":  # cfgrib: several hypercubes in one file
                raise ValueError(
                    f"{file} mixes GRIB messages that do not form one dataset (e.g. surface and pressure "
                    f"levels: {error}); split it into one file per level type (grib_copy) and open each"
                ) from error
            raise ValueError(
                f"cannot read {file} with the {engine} engine ({type(error).__name__}: {error}); the file "
                "is corrupt or truncated: download it again"
            ) from error
        if engine == "cfgrib":
            check_grib_complete(file, ds)
        parts.append(ds)
    if len(parts) == 1:
        return parts[0]
    # cast: combine_by_coords returns a Dataset when its inputs are Datasets (a DataArray only for DataArrays)
    return cast(xr.Dataset, xr.combine_by_coords(parts, combine_attrs="drop_conflicts"))


def _open_netcdf(path: str) -> xr.Dataset:
    return _open_files(path, "netcdf4")


def _open_grib(path: str) -> xr.Dataset:
    try:
        import cfgrib  # noqa: F401
    except ImportError as error:
        raise ValueError("reading GRIB needs cfgrib and eccodes: pip install 'vecfield[grib]'") from error
    # indexpath="" keeps cfgrib from writing a .idx file beside the (possibly read-only) source
    return _open_files(path, "cfgrib", {"indexpath": ""})


def _open_arco_era5(path: str) -> xr.Dataset:
    ds = _open_zarr(path)
    start, stop = ds.attrs.get("valid_time_start"), ds.attrs.get("valid_time_stop")
    if start is None or stop is None:
        raise ValueError(
            f"{path} lacks the ARCO-ERA5 attributes valid_time_start/valid_time_stop; open it as kind='zarr'"
        )
    return ds.sel(time=slice(start, stop))


def _open_default(path: str) -> xr.Dataset:
    from vecfield.data.synthetic.default_dataset import load_default_dataset

    return load_default_dataset(path or None)


SOURCE_OPENERS: dict[str, Callable[[str], xr.Dataset]] = {
    "zarr": _open_zarr,
    "netcdf": _open_netcdf,
    "grib": _open_grib,
    "arco_era5": _open_arco_era5,
    "weatherbench2": _open_zarr,
    "default": _open_default,
}


def infer_kind(path: str) -> str:
    """The source kind for ``path`` from its location and suffix."""
    if path.startswith("gs://gcp-public-data-arco-era5/"):
        return "arco_era5"
    if path.startswith("gs://weatherbench2/"):
        return "weatherbench2"
    suffix = path.rstrip("/").rsplit(".", 1)[-1].lower()
    if suffix.startswith("zarr"):
        return "zarr"
    if suffix in ("nc", "nc4", "netcdf"):
        return "netcdf"
    if suffix in ("grib", "grb", "grib2", "grb2"):
        return "grib"
    raise ValueError(
        f"cannot tell the kind of source {path!r} from its name; pass kind= one of {sorted(SOURCE_OPENERS)}"
    )


def open_dataset(
    path: str | Path,
    kind: str = "auto",
    variables: Sequence[str] | None = None,
    member: int | None = None,
    keep_members: bool = False,
    select: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Open ``path`` lazily (dask) into the canonical layout (see :mod:`vecfield.data.canonical`).

    kind: a key of ``SOURCE_OPENERS`` or ``auto``. variables: canonical names to keep (unknown
    names are errors with close matches and the available list). select: label selection applied
    to the raw source before canonicalizing (e.g. ``{"month": 1}`` for a climatology file).
    """
    path = str(path)
    if kind == "auto":
        kind = infer_kind(path)
    if kind not in SOURCE_OPENERS:
        raise ValueError(f"unknown source kind {kind!r}; choose one of {sorted(SOURCE_OPENERS)} or 'auto'")
    raw = SOURCE_OPENERS[kind](path)
    if select:
        unknown = [k for k in select if k not in raw.variables]
        if unknown:
            raise ValueError(
                f"select keys {unknown} are not in {path}; its coordinates are {sorted(map(str, raw.coords))}"
            )
        raw = raw.sel(dict(select), drop=True)
    ds = to_canonical(raw, member=member, keep_members=keep_members)
    ds.attrs["source"] = path
    if variables is not None:
        require_variables(list(variables), [str(v) for v in ds.data_vars])
        ds = ds[list(variables)]
    return ds
