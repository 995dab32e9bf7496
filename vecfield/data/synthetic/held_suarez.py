"""A Held–Suarez atmosphere with seasons, a diurnal cycle and mountains, on dinosaur-torch's
primitive equations (a dependency of vecfield).

The dynamics are dinosaur-torch's dry hydrostatic primitive equations in σ = p/p_s coordinates,
spectral T``truncation`` on a Gaussian grid, stepped with the SIL3 implicit–explicit
Runge–Kutta scheme and its exponential spectral filter. The forcing is Held & Suarez (1994, BAMS
75, 1825), the standard test of dynamical cores, with three additions that give an Earth-like
calendar (all on the same astronomy as the forecaster's ``toa_incident_solar_radiation``,
:mod:`vecfield.data.forcings`):

    ∂v/∂t = … − k_v(σ) v,              k_v = k_f max(0, (σ − σ_b)/(1 − σ_b))
    ∂T/∂t = … − k_T(φ, σ)(T − T_eq) + H_d (c + (1 − c) ℓ) (Q − Q̄)/S₀ · max(0, (σ − σ_b)/(1 − σ_b))
    k_T = k_a + (k_s − k_a) max(0, (σ − σ_b)/(1 − σ_b)) cos⁴φ
    T_eq = max(T_strat, [T₀ − ΔT_y ((1 − a) sin²φ + a sin⁴φ) + s(t) (ε_N sin⁺φ + ε_S sin⁻φ)
                         − Δθ_z ln(p/p₀) cos²φ] (p/p₀)^κ)
    s(t) = sin δ(t) / sin δ_max        (+1 at the June solstice, −1 at the December one)

with δ the solar declination, sin⁺φ = max(sin φ, 0), sin⁻φ = min(sin φ, 0), Q the instantaneous
top-of-atmosphere flux at (λ, φ, t), Q̄ its daily (zonal) mean, S₀ the solar constant and ℓ the
land–sea mask (the diurnal heating of the boundary layer is larger over land). With a = 0 and
ε_N = ε_S = 0 this is HS94: k_f = 1 day⁻¹, k_a = 1/40 day⁻¹, k_s = 1/4 day⁻¹, σ_b = 0.7,
T₀ = 315 K, Δθ_z = 10 K, T_strat = 200 K, p₀ = 1000 hPa (HS94's ΔT_y is 60 K). The seasonal term
is Polvani & Kushner's (2002, GRL 29, 1114) hemispheric asymmetry made to follow the Sun, larger
in the land-rich north than in the oceanic south as on Earth. The sin⁴φ profile ("polar
amplification") moves the baroclinic zone poleward: at T21 HS94's sin²φ gives single jets at 31°,
merged with the subtropical jet, 10–15° equatorward of Earth's (benchmarks/default_dataset.py
measures them against ERA-Interim). Orography enters the dynamics through the surface geopotential.

Layouts are dinosaur-torch's: modal (…, level, m, l), nodal (…, level, longitude, latitude).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from dinosaur_torch import (
    coordinate_systems,
    primitive_equations,
    scales,
    sigma_coordinates,
    spherical_harmonic,
    time_integration,
    units,
    vertical_interpolation,
)

from vecfield.data.forcings import SOLAR_CONSTANT, instantaneous_solar_flux, solar_position

U = scales.units
OBLIQUITY_RAD = math.radians(23.44)


@dataclass(frozen=True)
class HeldSuarezParameters:
    """Resolution, time step and forcing constants (module docstring). The defaults were chosen with
    ``benchmarks/default_dataset.py`` for jets near ERA-Interim's (docs/default_dataset.md)."""

    truncation: int = 21
    layers: int = 12
    time_step_minutes: float = 90.0
    friction_days: float = 1.0  # 1/k_f
    radiation_days: float = 40.0  # 1/k_a
    surface_radiation_days: float = 4.0  # 1/k_s
    boundary_layer_sigma: float = 0.7  # σ_b
    surface_temperature_k: float = 315.0  # T₀
    equator_pole_k: float = 85.0  # ΔT_y
    polar_amplification: float = 1.0  # a: the meridional term is ΔT_y ((1 − a) sin²φ + a sin⁴φ)
    static_stability_k: float = 10.0  # Δθ_z
    stratosphere_k: float = 200.0  # T_strat
    seasonal_north_k: float = 16.0  # ε_N
    seasonal_south_k: float = 2.0  # ε_S
    diurnal_heating_k_per_day: float = 6.0  # H_d
    ocean_diurnal_share: float = 0.3  # c

    def __post_init__(self) -> None:
        if self.truncation not in _GAUSSIAN_NODES:
            raise ValueError(f"truncation must be one of {sorted(_GAUSSIAN_NODES)}, got {self.truncation}")
        if self.layers < 4:
            raise ValueError(f"layers must be ≥ 4, got {self.layers}")
        for name in ("time_step_minutes", "friction_days", "radiation_days", "surface_radiation_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.boundary_layer_sigma < 1.0:
            raise ValueError(f"boundary_layer_sigma must lie in (0, 1), got {self.boundary_layer_sigma}")


_GAUSSIAN_NODES = {21: 16, 31: 24, 42: 32}  # the standard quadratic (alias-free) Gaussian grids
_REFERENCE_TEMPERATURE_K = 288.0


def _boundary_layer_profile(sigma: torch.Tensor, sigma_b: float) -> torch.Tensor:
    """max(0, (σ − σ_b)/(1 − σ_b)): 1 at the surface, 0 above σ_b."""
    return torch.clamp((sigma - sigma_b) / (1.0 - sigma_b), min=0.0)


class HeldSuarezForcing(time_integration.ExplicitODE):
    """The forcing terms of the module docstring as explicit tendencies of a modal ``State``.

    start_times: (B,) datetime64, the datetime of each batch member at ``sim_time = 0``; members
    run side by side at different dates. land: (longitude, latitude) land fraction ℓ on the
    model's Gaussian grid.
    """

    def __init__(
        self,
        atmosphere: HeldSuarezAtmosphere,
        start_times: np.ndarray,
        land: torch.Tensor,
    ) -> None:
        p, nd = atmosphere.parameters, atmosphere.physics.nondimensionalize
        grid = atmosphere.grid
        self.grid, self.physics = grid, atmosphere.physics
        self.start_times = np.asarray(start_times, dtype="datetime64[ns]")
        self.seconds_per_unit = float(atmosphere.physics.dimensionalize(1.0, U.s).m)
        self.latitudes = np.rad2deg(np.arcsin(grid.spec.nodal_axes[1]))
        self.longitudes = np.rad2deg(grid.spec.nodal_axes[0])
        sin_lat = torch.as_tensor(grid.spec.nodal_axes[1], dtype=torch.float32)
        self.sin_lat, self.cos2_lat = sin_lat, 1.0 - sin_lat**2
        sigma = atmosphere.sigma_centers[:, None, None]
        self.sigma = sigma
        profile = _boundary_layer_profile(sigma, p.boundary_layer_sigma)
        day = nd(1 * U.day)
        self.k_v = profile / (p.friction_days * day)
        k_a, k_s = 1.0 / (p.radiation_days * day), 1.0 / (p.surface_radiation_days * day)
        self.k_t = k_a + (k_s - k_a) * profile * self.cos2_lat**2  # (level, 1, latitude)
        kelvin = nd(1 * U.degK)
        self.kelvin = kelvin
        self.parameters = p
        # the time-independent latitude profiles of T_eq, computed once rather than at every stage
        self.meridional = (
            1 - p.polar_amplification
        ) * self.sin_lat**2 + p.polar_amplification * self.sin_lat**4
        self.hemispheres = p.seasonal_north_k * self.sin_lat.clamp(
            min=0
        ) + p.seasonal_south_k * self.sin_lat.clamp(max=0)
        self.kappa = atmosphere.physics.kappa
        self.p0 = nd(1e5 * U.Pa)
        self.reference_temperature = atmosphere.reference_temperature[:, None, None]
        diurnal_share = p.ocean_diurnal_share + (1.0 - p.ocean_diurnal_share) * land
        self.diurnal = (
            (p.diurnal_heating_k_per_day * kelvin / day) * diurnal_share * profile
        )  # (level, lon, lat)

    def times(self, sim_time: float) -> np.ndarray:
        """(B,) datetime64[ns] of each member at nondimensional time ``sim_time``."""
        return self.start_times + np.timedelta64(round(sim_time * self.seconds_per_unit * 1e9), "ns")

    def equilibrium_temperature(self, pressure: torch.Tensor, times: np.ndarray) -> torch.Tensor:
        """T_eq (nondimensional) at pressure p (same units as p₀), (B, level, lon, lat)."""
        p, k = self.parameters, self.kelvin
        season = np.sin(solar_position(times)[0]) / math.sin(OBLIQUITY_RAD)  # +1 at the June solstice
        season_t = torch.as_tensor(season, dtype=torch.float32)[:, None, None, None]
        ratio = pressure / self.p0
        potential = (
            p.surface_temperature_k * k
            - p.equator_pole_k * k * self.meridional
            + season_t * k * self.hemispheres
            - p.static_stability_k * k * torch.log(ratio) * self.cos2_lat
        )
        return torch.clamp(potential * ratio**self.kappa, min=p.stratosphere_k * k)

    def diurnal_anomaly(self, times: np.ndarray) -> torch.Tensor:
        """(Q − Q̄)/S₀ on the Gaussian grid, (B, 1, lon, lat)."""
        flux = instantaneous_solar_flux(times, self.latitudes, self.longitudes)  # (B, lat, lon)
        anomaly = (flux - flux.mean(axis=-1, keepdims=True)) / SOLAR_CONSTANT
        return torch.as_tensor(anomaly.transpose(0, 2, 1)[:, None], dtype=torch.float32)

    def explicit_terms(self, state: primitive_equations.State) -> primitive_equations.State:
        if state.sim_time is None:
            raise ValueError("the Held–Suarez forcing needs the state's sim_time (the seasons and days)")
        times = self.times(float(state.sim_time))
        temperature = self.grid.to_nodal(state.temperature_variation) + self.reference_temperature
        pressure = self.sigma * torch.exp(self.grid.to_nodal(state.log_surface_pressure))
        heating = -self.k_t * (temperature - self.equilibrium_temperature(pressure, times))
        heating = heating + self.diurnal * self.diurnal_anomaly(times)
        return primitive_equations.State(
            vorticity=-self.k_v * state.vorticity,
            divergence=-self.k_v * state.divergence,
            temperature_variation=self.grid.to_modal(heating),
            log_surface_pressure=torch.zeros_like(state.log_surface_pressure),
            tracers={},
            sim_time=0.0,
        )


def model_grid(parameters: HeldSuarezParameters) -> spherical_harmonic.Grid:
    """The alias-free Gaussian grid of T``parameters.truncation`` (32 × 64 at T21), unit sphere."""
    radius = units.SimUnits.from_si().radius
    return spherical_harmonic.Grid(
        spherical_harmonic.GridSpec.construct(
            parameters.truncation, _GAUSSIAN_NODES[parameters.truncation], radius=radius
        )
    )


def output_grid(
    parameters: HeldSuarezParameters, latitudes: np.ndarray, n_longitudes: int
) -> spherical_harmonic.Grid:
    """A grid with the model's wavenumbers at the equiangular ``latitudes`` (degrees, increasing,
    no poles) and ``n_longitudes`` from 0°: modal fields evaluate on it exactly (synthesis only)."""
    latitudes = np.asarray(latitudes, dtype=np.float64)
    spacing = np.diff(latitudes)
    expected = 180.0 / latitudes.size
    if not (np.allclose(spacing, expected) and np.isclose(latitudes[0], -90.0 + expected / 2)):
        raise ValueError(
            "output latitudes must be equiangular without poles (like WeatherBench2's 64×32 grid)"
        )
    radius = units.SimUnits.from_si().radius
    return spherical_harmonic.Grid(
        spherical_harmonic.GridSpec(
            longitude_wavenumbers=parameters.truncation + 1,
            total_wavenumbers=parameters.truncation + 2,
            longitude_nodes=n_longitudes,
            latitude_nodes=latitudes.size,
            latitude_spacing="equiangular",
            radius=radius,
        )
    )


class HeldSuarezAtmosphere:
    """The model: grid, σ levels, primitive equations over ``orography`` and the stepper.

    orography: surface height in metres on the Gaussian grid, (longitude, latitude). land: ℓ on
    the same grid. ``make_stepper(start_times)`` returns the one-step function of a batch of
    members that start at ``start_times``.
    """

    def __init__(self, parameters: HeldSuarezParameters, orography: np.ndarray, land: np.ndarray) -> None:
        self.parameters = parameters
        self.physics = units.SimUnits.from_si()
        nd = self.physics.nondimensionalize
        self.grid = model_grid(parameters)
        self.sigma_coordinates = sigma_coordinates.SigmaCoordinates.equidistant(parameters.layers)
        self.sigma_levels = sigma_coordinates.SigmaLevels(self.sigma_coordinates)
        self.sigma_centers = self.sigma_levels.centers
        self.coords = coordinate_systems.CoordinateSystem(self.grid, self.sigma_levels)
        temperature = np.full(parameters.layers, nd(_REFERENCE_TEMPERATURE_K * U.degK))
        self.reference_temperature = torch.as_tensor(temperature, dtype=torch.float32)
        height = torch.as_tensor(np.asarray(orography) * nd(1 * U.m), dtype=torch.float32)
        self.orography_modal = self.grid.to_modal(height)
        self.land = torch.as_tensor(np.asarray(land), dtype=torch.float32)
        self.equations = primitive_equations.PrimitiveEquations(
            temperature, self.orography_modal, self.coords, self.physics
        )
        self.time_step = nd(parameters.time_step_minutes * U.minute)
        self.geopotential = primitive_equations.Geopotential(
            self.sigma_coordinates, self.physics.g, self.physics.R
        )

    def make_stepper(
        self, start_times: np.ndarray
    ) -> Callable[[primitive_equations.State], primitive_equations.State]:
        """One SIL3 step of Δt followed by the exponential filter, for members starting at ``start_times``."""
        forcing = HeldSuarezForcing(self, start_times, self.land)
        equation = time_integration.compose_equations([self.equations, forcing])
        step = time_integration.imex_rk_sil3(equation, self.time_step)
        return time_integration.step_with_filters(
            step, [time_integration.exponential_step_filter(self.grid, self.time_step)]
        )

    def surface_log_pressure(self, mean_surface_pressure_hpa: float = 1000.0) -> torch.Tensor:
        """Modal ln p_s (nondimensional) in hydrostatic balance with the orography at 288 K, (1, m, l)."""
        nd = self.physics.nondimensionalize
        height = self.grid.to_nodal(self.orography_modal)
        scale_height = self.physics.R * nd(_REFERENCE_TEMPERATURE_K * U.degK) / self.physics.g
        nodal = math.log(nd(mean_surface_pressure_hpa * 100 * U.Pa)) - height / scale_height
        return self.grid.to_modal(nodal[None])

    def on_pressure_levels(
        self, state: primitive_equations.State, output: spherical_harmonic.Grid, levels_hpa: tuple[int, ...]
    ) -> dict[str, np.ndarray]:
        """Geopotential (m² s⁻²), temperature (K), u and v (m s⁻¹) on ``levels_hpa``, evaluated
        by exact spectral synthesis on ``output``'s grid and linear interpolation in ln p between
        σ levels (linear extrapolation below the lowest level): each (B, level, latitude, longitude).
        """
        nd, dim = self.physics.nondimensionalize, self.physics.dimensionalize
        temperature = output.to_nodal(state.temperature_variation) + self.reference_temperature[:, None, None]
        surface_pressure = torch.exp(output.to_nodal(state.log_surface_pressure))
        height = output.to_nodal(self.orography_modal)
        geopotential = self.geopotential(temperature, height)
        u, v = output.vor_div_to_uv_nodal(state.vorticity, state.divergence)
        pressures = torch.as_tensor([nd(level * 100 * U.Pa) for level in levels_hpa], dtype=torch.float32)
        fields = {"geopotential": geopotential, "temperature": temperature, "u": u, "v": v}
        on_levels = vertical_interpolation.interp_sigma_to_pressure(
            fields, pressures, self.sigma_centers, surface_pressure, extrapolate="linear"
        )
        unit = {"geopotential": U.m**2 / U.s**2, "temperature": U.degK, "u": U.m / U.s, "v": U.m / U.s}
        return {
            name: np.asarray(dim(value.numpy().astype(np.float64), unit[name]).m).swapaxes(-1, -2)
            for name, value in on_levels.items()
        }


def zonal_mean_coefficients(state: primitive_equations.State) -> np.ndarray:
    """The m = 0 column of every field, (B, 3 · level + 1, l): vorticity, divergence, temperature
    variation (each level) and ln p_s; the compact "climate" a restart is built from."""
    columns = [state.vorticity, state.divergence, state.temperature_variation, state.log_surface_pressure]
    return torch.cat([c[..., 0, :] for c in columns], dim=-2).numpy()


def state_from_zonal_mean(
    atmosphere: HeldSuarezAtmosphere,
    zonal: np.ndarray,
    noise: np.ndarray,
) -> primitive_equations.State:
    """A modal state: the zonal-mean columns ``zonal`` (B, 3 · level + 1, l) plus eddy vorticity
    ``noise`` (B, level, m, l) (nondimensional), with ln p_s balanced against the orography."""
    layers = atmosphere.parameters.layers
    shape = (zonal.shape[0], layers, *atmosphere.grid.modal_shape)
    fields = []
    for index in range(3):
        field = torch.zeros(shape)
        field[..., 0, :] = torch.as_tensor(
            zonal[:, index * layers : (index + 1) * layers], dtype=torch.float32
        )
        fields.append(field)
    fields[0] = fields[0] + torch.as_tensor(noise, dtype=torch.float32) * torch.as_tensor(
        atmosphere.grid.sh.mask, dtype=torch.float32
    )
    log_pressure = atmosphere.surface_log_pressure().expand(zonal.shape[0], 1, *atmosphere.grid.modal_shape)
    log_pressure = log_pressure.clone()  # eddies of ln p_s from the orography, zonal mean from ``zonal``
    log_pressure[..., 0, :] = torch.as_tensor(zonal[:, -1:], dtype=torch.float32)
    return primitive_equations.State(
        vorticity=fields[0],
        divergence=fields[1],
        temperature_variation=fields[2],
        log_surface_pressure=log_pressure,
        tracers={},
        sim_time=0.0,
    )


def rest_zonal_mean(atmosphere: HeldSuarezAtmosphere) -> np.ndarray:
    """Zonal-mean columns (1, 3 · level + 1, l) of an isothermal (288 K) atmosphere at rest whose
    surface pressure balances the orography: the start of a spin-up from rest."""
    layers = atmosphere.parameters.layers
    zonal = np.zeros((1, 3 * layers + 1, atmosphere.grid.modal_shape[1]), dtype=np.float32)
    zonal[0, -1] = atmosphere.surface_log_pressure()[0, 0].numpy()
    return zonal
