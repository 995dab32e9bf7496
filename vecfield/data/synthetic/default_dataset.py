"""The embedded default dataset: a Held–Suarez atmosphere with seasons, days and mountains, in the
canonical layout.

The model is :mod:`vecfield.data.synthetic.held_suarez` (dinosaur-torch's primitive equations,
T21, 12 σ levels, Held & Suarez's forcing plus a seasonal cycle, a diurnal cycle and seeded
continents with mountains). Its fields are reported every ``output_hours`` on WeatherBench2's
64 × 32 equiangular grid without poles (exact spectral synthesis at those latitudes, then linear
interpolation in ln p to the pressure levels): geopotential, temperature and the wind components
at ``levels_hpa``, with the static ``land_sea_mask`` and ``geopotential_at_surface``.

**Independent trajectories.** One continuous three-year run costs ~10 minutes on a CPU thread (the
per-step cost is mostly fixed overhead at T21), so the calendar is cut into ``segments`` consecutive
spans, integrated ``RUNS_PER_BATCH`` at a time as one batch (a batch of four costs about twice one
run) and the batches in parallel processes. Each span starts ``segment_spinup_days`` before its
first output from the model's own monthly zonal-mean climate (shipped in
``held_suarez_climate.npz``, made by ``pipelines/spin_up_default_atmosphere.py``) plus seeded eddy
noise. The spans are independent weather, so the dataset carries a ``trajectory`` coordinate along
``time`` (the span's index); training windows, initializations and time-difference statistics never
cross a change of it.
"""

import dataclasses
import hashlib
import json
import logging
import math
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from dinosaur_torch.primitive_equations import State
from tqdm.auto import tqdm

from vecfield._version import __version__
from vecfield.data.synthetic.held_suarez import (
    HeldSuarezAtmosphere,
    HeldSuarezParameters,
    U,
    model_grid,
    output_grid,
    rest_zonal_mean,
    spherical_harmonic,
    state_from_zonal_mean,
    zonal_mean_coefficients,
)
from vecfield.data.trajectories import TRAJECTORY_COORD
from vecfield.files import atomic_path

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "2"  # bump when the generated values change for the same config
WB2_LATITUDES = np.linspace(-87.1875, 87.1875, 32)  # WeatherBench2 64×32 equiangular, no poles
WB2_NLON = 64
RUNS_PER_BATCH = 4  # runs integrated together (fixed, so that the values do not depend on the machine)
CLIMATE_FILE = Path(__file__).with_name("held_suarez_climate.npz")
_SECONDS_PER_DAY = 86_400.0
_GRAVITY = 9.80616  # dinosaur-torch's value, m s⁻²


@dataclass(frozen=True)
class DefaultDatasetConfig:
    """Everything that determines the generated values (hashed into the cache key).

    ``years`` of ``output_hours``-spaced states from ``start``, cut into ``segments`` independent
    spans, each spun up for ``segment_spinup_days``. Continents cover ``land_fraction`` of the
    sphere; mountains reach ``mountain_height_m``.
    """

    years: float = 3.0
    seed: int = 0
    start: str = "2000-01-01"
    segments: int = 8
    segment_spinup_days: float = 15.0
    output_hours: int = 6
    levels_hpa: tuple[int, ...] = (500, 850)
    land_fraction: float = 0.3
    mountain_height_m: float = 1500.0
    atmosphere: HeldSuarezParameters = field(default_factory=HeldSuarezParameters)

    def __post_init__(self) -> None:
        for name in ("years", "output_hours", "segments"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.segment_spinup_days > 0:
            raise ValueError(f"segment_spinup_days must be positive, got {self.segment_spinup_days}")
        steps = self.output_hours * 60 / self.atmosphere.time_step_minutes
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(
                f"output_hours={self.output_hours} is not a whole number of time steps of "
                f"{self.atmosphere.time_step_minutes} min; choose a time step that divides it"
            )
        if not 0.0 < self.land_fraction < 1.0:
            raise ValueError(f"land_fraction must lie in (0, 1), got {self.land_fraction}")
        if list(self.levels_hpa) != sorted(set(self.levels_hpa)) or min(self.levels_hpa) < 50:
            raise ValueError(
                f"levels_hpa={self.levels_hpa} must be increasing pressures ≥ 50 hPa, e.g. (500, 850)"
            )
        np.datetime64(self.start)  # raises ValueError on a malformed date

    def cache_key(self) -> str:
        """A hash of the configuration and the generator version: the cache file name."""
        payload = json.dumps(
            {"config": dataclasses.asdict(self), "version": GENERATOR_VERSION}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def n_outputs(self) -> int:
        """Number of output times."""
        return round(self.years * 365.25 * 24 / self.output_hours)


@dataclass(frozen=True)
class Geography:
    """Seeded continents and mountains as modal fields (dinosaur-torch's (m, l) layout)."""

    land_modal: torch.Tensor  # a smooth field whose grid values, clipped to [0, 1], give ℓ
    height_modal: torch.Tensor  # surface height, m

    def land_sea_mask(self, grid: spherical_harmonic.Grid) -> np.ndarray:
        """ℓ ∈ [0, 1] on ``grid``, (longitude, latitude)."""
        return np.clip(grid.to_nodal(self.land_modal).numpy(), 0.0, 1.0)

    def height(self, grid: spherical_harmonic.Grid) -> np.ndarray:
        """Surface height (m) on ``grid``, (longitude, latitude)."""
        return grid.to_nodal(self.height_modal).numpy()


def make_geography(config: DefaultDatasetConfig, grid: spherical_harmonic.Grid) -> Geography:
    """Continents from a seeded random field F of total wavenumbers 1–6: land where F > F_q.

    F_q is the (1 − land_fraction) quantile of F's area-weighted distribution; ℓ = clip((F −
    F_q)/w + ½, 0, 1) with a coastal width w = 0.1 std F; mountains h = H ((F − F_q)⁺/max)^1.5. Both
    are truncated with the spectral taper exp(−4 (l(l+1)/(L(L+1)))²), which keeps Gibbs ripples small.
    """
    rng = np.random.default_rng([config.seed, 1])
    total = np.broadcast_to(np.asarray(grid.sh.modal_axes[1])[None, :], grid.modal_shape)
    large_scale = (total >= 1) & (total <= 6) & grid.sh.mask
    coefficients = rng.standard_normal(grid.modal_shape) * large_scale / np.sqrt(total + 1.0)
    values = grid.to_nodal(torch.as_tensor(coefficients, dtype=torch.float32)).numpy().astype(np.float64)
    area = np.broadcast_to(grid.spec.quadrature_weights, values.shape).ravel()
    order = np.argsort(values.ravel())
    cumulative = np.cumsum(area[order]) / area.sum()
    threshold = values.ravel()[order][np.searchsorted(cumulative, 1.0 - config.land_fraction)]
    land = np.clip((values - threshold) / (0.1 * values.std()) + 0.5, 0.0, 1.0)
    elevation = np.clip(values - threshold, 0.0, None)
    mountains = config.mountain_height_m * (elevation / elevation.max()) ** 1.5
    top = float(total.max())
    taper = torch.as_tensor(
        np.exp(-4.0 * (total * (total + 1.0) / (top * (top + 1.0))) ** 2), dtype=torch.float32
    )
    return Geography(
        land_modal=grid.to_modal(torch.as_tensor(land, dtype=torch.float32)) * taper,
        height_modal=grid.to_modal(torch.as_tensor(mountains, dtype=torch.float32)) * taper,
    )


def build_atmosphere(config: DefaultDatasetConfig) -> tuple[HeldSuarezAtmosphere, Geography]:
    """The model over the config's seeded geography."""
    grid = model_grid(config.atmosphere)
    geography = make_geography(config, grid)
    atmosphere = HeldSuarezAtmosphere(
        config.atmosphere, geography.height(grid), geography.land_sea_mask(grid)
    )
    return atmosphere, geography


def load_climate(path: Path = CLIMATE_FILE) -> np.ndarray:
    """The shipped monthly zonal-mean climate, (12, 3 · level + 1, l): month k is the mean over
    the k-th calendar month of :func:`zonal_mean_coefficients` (see :func:`spin_up_climate`)."""
    with np.load(path) as stored:
        return np.asarray(stored["monthly_zonal_mean"], dtype=np.float32)


def climate_at(climate: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Zonal-mean columns at ``times`` (B,), linearly interpolated between mid-month means
    (cyclic over the year): (B, 3 · level + 1, l)."""
    day_of_year = (
        np.asarray(times, dtype="datetime64[D]") - np.asarray(times, dtype="datetime64[Y]")
    ).astype(np.float64)
    position = (day_of_year / 365.25 * 12.0 - 0.5) % 12.0  # 0 = mid-January
    low = np.floor(position).astype(int)
    weight = (position - low)[:, None, None]
    return ((1.0 - weight) * climate[low % 12] + weight * climate[(low + 1) % 12]).astype(np.float32)


def eddy_noise(
    config: DefaultDatasetConfig, atmosphere: HeldSuarezAtmosphere, keys: list[tuple[int, ...]]
) -> np.ndarray:
    """Seeded vorticity noise (len(keys), level, m, l) at total wavenumbers 4–15, amplitude ~1e-6 s⁻¹;
    member i draws from the stream (config.seed, *keys[i]), so it does not depend on the batch."""
    shape = (config.atmosphere.layers, *atmosphere.grid.modal_shape)
    total = np.asarray(atmosphere.grid.sh.modal_axes[1])
    band = (total >= 4) & (total <= 15)
    per_second = atmosphere.physics.nondimensionalize(1e-6 / U.s)
    draws = [np.random.default_rng([config.seed, *key]).standard_normal(shape) for key in keys]
    return (np.stack(draws) * band * per_second).astype(np.float32)


def integrate(
    atmosphere: HeldSuarezAtmosphere,
    state: State,
    start_times: np.ndarray,
    n_steps: int,
    progress: str | None,
    position: int = 0,
) -> Iterator[tuple[int, State]]:
    """Yield (step index, state) after each of ``n_steps`` steps of the batch of runs that start at
    ``start_times`` (B,); RuntimeError on blow-up. ``progress``: the description of a tqdm bar of
    the simulated days (None: no bar), shown at line ``position``."""
    step = atmosphere.make_stepper(start_times)
    steps_per_day = round(24 * 60 / atmosphere.parameters.time_step_minutes)
    bar = tqdm(
        total=n_steps // steps_per_day,
        unit="day",
        desc=progress,
        disable=progress is None,
        mininterval=5.0,
        position=position,
    )
    with torch.no_grad():
        for index in range(1, n_steps + 1):
            state = step(state)
            if index % steps_per_day == 0:
                bar.update(1)
                if not torch.isfinite(state.vorticity).all():
                    raise RuntimeError(
                        "the default atmosphere became unstable; reduce atmosphere.time_step_minutes"
                    )
            yield index, state
    bar.close()


def spin_up_climate(
    config: DefaultDatasetConfig, spinup_days: float = 200.0, members: int = 2, progress: bool = True
) -> np.ndarray:
    """The monthly zonal-mean climate (12, 3 · level + 1, l) of ``config``'s atmosphere.

    ``members`` runs from rest (isothermal 288 K plus seeded eddy noise) start ``spinup_days``
    before 1 January of a year and are then averaged over that year, month by month. What
    ``held_suarez_climate.npz`` holds (``pipelines/spin_up_default_atmosphere.py`` writes it).
    """
    atmosphere, _ = build_atmosphere(config)
    steps_per_day = round(24 * 60 / config.atmosphere.time_step_minutes)
    spin_steps = round(spinup_days * steps_per_day)
    year_start = np.datetime64("2001-01-01T00:00", "ns")
    start = year_start - np.timedelta64(spin_steps * round(config.atmosphere.time_step_minutes), "m")
    zonal = np.repeat(rest_zonal_mean(atmosphere), members, axis=0)
    initial = state_from_zonal_mean(
        atmosphere, zonal, eddy_noise(config, atmosphere, [(3, member) for member in range(members)])
    )
    sums = np.zeros((12, *zonal.shape[1:]))
    counts = np.zeros(12)
    dt = np.timedelta64(round(config.atmosphere.time_step_minutes), "m")
    n_steps = spin_steps + 365 * steps_per_day
    starts = np.full(members, start)
    for index, state in integrate(
        atmosphere, initial, starts, n_steps, "spinning up the climate" if progress else None
    ):
        if index > spin_steps and index % steps_per_day == 0:
            month = int(str(start + index * dt)[5:7]) - 1
            sums[month] += zonal_mean_coefficients(state).mean(axis=0)
            counts[month] += 1
    return (sums / counts[:, None, None]).astype(np.float32)


def simulate_default_dataset(
    config: DefaultDatasetConfig | None = None, progress: bool = True, workers: int | None = None
) -> xr.Dataset:
    """Run the model and return the dataset in memory (no caching); short ``years`` for tests.

    Returns an xr.Dataset with ``geopotential``, ``temperature``, ``u_component_of_wind``,
    ``v_component_of_wind`` of dims (time, level, latitude, longitude), level = ``levels_hpa``,
    static ``geopotential_at_surface`` and ``land_sea_mask`` (latitude, longitude), float32 on the
    64 × 32 grid, and the ``trajectory`` coordinate along time. ``progress``: tqdm bars of the
    simulated days. The runs are integrated ``RUNS_PER_BATCH`` at a time on one thread each, the
    batches in ``workers`` processes side by side (default: one per CPU core); the values do not
    depend on ``workers`` or on the machine's cores.
    """
    config = config or DefaultDatasetConfig()
    segments = min(config.segments, config.n_outputs)
    batches = [list(range(i, min(i + RUNS_PER_BATCH, segments))) for i in range(0, segments, RUNS_PER_BATCH)]
    workers = max(1, min(len(batches), workers or os.cpu_count() or 1))
    if workers == 1:
        parts = [_simulate_runs(config, batch, progress) for batch in batches]
    else:
        context = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = list(
                pool.map(_simulate_runs, [config] * len(batches), batches, [progress] * len(batches))
            )
    n_outputs, per_segment = config.n_outputs, math.ceil(config.n_outputs / segments)
    fields = {name: np.concatenate([part[name] for part in parts])[:n_outputs] for name in parts[0]}
    trajectory = np.minimum(np.arange(n_outputs) // per_segment, segments - 1)
    grid = output_grid(config.atmosphere, WB2_LATITUDES, WB2_NLON)
    geography = make_geography(config, model_grid(config.atmosphere))
    return _to_dataset(config, geography, grid, fields, np.datetime64(config.start, "ns"), trajectory)


def _simulate_runs(config: DefaultDatasetConfig, runs: list[int], progress: bool) -> dict[str, np.ndarray]:
    """Integrate the runs ``runs`` (indices of the calendar's spans) as one batch on one thread;
    their outputs in calendar order: {name: (len(runs) · per_segment, level, latitude, longitude)}."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same values on every machine, and the cores go to the batches
    try:
        atmosphere, _ = build_atmosphere(config)
        segments = min(config.segments, config.n_outputs)
        per_segment = math.ceil(config.n_outputs / segments)
        steps_per_output = round(config.output_hours * 60 / config.atmosphere.time_step_minutes)
        spin_steps = round(config.segment_spinup_days * 24 * 60 / config.atmosphere.time_step_minutes)
        dt = np.timedelta64(round(config.atmosphere.time_step_minutes * 60), "s")
        first_times = np.datetime64(config.start, "ns") + np.asarray(runs) * per_segment * np.timedelta64(
            config.output_hours, "h"
        )
        starts = first_times - spin_steps * dt
        keys = (first_times - np.datetime64("1970-01-01", "ns")) // np.timedelta64(
            1, "h"
        )  # a run's noise: its date
        noise = eddy_noise(config, atmosphere, [(2, int(hours)) for hours in keys])
        initial = state_from_zonal_mean(atmosphere, climate_at(load_climate(), starts), noise)
        grid = output_grid(config.atmosphere, WB2_LATITUDES, WB2_NLON)
        shape = (len(runs), per_segment, len(config.levels_hpa), WB2_LATITUDES.size, WB2_NLON)
        fields = {
            name: np.empty(shape, dtype=np.float32) for name in ("geopotential", "temperature", "u", "v")
        }
        description = f"simulating runs {runs[0] + 1}–{runs[-1] + 1} of {segments}" if progress else None
        n_steps = spin_steps + (per_segment - 1) * steps_per_output
        for index, state in integrate(
            atmosphere, initial, starts, n_steps, description, position=runs[0] // RUNS_PER_BATCH
        ):
            offset = index - spin_steps
            if offset >= 0 and offset % steps_per_output == 0:
                for name, values in atmosphere.on_pressure_levels(state, grid, config.levels_hpa).items():
                    fields[name][:, offset // steps_per_output] = values
        return {name: values.reshape(-1, *values.shape[2:]) for name, values in fields.items()}
    finally:
        torch.set_num_threads(previous)


def _to_dataset(
    config: DefaultDatasetConfig,
    geography: Geography,
    grid: spherical_harmonic.Grid,
    fields: dict[str, np.ndarray],
    start: np.datetime64,
    trajectory: np.ndarray,
) -> xr.Dataset:
    """Pressure-level arrays (T, level, lat, lon) → the canonical dataset on ``grid``."""
    times = start + np.arange(len(trajectory)) * np.timedelta64(config.output_hours, "h")
    dims = ("time", "level", "latitude", "longitude")

    def upper_air(values: np.ndarray, units: str, long_name: str) -> xr.Variable:
        return xr.Variable(dims, values, {"units": units, "long_name": long_name})

    def surface(values: np.ndarray, units: str, long_name: str) -> xr.Variable:
        return xr.Variable(
            ("latitude", "longitude"), values.T.astype(np.float32), {"units": units, "long_name": long_name}
        )

    data_vars = {
        "geopotential": upper_air(fields["geopotential"], "m**2 s**-2", "Geopotential"),
        "temperature": upper_air(fields["temperature"], "K", "Temperature"),
        "u_component_of_wind": upper_air(fields["u"], "m s**-1", "U component of wind"),
        "v_component_of_wind": upper_air(fields["v"], "m s**-1", "V component of wind"),
        "geopotential_at_surface": surface(
            _GRAVITY * geography.height(grid), "m**2 s**-2", "Geopotential at surface (orography)"
        ),
        "land_sea_mask": surface(geography.land_sea_mask(grid), "(0 - 1)", "Land-sea mask"),
    }
    coords = {
        "time": times.astype("datetime64[ns]"),
        "level": xr.Variable("level", np.array(config.levels_hpa, dtype=np.int64), {"units": "hPa"}),
        "latitude": xr.Variable("latitude", WB2_LATITUDES, {"units": "degrees_north"}),
        "longitude": xr.Variable(
            "longitude", np.arange(WB2_NLON) * 360.0 / WB2_NLON, {"units": "degrees_east"}
        ),
        TRAJECTORY_COORD: xr.Variable(
            "time",
            trajectory.astype(np.int64),
            {"long_name": "index of the independent model run this time belongs to"},
        ),
    }
    p = config.atmosphere
    attrs = {
        "title": "vecfield default dataset: a Held-Suarez atmosphere with seasons, days and mountains",
        "model": (
            f"dinosaur-torch primitive equations, T{p.truncation} spectral on a Gaussian grid, {p.layers} "
            f"equidistant sigma levels, SIL3 IMEX steps of {p.time_step_minutes:g} min with the exponential "
            "filter; Held & Suarez (1994) forcing with a seasonal hemispheric asymmetry, a diurnal "
            "boundary-layer heating and seeded orography; output by exact spectral synthesis on the "
            "WeatherBench2 64x32 grid and linear interpolation in ln p to the pressure levels; "
            f"{config.segments} independent runs side by side (coordinate 'trajectory')"
        ),
        "config": json.dumps(dataclasses.asdict(config), sort_keys=True),
        "seed": config.seed,
        "generator_version": GENERATOR_VERSION,
        "vecfield_version": __version__,
        "cache_key": config.cache_key(),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def default_cache_dir() -> Path:
    """``$VECFIELD_CACHE`` if set, else ``~/.cache/vecfield``."""
    return Path(os.environ.get("VECFIELD_CACHE") or Path.home() / ".cache" / "vecfield")


def load_default_dataset(
    cache_dir: str | Path | None = None,
    *,
    years: float | None = None,
    seed: int | None = None,
    config: DefaultDatasetConfig | None = None,
) -> xr.Dataset:
    """The default dataset, lazily opened from the zarr cache; generated and cached on first use.

    cache_dir: folder of the cache (default :func:`default_cache_dir`). ``years`` and ``seed``
    override the fields of ``config`` (default :class:`DefaultDatasetConfig`: 3 years, seed 0).
    The store is ``<cache_dir>/default-dataset-<hash of the config>.zarr``; it is written under a
    temporary name in the same folder and renamed when complete, so an interrupted generation
    never leaves a store that looks finished.
    """
    config = config or DefaultDatasetConfig()
    overrides: dict[str, Any] = {
        name: value for name, value in (("years", years), ("seed", seed)) if value is not None
    }
    config = dataclasses.replace(config, **overrides)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    store = folder / f"default-dataset-{config.cache_key()}.zarr"
    if not store.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"cannot create the cache folder {folder} ({error}); pass a writable cache_dir "
                "or set VECFIELD_CACHE"
            ) from error
        if not os.access(folder, os.W_OK):
            raise ValueError(
                f"the cache folder {folder} is not writable; pass a writable cache_dir or set VECFIELD_CACHE"
            )
        logger.info(
            "generating the default dataset (first use only; cached in %s, set VECFIELD_CACHE to move it) …",
            folder,
        )
        dataset = simulate_default_dataset(config)
        try:
            with atomic_path(store) as temporary:
                # zarr format 2 with consolidated metadata: readable by zarr-python 2 and 3 alike
                dataset.chunk({"time": 4 * 24 // config.output_hours}).to_zarr(
                    temporary, mode="w", consolidated=True, zarr_format=2
                )
        except OSError:
            if not store.exists():  # a concurrent writer that finished first is fine; anything else is not
                raise
    return xr.open_zarr(store, consolidated=True)
