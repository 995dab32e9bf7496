"""The ``dataset:`` section: which sources, variables, levels, times, grid and splits to build.

Times are ISO 8601 strings (``"2016-01-01"`` or ``"2016-01-01T18:00"``); ranges are inclusive at
both ends, like ``xarray``'s label slicing.
"""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SourceKind = Literal["auto", "zarr", "netcdf", "grib", "arco_era5", "weatherbench2", "default"]


@dataclass(frozen=True)
class SourceConfig:
    """One input store or file (or glob of files) opened into the canonical layout.

    kind: ``auto`` infers from the path (``.zarr`` → zarr, ``.nc`` → netcdf, ``.grib``/``.grb``
    → grib); ``arco_era5``/``weatherbench2`` are zarr stores with their own naming, read with
    anonymous credentials when on ``gs://``; ``default`` is the embedded Held–Suarez atmosphere
    (``vecfield.data.synthetic.default_dataset``), generated on first use and cached in the folder ``path``
    (empty: ``$VECFIELD_CACHE`` or ``~/.cache/vecfield``).
    member: the ensemble member (``number``) to select from an ensemble source; ``keep_members``
    keeps all of them as a ``realization`` dimension instead.
    """

    path: str
    kind: SourceKind = "auto"
    member: int | None = None
    keep_members: bool = False


def check_iso_time(value: str, key: str) -> None:
    """ValueError naming the config ``key`` unless ``value`` is an ISO 8601 time numpy can read."""
    try:
        np.datetime64(value, "ns")
    except ValueError as error:
        raise ValueError(
            f"{key}: {value!r} is not a valid ISO 8601 time ({error}); write e.g. '2016-01-31' or "
            "'2016-01-31T18'"
        ) from None


@dataclass(frozen=True)
class TimeConfig:
    """Inclusive time range and the step between kept states, in hours."""

    start: str
    end: str
    step_hours: int = 6

    def __post_init__(self) -> None:
        check_iso_time(self.start, "dataset.time.start")
        check_iso_time(self.end, "dataset.time.end")


@dataclass(frozen=True)
class SplitConfig:
    """Inclusive [start, end] time ranges of the train/val/test splits (ISO strings)."""

    train: tuple[str, str]
    val: tuple[str, str] | None = None
    test: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            for index, value in enumerate(getattr(self, name) or ()):
                check_iso_time(value, f"dataset.splits.{name}[{index}]")


@dataclass(frozen=True)
class GridConfig:
    """Target grid. ``resolution=None`` keeps the source grid.

    resolution: spacing in degrees of the regular target grid. include_poles: rows at ±90°
    (WB2 ``equiangular_with_poles``) or half a cell away from them (WB2 ``equiangular``).
    method: ``auto`` picks conservative when the spacing is an integer multiple of the source
    spacing, bilinear otherwise. area: ``[north, west, south, east]`` in degrees for a
    limited-area dataset (longitudes may cross 0°, e.g. ``[72, -25, 34, 45]``).
    """

    resolution: float | None = None
    include_poles: bool = False
    method: Literal["auto", "conservative", "bilinear"] = "auto"
    area: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class DatasetConfig:
    """What ``pipelines/build_dataset.py`` builds; stored with the dataset as provenance.

    variables: state variables in ARCO/WB2 long names (catalogue names); ``levels`` in hPa apply
    to the pressure-level ones. static: static fields copied when the source has them.
    forcings: add the computed forcings (TISR, day/year progress). nan_fill: ``None`` makes any
    NaN an error; a number fills NaNs with it (explicit opt-in). time_block: time steps written
    per region write (the unit of resume after an interruption).
    """

    output: str
    sources: tuple[SourceConfig, ...]
    variables: tuple[str, ...]
    time: TimeConfig
    splits: SplitConfig
    levels: tuple[int, ...] = ()
    static: tuple[str, ...] = ()
    forcings: bool = True
    grid: GridConfig = field(default_factory=GridConfig)
    nan_fill: float | None = None
    time_block: int = 64
