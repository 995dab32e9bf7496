"""Build a training dataset (zarr) from sources, as described by a :class:`DatasetConfig`.

Steps: open every source in the canonical layout and merge them; derive
``total_precipitation_6hr`` from hourly ``total_precipitation`` when asked; select variables,
levels, times (inclusive range, fixed step); regrid and/or crop; compute the forcings
(:mod:`vecfield.data.forcings`, never taken from the source); write zarr v2 with full spatial
chunks and time chunks of about ``STORE_CHUNK_BYTES`` (:func:`time_chunk`); compute the
normalization statistics over the training split from what was written; store them (groups
``statistics/*``) with the provenance (config, sources, time range, code version) in the root
attributes; consolidate the metadata.

Safety: the dataset is written to ``<output>.partial`` and renamed only when complete, so the
output path never holds a half-built dataset. Finished time blocks are recorded beside the partial
store, in ``<output>.partial.progress.json`` (outside it: zarr warns about any foreign file in a
store); running the same config again resumes after the last finished block. A partial store from
a different config is never mixed in: it is discarded and the build starts afresh (so following
the NaN error's advice, ``dataset.nan_fill=<number>``, just works).
"""

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dask.array
import numpy as np
import xarray as xr
import yaml
import zarr
from filelock import FileLock, Timeout

from vecfield._version import __version__
from vecfield.config.typed import to_dict
from vecfield.data.canonical import load_coordinates
from vecfield.data.catalogue import CATALOGUE, cf_attributes, unknown_name_error
from vecfield.data.checks import (
    check_geopotential_magnitude,
    check_no_nans,
    check_time_axis,
    nan_report,
    select_levels,
)
from vecfield.data.config import DatasetConfig
from vecfield.data.derived import total_precipitation_6hr, validate_tisr
from vecfield.data.forcings import FORCING_VARIABLES, compute_forcings
from vecfield.data.regrid import crop_area, regrid
from vecfield.data.sources import open_dataset
from vecfield.data.statistics import compute_statistics, write_statistics
from vecfield.files import publish, write_text_atomic

logger = logging.getLogger(__name__)
_TISR = "toa_incident_solar_radiation"
#: target size of one stored chunk of one variable (uncompressed). On a 0.25° grid one time step of
#: one level is already 4 MiB, so such stores keep one step per chunk, the layout of ARCO-ERA5 for
#: streaming windows; a 64×32 grid holds 64 steps per chunk instead of 1, which gives the
#: quickstart's store 51× fewer files and a 4.8× faster build (measured in docs/data.md)
STORE_CHUNK_BYTES = 2**20


def code_version() -> str:
    """The git commit of the vecfield checkout (``+dirty`` when modified), else the package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"vecfield {__version__}"
    return f"vecfield {__version__} ({commit}{'+dirty' if dirty else ''})"


def _config_hash(config: DatasetConfig) -> str:
    return hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:16]


def target_times(config: DatasetConfig) -> np.ndarray:
    """The datetime64[ns] times of the dataset: start, start + step, …, ≤ end."""
    start = np.datetime64(config.time.start, "ns")
    end = np.datetime64(config.time.end, "ns")
    if config.time.step_hours < 1:
        raise ValueError(f"time.step_hours must be ≥ 1, got {config.time.step_hours}")
    if end < start:
        raise ValueError(f"time.end {config.time.end} is before time.start {config.time.start}")
    return np.arange(start, end + np.timedelta64(1, "ns"), np.timedelta64(config.time.step_hours, "h"))


def _check_splits(config: DatasetConfig) -> None:
    start, end = np.datetime64(config.time.start, "ns"), np.datetime64(config.time.end, "ns")
    ranges = []
    for name in ("train", "val", "test"):
        split = getattr(config.splits, name)
        if split is None:
            continue
        lo, hi = np.datetime64(split[0], "ns"), np.datetime64(split[1], "ns")
        if not start <= lo <= hi <= end:
            raise ValueError(
                f"split {name} {list(split)} must lie inside the time range [{config.time.start}, "
                f"{config.time.end}] with start ≤ end"
            )
        ranges.append((lo, hi, name))
    ranges.sort()
    for (_, hi, a), (lo, _, b) in itertools.pairwise(ranges):
        if lo <= hi:
            raise ValueError(f"splits {a} and {b} overlap; give them disjoint time ranges")


def open_sources(config: DatasetConfig) -> xr.Dataset:
    """All sources of ``config`` opened in the canonical layout and merged (same grid required)."""
    parts = [
        open_dataset(s.path, s.kind, member=s.member, keep_members=s.keep_members) for s in config.sources
    ]
    for part in parts[1:]:
        for dim in ("latitude", "longitude"):
            if not np.array_equal(part[dim].values, parts[0][dim].values):
                raise ValueError(
                    f"sources {parts[0].attrs['source']} and {part.attrs['source']} are on different grids "
                    f"({dim} differs); open and regrid them separately first"
                )
    merged = xr.merge(parts, join="outer", compat="no_conflicts", combine_attrs="drop")
    merged.attrs["sources"] = [p.attrs["source"] for p in parts]
    return merged


def _select_time(ds: xr.Dataset, config: DatasetConfig, times: np.ndarray) -> xr.Dataset:
    """Time-dependent variables at ``times``, deriving total_precipitation_6hr when needed."""
    derive_tp = "total_precipitation_6hr" in config.variables and "total_precipitation_6hr" not in ds
    first = times[0] - (np.timedelta64(5, "h") if derive_tp else np.timedelta64(0, "h"))
    window = ds.sel(time=slice(first, times[-1]))
    if window.sizes["time"] == 0:
        available = f"{ds['time'].values[0]} … {ds['time'].values[-1]}"
        raise ValueError(f"no source time lies in [{first}, {times[-1]}]; the sources cover {available}")
    check_time_axis(window)
    if derive_tp:
        if window["time"].values[0] > first:
            raise ValueError(
                f"total_precipitation_6hr at {times[0]} needs hourly total_precipitation from {first}; "
                "start the time range 5 hours after the first source time"
            )
        window["total_precipitation_6hr"] = total_precipitation_6hr(window["total_precipitation"])
    missing = np.setdiff1d(times, window["time"].values)
    if missing.size:
        shown = [np.datetime_as_string(t, "m") for t in missing[:5]]
        raise ValueError(
            f"{missing.size} requested time(s) are not in the sources, e.g. {shown}; the source step is "
            f"{check_time_axis(window)}: choose a time.step_hours it divides, or another time range"
        )
    return window.sel(time=times)


def prepare(config: DatasetConfig) -> tuple[xr.Dataset, xr.Dataset]:
    """Lazy (dask) views of what will be written: (time-dependent state, static fields).

    State has dims (time, [level,] latitude, longitude) on the target grid in float32; static has
    (latitude, longitude), taken at the first time when the source stores them over time. A
    source's own TISR is checked against the computed one on the first 8 times (on the source
    grid) and then dropped.
    """
    _check_splits(config)
    for name in config.variables:
        if name in FORCING_VARIABLES:
            raise ValueError(
                f"{name!r} is a forcing, computed by vecfield: remove it from variables, set forcings: true"
            )
    ds = open_sources(config)
    derivable = {"total_precipitation_6hr"} if "total_precipitation" in ds else set()
    for name in config.variables:
        if name not in ds and name not in derivable:
            raise unknown_name_error(name, [*ds.data_vars, *derivable], "variable (not in the sources)")
    for name in config.static:
        if name not in ds:
            raise unknown_name_error(name, map(str, ds.data_vars), "static field (not in the sources)")
    times = target_times(config)
    state = _select_time(ds[[v for v in ds.data_vars if "time" in ds[v].dims]], config, times)
    if _TISR in state and config.forcings:
        validate_tisr(state[_TISR].isel(time=slice(0, 8)).load())
    state = state[list(config.variables)]
    if any("level" in state[v].dims for v in state.data_vars):
        state = select_levels(state, list(config.levels))
    check_geopotential_magnitude(state, f"the sources {[s.path for s in config.sources]}")
    static = ds[list(config.static)]
    static = static.sel(time=times[0], drop=True) if "time" in static.dims else static
    if config.nan_fill is not None:
        state, static = state.fillna(config.nan_fill), static.fillna(config.nan_fill)
    grid = config.grid
    if grid.resolution is not None:
        state = regrid(state, grid.resolution, grid.include_poles, grid.method)
        if static.data_vars:
            static = regrid(static, grid.resolution, grid.include_poles, grid.method)
    if grid.area is not None:
        state = crop_area(state, *grid.area)
        static = crop_area(static, *grid.area) if static.data_vars else static
    state = state[list(config.variables)].astype(np.float32)
    state = state.chunk({d: (1 if d == "time" else -1) for d in state.dims})
    state = load_coordinates(state)  # e.g. trajectory: written whole by the store's metadata pass
    return state.drop_encoding(), static.astype(np.float32).drop_encoding()


def time_chunk(state: xr.Dataset, time_block: int) -> int:
    """Time steps per stored chunk: the largest divisor of ``time_block`` (so every block's region
    write covers whole chunks) whose chunk of the largest variable stays within STORE_CHUNK_BYTES,
    and at least 1. ``state``'s dims are (time, [level,] latitude, longitude)."""
    step_bytes = max(v.dtype.itemsize * v.size // max(1, v.sizes["time"]) for v in state.data_vars.values())
    most = max(1, STORE_CHUNK_BYTES // max(1, step_bytes))
    return max(d for d in range(1, min(time_block, most) + 1) if time_block % d == 0)


def _check_output(output: Path) -> Path:
    """The temporary store path after checking that ``output`` is new and its folder writable."""
    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"cannot create the output folder {folder} ({error}); choose another dataset.output"
        ) from error
    try:  # a real write probe: os.access says yes to root even on read-only mounts
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"the output folder {folder} is not writable ({error.strerror}); choose another dataset.output"
        ) from error
    return _partial_path(output)


def _partial_path(output: Path) -> Path:
    """Where ``output`` is built before it is renamed into place."""
    return output.with_name(output.name + ".partial")


def _forcing_template(state: xr.Dataset, steps: int) -> xr.Dataset:
    """Lazy zeros shaped like the forcings, so the store's metadata can be written before the data;
    ``steps`` time steps per chunk."""
    sizes = {d: state.sizes[d] for d in ("time", "latitude", "longitude")}
    dims = {
        _TISR: ("time", "latitude", "longitude"),
        "year_progress_sin": ("time",),
        "year_progress_cos": ("time",),
        "day_progress_sin": ("time", "longitude"),
        "day_progress_cos": ("time", "longitude"),
    }
    return xr.Dataset(
        {
            name: (
                d,
                dask.array.zeros(
                    [sizes[x] for x in d], dtype=np.float32, chunks=[steps if x == "time" else -1 for x in d]
                ),
                {"units": CATALOGUE[name].units},
            )
            for name, d in dims.items()
        }
    )


def _progress_file(temp: Path) -> Path:
    """The record of finished blocks of the partial store ``temp``, kept beside it."""
    return temp.with_name(temp.name + ".progress.json")


def _initialize(
    temp: Path, state: xr.Dataset, static: xr.Dataset, config: DatasetConfig, digest: str
) -> None:
    steps = time_chunk(state, max(1, config.time_block))
    template = load_coordinates(state.chunk({"time": steps}))  # chunk() makes coordinates lazy again
    if config.forcings:
        template = template.merge(_forcing_template(state, steps))
    template = cf_attributes(template.merge(static))
    template.attrs = {"vecfield_config_hash": digest}
    template.to_zarr(temp, mode="w", compute=False, zarr_format=2, consolidated=False)
    write_text_atomic(_progress_file(temp), json.dumps({"config_hash": digest, "blocks_done": []}))


def _write_block(temp: Path, block: xr.Dataset, index: slice) -> None:
    region = block.drop_vars([c for c in block.coords if c != "time"] + ["time"])
    region.to_zarr(temp, region={"time": index}, zarr_format=2, consolidated=False)


def build_dataset(config: DatasetConfig, progress: bool = True, reuse: bool = False) -> Path:
    """Build ``config.output``; returns its path. Resumes a matching ``<output>.partial`` store.

    Builds of one output are serialized by the lock file ``<output>.lock`` (deleted once the output
    is in place): a second process waits for the first, then finds the output there. An existing
    output is returned when ``reuse`` (without checking that it matches ``config``), and an error
    otherwise.

    Raises ValueError before anything is renamed into place for: missing variables/levels/times,
    non-uniform or duplicated times, NaNs (unless ``nan_fill``), a TISR of another convention,
    an unwritable output folder, and an existing output (unless ``reuse``).
    """
    output = Path(config.output)

    def existing() -> Path | None:
        if not output.exists():
            return None
        if reuse:
            return output
        raise ValueError(f"{output} already exists; delete it or choose another dataset.output")

    if existing():
        return output
    state, static = prepare(config)  # every check of the config and sources; writes nothing
    temp = _check_output(output)
    lock_path = output.with_name(output.name + ".lock")
    lock = FileLock(lock_path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        logger.info("waiting for another process building %s …", output)
        lock.acquire()
    try:
        built = existing() or _build(config, output, temp, state, static.load(), progress)
        # The output is in place, so the lock has done its job: a process waiting on this lock file
        # finds the output once it gets the lock, and a later one finds it before locking. A failed
        # build keeps the lock file, which a retry of the same output locks again.
        with contextlib.suppress(OSError):
            lock_path.unlink()
        return built
    finally:
        lock.release()


def _build(config: DatasetConfig, output: Path, temp: Path, state: xr.Dataset, static: xr.Dataset,
           progress: bool) -> Path:
    """The body of ``build_dataset``, run under its lock: ``state`` and ``static`` from ``prepare``."""
    if static.data_vars:
        check_no_nans(static, "the static fields")
    digest = _config_hash(config)
    done: set[int] = set()
    if temp.exists():
        marker = _progress_file(temp)
        recorded = json.loads(marker.read_text()) if marker.is_file() else {}
        if recorded.get("config_hash") == digest:
            done = set(recorded["blocks_done"])
        else:  # e.g. dataset.nan_fill set after a build stopped at NaNs: its blocks do not apply
            logger.info("discarding the unfinished build in %s: it was made with another config", temp)
            discard_partial(config)
    if not done:
        _initialize(temp, state, static, config, digest)
    block = max(1, config.time_block)
    starts = range(0, state.sizes["time"], block)
    iterator: Iterable[int] = starts
    if progress:
        from tqdm import tqdm

        iterator = tqdm(starts, desc=f"writing {output.name}", unit="block")
    for number, start in enumerate(iterator):
        if number in done:
            continue
        index = slice(start, min(start + block, state.sizes["time"]))
        values = state.isel(time=index).load()
        report = nan_report(values)
        if report:
            name, (count, places) = next(iter(report.items()))
            raise ValueError(
                f"the sources contain NaNs: {name}: {count} in time block {number}, "
                f"e.g. {'; '.join(places)}. "
                f"Choose a time range without them or set an explicit fill (dataset.nan_fill=<number>; the "
                f"build then starts afresh); the unfinished build stays in {temp} and resumes from this "
                "block when rerun with the same config"
            )
        if config.forcings:
            times, lat, lon = values["time"].values, values["latitude"].values, values["longitude"].values
            values = values.merge(compute_forcings(times, lat, lon))
        _write_block(temp, values, index)
        done.add(number)
        record = {"config_hash": digest, "blocks_done": sorted(done)}
        write_text_atomic(_progress_file(temp), json.dumps(record))
    written = xr.open_zarr(temp, consolidated=False)
    logger.info("computing the normalization statistics over the train split …")
    write_statistics(temp, compute_statistics(written, config.splits.train))
    provenance: dict[str, Any] = {
        "vecfield_config_hash": digest,
        "config": yaml.safe_dump({"dataset": to_dict(config)}, sort_keys=False),
        "sources": [s.path for s in config.sources],
        "time_range": [np.datetime_as_string(state["time"].values[i], "m") for i in (0, -1)],
        "time_step_hours": config.time.step_hours,
        "splits": json.dumps(dataclasses.asdict(config.splits)),
        "state_variables": list(config.variables),
        "static_variables": list(config.static),
        "code_version": code_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    zarr.open_group(str(temp), mode="a", zarr_format=2).attrs.update(provenance)
    _progress_file(temp).unlink()
    zarr.consolidate_metadata(str(temp), zarr_format=2)
    return publish(temp, output)


def open_built_dataset(path: str | os.PathLike[str]) -> xr.Dataset:
    """The dataset that :func:`build_dataset` wrote at ``path`` (lazy); ValueError saying how to make
    it when it is absent, unfinished or unreadable."""
    path = Path(path)
    if not path.exists():
        unfinished = _partial_path(path)
        hint = f" (an unfinished build is in {unfinished}; run the build again to finish it)" \
            if unfinished.exists() else ""
        raise ValueError(
            f"the dataset {path} does not exist{hint}; build it first with "
            "python pipelines/build_dataset.py --config <this config>, or set dataset.output to a built one"
        )
    try:
        return xr.open_zarr(path)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"{path} is not a readable zarr dataset ({type(error).__name__}: {error}); "
            "build it again with pipelines/build_dataset.py"
        ) from None


def discard_partial(config: DatasetConfig) -> None:
    """Delete an unfinished ``<output>.partial`` store (to restart a build from scratch)."""
    temp = _partial_path(Path(config.output))
    if temp.exists():
        shutil.rmtree(temp)
    _progress_file(temp).unlink(missing_ok=True)
