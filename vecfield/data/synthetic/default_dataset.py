"""The embedded default dataset: a forced two-layer shallow-water "atmosphere" in the canonical layout.

Two stacked fluid layers (:mod:`vecfield.data.synthetic.shallow_water`, T21 on a 32 × 64 Gaussian grid) are
integrated over real dates and sampled every 6 hours on WeatherBench2's 64 × 32 equiangular grid
without poles (exact spectral synthesis at those latitudes). The top layer stands for the
mid/upper troposphere, the bottom layer for the lower troposphere: the tilt of the interface
between them is the "temperature gradient", its vertical shear is baroclinically unstable, and
travelling eddies (storms) grow on the jets. Their Montgomery potentials M — the potentials whose
gradients drive the winds, as geopotential does on isobaric surfaces — are reported as the
geopotential at 500 and 850 hPa, shifted by constants to standard-atmosphere heights.

Forcing: the top layer's thickness relaxes with time τ_r toward Φ_eq, moving mass to or from the
bottom layer (a diabatic mass flux; total mass is conserved):

    Φ_eq(λ, φ, t) = g [ H_top + ½ ΔZ_m tanh((Q_a(φ, t) − Q_c)/ΔQ)          (polar front, seasonal)
                           + ΔZ_l ℓ(λ, φ) (Q_a(φ, t) − Q̂_a(φ))/S₀           (land–sea monsoon)
                           + ΔZ_d (c + (1 − c) ℓ) (1 − α(φ)) (Q − Q̄)(λ, φ, t)/S₀ ]   (diurnal tide)

with Q(λ, φ, t) the instantaneous TOA flux of :func:`vecfield.data.forcings.instantaneous_solar_flux`
(the same astronomy as the forecaster's ``toa_incident_solar_radiation`` feature), Q̄(φ, t) its
zonal mean (= the daily mean), Q_a = (1 − α(φ)) Q̄ the absorbed daily mean with a planetary albedo
α(φ) = α₀ + α₁ sin²φ, Q_c ± ΔQ the absorbed flux where the equilibrium "polar front" (the
steepest interface tilt, hence the jet) sits — near 45° in winter, poleward in summer — Q̂_a(φ) the
annual mean of Q_a at latitude φ,
ℓ ∈ [0, 1] the land–sea mask and c the ocean share of the diurnal response. Orography Φ_s = g h_s
rises over land; land and mountains come from a seeded smooth random field, so ``land_sea_mask``
and ``geopotential_at_surface`` are genuine static inputs of the dynamics. Rayleigh drag τ_d on
the bottom layer and ∇⁸ hyperdiffusion τ_h close the energy budget.
"""

import dataclasses
import hashlib
import itertools
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from vecfield._version import __version__
from vecfield.data.forcings import SOLAR_CONSTANT, instantaneous_solar_flux
from vecfield.data.synthetic.shallow_water import (
    GRAVITY,
    VORTICITY,
    ShallowWaterModel,
    ShallowWaterParameters,
    SphericalHarmonicSynthesis,
    SphericalHarmonicTransform,
)
from vecfield.files import atomic_path

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "1"  # bump when the generated values change for the same config
WB2_LATITUDES = np.linspace(-87.1875, 87.1875, 32)  # WeatherBench2 64×32 equiangular, no poles
WB2_NLON = 64
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class DefaultDatasetConfig:
    """Everything that determines the generated values (hashed into the cache key).

    Heights in metres, times in the unit named by the field. ``years`` of 6-hourly states are
    kept after ``spinup_days`` of spin-up that start before ``start``.
    """

    years: float = 3.0
    seed: int = 0
    start: str = "2000-01-01"
    spinup_days: float = 120.0
    output_hours: int = 6
    levels_hpa: tuple[int, int] = (500, 850)
    standard_heights_m: tuple[float, float] = (5574.0, 1457.0)  # ICAO standard atmosphere at those levels
    truncation: int = 21
    time_step_seconds: float = 3600.0
    top_layer_depth_m: float = 6000.0
    bottom_layer_depth_m: float = 4000.0
    density_ratio: float = 0.5
    meridional_contrast_m: float = 4000.0
    front_absorbed_flux: float = 150.0
    front_flux_width: float = 40.0
    land_seasonal_contrast_m: float = 600.0
    diurnal_amplitude_m: float = 600.0
    ocean_diurnal_share: float = 0.3
    albedo_equator: float = 0.3
    albedo_increase_to_pole: float = 0.4
    land_fraction: float = 0.3
    mountain_height_m: float = 1000.0
    relaxation_days: float = 6.0
    drag_days: float = 5.0
    top_drag_days: float | None = None
    hyperdiffusion_hours: float = 6.0
    hyperdiffusion_order: int = 4

    def __post_init__(self) -> None:
        positive = (
            "years",
            "output_hours",
            "time_step_seconds",
            "relaxation_days",
            "drag_days",
            "top_drag_days",
        )
        for name in positive:
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.spinup_days < 0:
            raise ValueError(f"spinup_days must be ≥ 0, got {self.spinup_days}")
        steps = self.output_hours * 3600 / self.time_step_seconds
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(
                f"output_hours={self.output_hours} is not a whole number of time steps of "
                f"{self.time_step_seconds} s; choose a time step that divides it"
            )
        if not 0.0 < self.land_fraction < 1.0:
            raise ValueError(f"land_fraction must lie in (0, 1), got {self.land_fraction}")
        if not (len(self.levels_hpa) == 2 and self.levels_hpa[0] < self.levels_hpa[1]):
            raise ValueError(
                f"levels_hpa={self.levels_hpa} must be two pressures, top layer first (e.g. (500, 850))"
            )
        np.datetime64(self.start)  # raises ValueError on a malformed date

    def cache_key(self) -> str:
        """A hash of the configuration and the generator version: the cache file name."""
        payload = json.dumps(
            {"config": dataclasses.asdict(self), "version": GENERATOR_VERSION}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Geography:
    """Seeded continents and mountains: land fraction ℓ and spectral surface geopotential Φ_s."""

    land_sea_mask_spectral: np.ndarray  # smooth field whose grid values, clipped to [0, 1], give ℓ
    surface_geopotential_spectral: np.ndarray  # (N+1, N+1), m² s⁻²

    def land_sea_mask(self, synthesis: SphericalHarmonicSynthesis) -> np.ndarray:
        """ℓ ∈ [0, 1] on ``synthesis``'s grid, (J, nlon)."""
        return np.clip(synthesis.scalar(self.land_sea_mask_spectral), 0.0, 1.0)

    def surface_geopotential(self, synthesis: SphericalHarmonicSynthesis) -> np.ndarray:
        """Φ_s (m² s⁻²) on ``synthesis``'s grid, (J, nlon)."""
        return synthesis.scalar(self.surface_geopotential_spectral)


def make_geography(config: DefaultDatasetConfig, transform: SphericalHarmonicTransform) -> Geography:
    """Continents from a random field F of total wavenumbers 1–6 (seeded): land where F > F_q.

    F_q is the (1 − land_fraction) quantile of F's area-weighted distribution. Land fraction
    ℓ = clip((F − F_q)/w + ½, 0, 1) with a coastal width w; mountains h_s = H · ((F − F_q)⁺/max)^{1.5},
    both truncated to T``truncation`` with a gentle spectral taper that keeps Gibbs ripples small.
    """
    rng = np.random.default_rng([config.seed, 1])
    N = transform.truncation
    shape = (N + 1, N + 1)
    n = np.arange(N + 1)[None, :]
    large_scale = (n >= 1) & (n <= 6) & transform.mask
    coeffs = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * large_scale / np.sqrt(n + 1.0)
    coeffs[0] = coeffs[0].real
    field = transform.scalar(coeffs)
    area = np.broadcast_to(transform.weights[:, None], field.shape).ravel()
    order = np.argsort(field.ravel())
    cumulative = np.cumsum(area[order]) / area.sum()
    threshold = field.ravel()[order][np.searchsorted(cumulative, 1.0 - config.land_fraction)]
    width = 0.1 * field.std()
    land = np.clip((field - threshold) / width + 0.5, 0.0, 1.0)
    elevation = np.clip(field - threshold, 0.0, None)
    mountains = config.mountain_height_m * (elevation / elevation.max()) ** 1.5
    taper = np.exp(-((n * (n + 1.0) / (N * (N + 1.0))) ** 2) * 4.0)
    return Geography(
        land_sea_mask_spectral=transform.analysis(land) * taper,
        surface_geopotential_spectral=transform.analysis(GRAVITY * mountains) * taper,
    )


class EquilibriumForcing:
    """Φ_eq(λ, φ, t) of the module docstring on a grid, from real datetimes."""

    def __init__(
        self, config: DefaultDatasetConfig, latitudes: np.ndarray, longitudes: np.ndarray, land: np.ndarray
    ):
        self.config = config
        self.latitudes = np.asarray(latitudes, dtype=np.float64)
        self.longitudes = np.asarray(longitudes, dtype=np.float64)
        self.land = land  # (J, L)
        sin2 = np.sin(np.deg2rad(self.latitudes)) ** 2
        self.coalbedo = (1.0 - config.albedo_equator - config.albedo_increase_to_pole * sin2)[:, None]
        # annual means from 365 daily samples of the zonal-mean (= daily-mean) flux in a reference year
        days = np.datetime64("2001-01-01T12:00") + np.arange(365) * np.timedelta64(1, "D")
        absorbed = self.coalbedo[None, :, 0] * self._daily_mean_flux(days)  # (365, J)
        self.annual_absorbed = absorbed.mean(axis=0)[:, None]  # Q̂_a(φ), (J, 1)

    def _daily_mean_flux(self, times: np.ndarray) -> np.ndarray:
        """Q̄(φ, t): the zonal mean of the instantaneous flux, (T, J); equal to the daily mean."""
        return instantaneous_solar_flux(times, self.latitudes, self.longitudes).mean(axis=-1)

    def __call__(self, times: np.ndarray) -> np.ndarray:
        """times: (T,) datetime64 → Φ_eq (T, J, L) in m² s⁻²."""
        c = self.config
        flux = instantaneous_solar_flux(times, self.latitudes, self.longitudes)  # (T, J, L)
        daily = flux.mean(axis=-1, keepdims=True)
        absorbed = self.coalbedo * daily
        height = (
            c.top_layer_depth_m
            + 0.5 * c.meridional_contrast_m * np.tanh((absorbed - c.front_absorbed_flux) / c.front_flux_width)
            + c.land_seasonal_contrast_m * self.land * (absorbed - self.annual_absorbed) / SOLAR_CONSTANT
            + c.diurnal_amplitude_m
            * (c.ocean_diurnal_share + (1.0 - c.ocean_diurnal_share) * self.land)
            * self.coalbedo
            * (flux - daily)
            / SOLAR_CONSTANT
        )
        return GRAVITY * height


def _build_model(config: DefaultDatasetConfig) -> tuple[ShallowWaterModel, Geography]:
    transform = SphericalHarmonicTransform(config.truncation)
    geography = make_geography(config, transform)
    surface = geography.surface_geopotential(transform)
    mean_surface = float(transform.integral(surface)) / (4 * np.pi * transform.radius**2)
    parameters = ShallowWaterParameters(
        truncation=config.truncation,
        time_step=config.time_step_seconds,
        reference_thickness=(
            GRAVITY * config.top_layer_depth_m,
            GRAVITY * config.bottom_layer_depth_m - mean_surface,
        ),
        density_ratio=config.density_ratio,
        hyperdiffusion_time=config.hyperdiffusion_hours * 3600.0,
        hyperdiffusion_order=config.hyperdiffusion_order,
        drag_time=config.drag_days * _SECONDS_PER_DAY,
        top_drag_time=None if config.top_drag_days is None else config.top_drag_days * _SECONDS_PER_DAY,
        relaxation_time=config.relaxation_days * _SECONDS_PER_DAY,
    )
    return ShallowWaterModel(parameters, transform, surface), geography


def initial_state(model: ShallowWaterModel, config: DefaultDatasetConfig) -> np.ndarray:
    """At rest with flat interface and free surface (an exact steady state without forcing), plus
    seeded small-scale vorticity noise (≈ 1e-6 s⁻¹); the relaxation then builds up the gradients."""
    sht = model.transform
    rng = np.random.default_rng([config.seed, 2])
    shape = (2, sht.truncation + 1, sht.truncation + 1)
    noise = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * sht.mask * 1e-6
    noise[:, 0] = noise[:, 0].real
    noise[:, 0, 0] = 0.0
    top = np.full((sht.nlat, sht.nlon), GRAVITY * config.top_layer_depth_m)
    assert model.surface_geopotential is not None, "ShallowWaterModel.__post_init__ sets it"
    bottom = GRAVITY * config.bottom_layer_depth_m - model.surface_geopotential
    zeros = np.zeros((2, sht.nlat, sht.nlon))
    state = model.state_from_grid(zeros, zeros, np.stack([top, bottom]))
    state[:, VORTICITY] += noise
    return state


def forced_trajectory(
    model: ShallowWaterModel,
    forcing: EquilibriumForcing,
    initial: np.ndarray,
    start: np.datetime64,
    n_steps: int,
) -> Iterator[np.ndarray]:
    """Yield the states (layers, 3, N+1, N+1) after steps 1, …, ``n_steps`` from ``initial`` at ``start``.

    The relaxation target of step k is Φ_eq at start + k Δt (spectral, computed 4 days at a time);
    the first step is a forward step, the others leapfrog. Raises RuntimeError if the model blows up.
    """
    sht, p = model.transform, model.parameters
    dt = np.timedelta64(round(p.time_step * 1e6), "us")
    previous = current = initial
    chunk = max(1, round(4 * _SECONDS_PER_DAY / p.time_step))
    for chunk_start in range(0, n_steps, chunk):
        steps = np.arange(chunk_start, min(chunk_start + chunk, n_steps))
        equilibrium = sht.analysis(forcing(start + steps * dt))  # (k, N+1, N+1): Φ_eq at each step's time
        for step, eq in zip(steps, equilibrium, strict=True):
            if step == 0:
                current = model.first_step(current, equilibrium=eq)
            else:
                previous, current = model.step(previous, current, equilibrium=eq)
            yield current
        if not np.isfinite(current).all():
            raise RuntimeError(
                f"the shallow-water model became unstable at {start + (steps[-1] + 1) * dt}; reduce "
                "time_step_seconds, meridional_contrast_m or mountain_height_m (a layer may have run dry)"
            )


def build_default_model(
    config: DefaultDatasetConfig,
) -> tuple[ShallowWaterModel, Geography, EquilibriumForcing]:
    """The model, its geography and its forcing on the Gaussian grid, as used by the generator."""
    model, geography = _build_model(config)
    sht = model.transform
    forcing = EquilibriumForcing(config, sht.latitudes, sht.longitudes, geography.land_sea_mask(sht))
    return model, geography, forcing


def simulate_default_dataset(config: DefaultDatasetConfig | None = None, progress: bool = True) -> xr.Dataset:
    """Run the model and return the dataset in memory (no caching); short ``years`` for tests.

    Returns an xr.Dataset with ``geopotential``, ``u_component_of_wind``, ``v_component_of_wind``
    of dims (time, level, latitude, longitude), level = ``levels_hpa`` (top layer, bottom layer),
    and static ``geopotential_at_surface``, ``land_sea_mask`` (latitude, longitude); float32 on the
    64 × 32 grid. The run starts at rest ``spinup_days`` before ``start``. ``progress``: a tqdm bar
    of the simulated days.
    """
    config = config or DefaultDatasetConfig()
    model, geography, forcing = build_default_model(config)
    steps_per_output = round(config.output_hours * 3600 / config.time_step_seconds)
    n_outputs = round(config.years * 365.25 * 24 / config.output_hours)
    spinup_steps = round(config.spinup_days * _SECONDS_PER_DAY / config.time_step_seconds)
    start = np.datetime64(config.start, "us")
    t0 = start - spinup_steps * np.timedelta64(round(config.time_step_seconds * 1e6), "us")
    total_steps = spinup_steps + (n_outputs - 1) * steps_per_output

    saved = np.empty((n_outputs, 2, 3, config.truncation + 1, config.truncation + 1), dtype=np.complex128)
    initial = initial_state(model, config)
    states = itertools.chain([initial], forced_trajectory(model, forcing, initial, t0, total_steps))
    steps_per_day = _SECONDS_PER_DAY / config.time_step_seconds
    bar = tqdm(total=round(total_steps / steps_per_day), unit="day", desc="simulating the default atmosphere",
               disable=not progress, mininterval=5.0)
    for step, state in enumerate(states):
        if step and step % round(steps_per_day) == 0:
            bar.update(1)
        offset = step - spinup_steps
        if offset >= 0 and offset % steps_per_output == 0:
            saved[offset // steps_per_output] = state
    bar.close()
    output_grid = model.transform.at_latitudes(WB2_LATITUDES, WB2_NLON)
    return _to_dataset(config, model, geography, output_grid, saved, start)


def reported_geopotential_offsets(config: DefaultDatasetConfig) -> np.ndarray:
    """Constants (2,) added to the layers' Montgomery potentials M so their nominal means equal
    g × the standard-atmosphere heights of ``levels_hpa``.

    Nominal means: ⟨M_top⟩ = g (H_top + H_bottom) (total mass is conserved) and
    ⟨M_bottom⟩ = ⟨M_top⟩ − (1 − ρ_top/ρ_bottom) g H_top. A constant does not change the dynamics.
    """
    top = GRAVITY * (config.top_layer_depth_m + config.bottom_layer_depth_m)
    bottom = top - (1.0 - config.density_ratio) * GRAVITY * config.top_layer_depth_m
    return GRAVITY * np.asarray(config.standard_heights_m) - np.array([top, bottom])


def _to_dataset(
    config: DefaultDatasetConfig,
    model: ShallowWaterModel,
    geography: Geography,
    output_grid: SphericalHarmonicSynthesis,
    states: np.ndarray,
    start: np.datetime64,
) -> xr.Dataset:
    """Spectral states (T, 3, N+1, N+1) → the canonical dataset on ``output_grid``."""
    u, v, montgomery = model.grid_from_state(states, output_grid)  # each (T, 2, J, L), top layer first
    geopotential = montgomery + reported_geopotential_offsets(config)[:, None, None]
    times = start + np.arange(len(states)) * np.timedelta64(config.output_hours, "h")
    dims = ("time", "level", "latitude", "longitude")

    def upper_air(values: np.ndarray, units: str, long_name: str) -> xr.Variable:
        return xr.Variable(dims, values.astype(np.float32), {"units": units, "long_name": long_name})

    data_vars = {
        "geopotential": upper_air(geopotential, "m**2 s**-2", "Geopotential"),
        "u_component_of_wind": upper_air(u, "m s**-1", "U component of wind"),
        "v_component_of_wind": upper_air(v, "m s**-1", "V component of wind"),
        "geopotential_at_surface": xr.Variable(
            ("latitude", "longitude"),
            geography.surface_geopotential(output_grid).astype(np.float32),
            {"units": "m**2 s**-2", "long_name": "Geopotential at surface (orography)"},
        ),
        "land_sea_mask": xr.Variable(
            ("latitude", "longitude"),
            geography.land_sea_mask(output_grid).astype(np.float32),
            {"units": "(0 - 1)", "long_name": "Land-sea mask"},
        ),
    }
    coords = {
        "time": times.astype("datetime64[ns]"),
        "level": xr.Variable("level", np.array(config.levels_hpa, dtype=np.int64), {"units": "hPa"}),
        "latitude": xr.Variable("latitude", output_grid.latitudes, {"units": "degrees_north"}),
        "longitude": xr.Variable("longitude", output_grid.longitudes, {"units": "degrees_east"}),
    }
    attrs = {
        "title": "vecfield default dataset: forced spectral shallow-water model on the sphere",
        "model": (
            f"two-layer shallow water, vorticity-divergence form, T{config.truncation} spectral on a "
            f"{model.transform.nlat}x{model.transform.nlon} Gaussian grid, semi-implicit leapfrog with "
            "RAW filter, hyperdiffusion, Rayleigh drag on the bottom layer, Newtonian relaxation of the "
            "top layer's thickness toward an insolation-driven equilibrium (diabatic mass exchange); "
            f"Montgomery potentials of the top and bottom layers reported as the geopotential at "
            f"{config.levels_hpa[0]} and {config.levels_hpa[1]} hPa plus constant offsets; output by exact "
            "spectral synthesis on the WeatherBench2 64x32 grid"
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
        logger.info("generating the default dataset (first use only; cached in %s, set VECFIELD_CACHE to "
                    "move it) …", folder)
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
