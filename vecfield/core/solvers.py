"""Integrators from the source (t = 0) to the data (t = 1), kept apart from schedule and network.

Time grids are plain increasing tensors of flow times, validated once (``check_time_grid``);
solvers receive the condition explicitly and hand it to every network evaluation unchanged.

Deterministic (probability-flow ODE dx/dt = u_t(x | c)), given ``velocity(x, t, cond)``:
  - ``euler`` (seed eq. 15.17), ``midpoint``, ``heun`` (trapezoidal predictor–corrector), ``rk4``:
    fixed grids, 1, 2, 2 and 4 network calls per step;
  - ``dopri5``: adaptive Dormand–Prince through torchdiffeq;
  - ``stochastic_heun``: Karras et al. (2022, Algorithm 2), Heun with "churn": before the step
    from t_i to t_{i+1} the noise-to-signal ratio σ̃ = σ/α is raised from σ̃_i to
    σ̃̂ = σ̃_i·(1 + γ), γ = min(S_churn/N, √2 − 1) where S_min ≤ σ̃_i ≤ S_max (else γ = 0), by adding
    fresh source noise to the rescaled state,

        x̂/α_t̂ = x/α_{t_i} + S_noise·√(σ̃̂² − σ̃_i²)·ε,   t̂ = the flow time where σ/α = σ̃̂,

    and Heun then integrates the probability-flow ODE from t̂ to t_{i+1}. The added noise undoes
    errors of earlier steps (it moves x_t̂ back towards the path's marginal); S_churn = 0 is Heun.
Diffusion samplers, given ``endpoints(x, t, cond) -> (x̂₁, x̂₀)`` and the schedule, on the
Gaussian posterior q(x_s | x_t, x₁) between grid times t < s (flow time):
  - ``ddpm``: ancestral sampling (seed eqs. 15.11/15.16) with the posterior variance β̃, or with
    the forward variance β (``variance="beta"``);
  - ``ddim``: x_s = α_s·x̂₁ + √(σ_s² − c²)·x̂₀ + c·z with c = η·√β̃ (η = 0: deterministic DDIM);
  - ``euler_maruyama``: the reverse SDE dx = [u + ½g²∇log p_t] dt + g dW̄, with g² the forward
    noising SDE's diffusion, g² = 2σ(σ·α̇/α − σ̇); it leaves the path's marginals unchanged.
Stochastic samplers add no noise on their last step (DDPM's z = 0 at the final step).

Each integrator is also a small ``Solver`` object, looked up by name in ``SOLVER_REGISTRY``
(``get_solver``); the names are presets, and a model accepts a ``Solver`` instance as well. A
solver receives the state and the time grid and takes what it needs from one ``Sampling``
bundle (velocity, endpoints, schedule, condition, noise, generator, churn settings).
"""

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchdiffeq import odeint

from vecfield.core.conditions import Condition
from vecfield.core.schedules import Schedule

Velocity = Callable[[Tensor, Tensor, Any], Tensor]
Endpoints = Callable[[Tensor, Tensor, Any], tuple[Tensor, Tensor]]

ODE_SOLVERS: dict[str, int] = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}  # network calls per step
DIFFUSION_SOLVERS: tuple[str, ...] = ("ddpm", "ddpm_beta", "ddim", "euler_maruyama")
GRIDS: tuple[str, ...] = ("uniform", "karras")


def check_time_grid(grid: Tensor) -> Tensor:
    """Validate a grid of flow times: 1-D, ≥ 2 points, finite, strictly increasing, within [0, 1]."""
    if not torch.is_tensor(grid) or grid.ndim != 1 or grid.numel() < 2 or not grid.is_floating_point():
        raise ValueError("a time grid must be a 1-D floating-point tensor of at least 2 flow times "
                         "(start and end); build one with time_grid(steps)")
    if not bool(torch.isfinite(grid).all()):
        raise ValueError(f"time grid has non-finite entries {grid.tolist()[:8]}; "
                         "use finite flow times in [0, 1]")
    if not bool((grid[1:] > grid[:-1]).all()):
        raise ValueError("time grid must be strictly increasing (from the source t = 0 towards the data "
                         "t = 1); "
                         "sort it and drop repeated times")
    if float(grid[0]) < 0 or float(grid[-1]) > 1:
        raise ValueError(f"time grid must lie in [0, 1]; got [{float(grid[0])}, {float(grid[-1])}]")
    return grid


def time_grid(steps: int, kind: str = "uniform", schedule: Schedule | None = None, t_start: float = 0.0,
              t_end: float = 1.0, rho: float = 7.0, sigma_max: float = 80.0,
              sigma_min: float = 0.002) -> Tensor:
    """A validated grid of ``steps + 1`` flow times from ``t_start`` to ``t_end`` (float64).

    ``uniform``: equal steps in t. ``karras``: equal steps in (σ_t/α_t)^{1/ρ} (Karras et al. 2022,
    eq. 5), with the noise-to-signal ratio clipped to [sigma_min, sigma_max] where the schedule's
    ends are 0 or ∞; the grid's first and last points are t_start and t_end exactly.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not 0 <= t_start < t_end <= 1:
        raise ValueError(f"need 0 ≤ t_start < t_end ≤ 1, got {t_start}, {t_end}")
    if kind == "uniform":
        return check_time_grid(torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64))
    if kind != "karras":
        raise ValueError(f"unknown time grid {kind!r}; choose one of {list(GRIDS)}")
    if schedule is None:
        raise ValueError("the karras grid is defined by the schedule's noise levels; pass schedule=")
    ends = schedule.noise_to_signal(torch.tensor([t_start, t_end], dtype=torch.float64))
    hi = float(ends[0].clamp(max=sigma_max)) ** (1 / rho)
    lo = float(ends[1].clamp(min=sigma_min)) ** (1 / rho)
    if not hi > lo:
        raise ValueError(f"the karras grid needs σ/α at t_start above σ/α at t_end; "
                         f"got {hi**rho} and {lo**rho}")
    fraction = torch.arange(steps + 1, dtype=torch.float64) / steps
    grid = schedule.time_at_noise_to_signal((hi + fraction * (lo - hi)) ** rho)
    grid[0], grid[-1] = t_start, t_end
    return check_time_grid(grid)


def _at(t: Tensor, x: Tensor) -> Tensor:
    """Flow time t (scalar) as a batch (B,) in x's dtype."""
    return t.to(x.dtype).expand(x.shape[0]).to(x.device)


def solve_ode(velocity: Velocity, x: Tensor, grid: Tensor, cond: Condition = None,
              method: str = "euler") -> Tensor:
    """Integrate dx/dt = velocity(x, t, cond) over ``grid`` with a fixed-step Runge–Kutta method.

    Shapes: x (B, …) the state at grid[0]; returns the state at grid[-1], same shape.
    """
    if method not in ODE_SOLVERS:
        raise ValueError(f"unknown ODE method {method!r}; choose one of {list(ODE_SOLVERS)}")
    check_time_grid(grid)
    for t0, t1 in itertools.pairwise(grid):
        h = (t1 - t0).to(x.dtype)
        if method == "euler":
            x = x + h * velocity(x, _at(t0, x), cond)
        elif method == "midpoint":
            half = velocity(x, _at(t0, x), cond)
            x = x + h * velocity(x + (h / 2) * half, _at((t0 + t1) / 2, x), cond)
        elif method == "heun":
            k1 = velocity(x, _at(t0, x), cond)
            k2 = velocity(x + h * k1, _at(t1, x), cond)
            x = x + (h / 2) * (k1 + k2)
        else:
            mid = _at((t0 + t1) / 2, x)
            k1 = velocity(x, _at(t0, x), cond)
            k2 = velocity(x + (h / 2) * k1, mid, cond)
            k3 = velocity(x + (h / 2) * k2, mid, cond)
            k4 = velocity(x + h * k3, _at(t1, x), cond)
            x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


@dataclass(frozen=True)
class Churn:
    """Settings of ``stochastic_heun`` (Karras et al. 2022, Algorithm 2), in units of σ/α.

    The defaults are GenCast's (Price et al. 2024, with σ_data = 1): S_churn 2.5 where σ ≥ 0.75,
    S_max ∞ and S_noise 1.05 (slightly more noise than removed, against the denoiser's bias
    towards the mean). ``Churn(s_churn=0)`` samples as deterministic Heun.
    """

    s_churn: float = 2.5
    s_min: float = 0.75
    s_max: float = math.inf
    s_noise: float = 1.05

    def __post_init__(self) -> None:
        if not self.s_churn >= 0:
            raise ValueError(f"s_churn must be ≥ 0 (0: no churn), got {self.s_churn}")
        if not 0 <= self.s_min <= self.s_max:
            raise ValueError(f"need 0 ≤ s_min ≤ s_max, got s_min={self.s_min}, s_max={self.s_max}")
        if not self.s_noise > 0:
            raise ValueError(f"s_noise must be positive (1: the noise removed), got {self.s_noise}")


def solve_stochastic_heun(velocity: Velocity, schedule: Schedule, x: Tensor, grid: Tensor,
                          draw_noise: Callable[[], Tensor], cond: Condition = None,
                          churn: Churn = Churn()) -> Tensor:
    """Heun with churn (module docstring) over ``grid``; 2 network calls per step.

    x (B, …) at grid[0]; ``draw_noise()`` returns a fresh draw ε of the source distribution, x's
    shape, for each step that churns. σ̃̂ is capped at σ̃ at grid[0], so t̂ never precedes the grid.
    Returns the state at grid[-1].
    """
    check_time_grid(grid)
    gamma = min(churn.s_churn / (grid.numel() - 1), math.sqrt(2) - 1)
    ratios = schedule.noise_to_signal(grid.to(torch.float64)).tolist()
    for i, (t0, t1) in enumerate(itertools.pairwise(grid)):
        ratio = ratios[i]
        if gamma > 0 and math.isfinite(ratio) and churn.s_min <= ratio <= churn.s_max:
            raised = min(ratio * (1 + gamma), ratios[0])
            if raised > ratio:
                t_hat = schedule.time_at_noise_to_signal(torch.tensor([raised], dtype=torch.float64))
                t_hat = t_hat.clamp(float(grid[0]), float(t0)).to(grid)[0]
                alpha = schedule.coefficients(torch.stack([t0, t_hat]).to(torch.float64)).alpha.tolist()
                added = churn.s_noise * alpha[1] * math.sqrt(raised**2 - ratio**2)
                x = (alpha[1] / alpha[0]) * x + added * draw_noise()
                t0 = t_hat
        x = solve_ode(velocity, x, torch.stack([t0, t1]), cond, "heun")
    return x


def solve_dopri5(velocity: Velocity, x: Tensor, t_start: float = 0.0, t_end: float = 1.0,
                 cond: Condition = None, rtol: float = 1e-5, atol: float = 1e-5) -> Tensor:
    """Adaptive Dormand–Prince 5(4) from t_start to t_end (torchdiffeq; t_end < t_start runs backwards)."""

    def field(t: Tensor, state: Tensor) -> Tensor:
        return velocity(state, _at(t, state), cond)

    times = torch.tensor([t_start, t_end], dtype=x.dtype, device=x.device)
    # step_t: land exactly on t_end instead of stepping past it (the field is undefined beyond)
    return odeint(field, x, times, method="dopri5", rtol=rtol, atol=atol, options={"step_t": times[1:]})[-1]


def _posterior(schedule: Schedule, t: Tensor, s: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Coefficients of q(x_s | x_t, x₁) = N(a·x_t + b·x₁, β̃) and the forward variance β of the step."""
    ct = schedule.coefficients(t.reshape(1)).expand_as(x)
    cs = schedule.coefficients(s.reshape(1)).expand_as(x)
    ratio = ct.alpha / cs.alpha  # α_{t|s}
    beta = ct.sigma**2 - ratio**2 * cs.sigma**2  # σ²_{t|s}
    a = ratio * cs.sigma**2 / ct.sigma**2
    b = cs.alpha * beta / ct.sigma**2
    return a, b, beta * cs.sigma**2 / ct.sigma**2, beta


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    where = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=where).to(x.device)


def solve_diffusion(endpoints: Endpoints, schedule: Schedule, x: Tensor, grid: Tensor, cond: Condition = None,
                    method: str = "ddpm", eta: float = 0.0,
                    generator: torch.Generator | None = None) -> Tensor:
    """Run a diffusion sampler (``ddpm``, ``ddpm_beta``, ``ddim`` or ``euler_maruyama``) over ``grid``.

    ``endpoints(x, t, cond)`` returns the network's (x̂₁, x̂₀) at x (B, …), t (B,). One network call per
    step. Returns the state at grid[-1].
    """
    if method not in DIFFUSION_SOLVERS:
        raise ValueError(f"unknown diffusion sampler {method!r}; choose one of {list(DIFFUSION_SOLVERS)}")
    check_time_grid(grid)
    last = grid.numel() - 2
    for i, (t, s) in enumerate(itertools.pairwise(grid)):
        x1_hat, x0_hat = endpoints(x, _at(t, x), cond)
        z = _noise(x, generator) if i < last else torch.zeros_like(x)
        if method == "euler_maruyama":
            c = schedule.coefficients(t.reshape(1)).expand_as(x)
            h = (s - t).to(x.dtype)
            velocity = c.d_alpha * x1_hat + c.d_sigma * x0_hat
            # ½g²∇log p = −(σα̇/α − σ̇)·x̂₀, finite even where σ → 0
            excess = c.sigma * c.d_alpha / c.alpha - c.d_sigma
            x = x + h * (velocity - excess * x0_hat) + torch.sqrt(2 * c.sigma * excess * h) * z
            continue
        a, b, posterior_var, beta = _posterior(schedule, t, s, x)
        if method in ("ddpm", "ddpm_beta"):
            var = posterior_var if method == "ddpm" else beta
            x = a * x + b * x1_hat + var.clamp_min(0).sqrt() * z
        else:
            cs = schedule.coefficients(s.reshape(1)).expand_as(x)
            c_noise = eta * posterior_var.clamp_min(0).sqrt()
            x = cs.alpha * x1_hat + (cs.sigma**2 - c_noise**2).clamp_min(0).sqrt() * x0_hat + c_noise * z
    return x


# ------------------------------------------------------------------------------ solver objects
@dataclass(frozen=True)
class Sampling:
    """What a solver may use besides the state and the grid.

    velocity(x, t, cond): dx/dt of the probability-flow ODE; endpoints(x, t, cond): (x̂₁, x̂₀);
    t_start, t_end: the integration interval (adaptive solvers); draw_noise(): a fresh source draw
    of x's shape (churn noise); generator: the diffusion samplers' noise; churn: Heun's churn.
    """

    velocity: Velocity
    endpoints: Endpoints
    schedule: Schedule
    cond: Condition = None
    t_start: float = 0.0
    t_end: float = 1.0
    draw_noise: Callable[[], Tensor] | None = None
    generator: torch.Generator | None = None
    churn: Churn = Churn()


class Solver(ABC):
    """Integrates from the source to the data: ``solver(x, grid, sampling) -> x at the end``.

    ``calls_per_step``: network evaluations per grid step (None for an adaptive solver, which
    takes ``grid=None`` and integrates over [sampling.t_start, sampling.t_end]).
    """

    name: str
    calls_per_step: int | None

    @abstractmethod
    def __call__(self, x: Tensor, grid: Tensor | None, sampling: Sampling) -> Tensor: ...

    @property
    def adaptive(self) -> bool:
        return self.calls_per_step is None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _grid(grid: Tensor | None, solver: Solver) -> Tensor:
    if grid is None:
        raise ValueError(f"the {solver.name} solver steps over a time grid; pass one (time_grid(steps))")
    return grid


class RungeKutta(Solver):
    """``euler``, ``midpoint``, ``heun`` or ``rk4`` on the fixed grid (``solve_ode``)."""

    def __init__(self, name: str) -> None:
        if name not in ODE_SOLVERS:
            raise ValueError(f"unknown ODE method {name!r}; choose one of {list(ODE_SOLVERS)}")
        self.name, self.calls_per_step = name, ODE_SOLVERS[name]

    def __call__(self, x: Tensor, grid: Tensor | None, sampling: Sampling) -> Tensor:
        return solve_ode(sampling.velocity, x, _grid(grid, self), sampling.cond, self.name)


class Dopri5(Solver):
    """Adaptive Dormand–Prince over [t_start, t_end] (``solve_dopri5``)."""

    name, calls_per_step = "dopri5", None

    def __call__(self, x: Tensor, grid: Tensor | None, sampling: Sampling) -> Tensor:
        return solve_dopri5(sampling.velocity, x, sampling.t_start, sampling.t_end, sampling.cond)


class StochasticHeun(Solver):
    """Heun with churn (``solve_stochastic_heun``); needs ``sampling.draw_noise``."""

    name, calls_per_step = "stochastic_heun", 2

    def __call__(self, x: Tensor, grid: Tensor | None, sampling: Sampling) -> Tensor:
        if sampling.draw_noise is None:
            raise ValueError("stochastic_heun adds fresh source noise at each churning step; "
                             "give the sampling a draw_noise")
        return solve_stochastic_heun(sampling.velocity, sampling.schedule, x, _grid(grid, self),
                                     sampling.draw_noise, sampling.cond, sampling.churn)


class DiffusionSampler(Solver):
    """``ddpm``, ``ddpm_beta``, ``ddim`` or ``euler_maruyama`` from the predicted endpoints
    (``solve_diffusion``)."""

    calls_per_step = 1

    def __init__(self, name: str) -> None:
        if name not in DIFFUSION_SOLVERS:
            raise ValueError(f"unknown diffusion sampler {name!r}; choose one of {list(DIFFUSION_SOLVERS)}")
        self.name = name

    def __call__(self, x: Tensor, grid: Tensor | None, sampling: Sampling) -> Tensor:
        grid = _grid(grid, self)
        if self.name == "euler_maruyama" and float(sampling.schedule.coefficients(grid[:1]).alpha[0]) == 0:
            raise ValueError("euler_maruyama needs α_t > 0 at t_start (its diffusion g² ∝ 1/α); "
                             "build the model with t_start=1e-3")
        return solve_diffusion(sampling.endpoints, sampling.schedule, x, grid, sampling.cond, self.name,
                               generator=sampling.generator)


SOLVER_REGISTRY: dict[str, Solver] = {
    **{name: RungeKutta(name) for name in ODE_SOLVERS},
    "dopri5": Dopri5(),
    "stochastic_heun": StochasticHeun(),
    **{name: DiffusionSampler(name) for name in DIFFUSION_SOLVERS},
}
SOLVERS: tuple[str, ...] = tuple(SOLVER_REGISTRY)
#: network calls per step of every fixed-grid solver
CALLS_PER_STEP: dict[str, int] = {name: solver.calls_per_step for name, solver in SOLVER_REGISTRY.items()
                                  if solver.calls_per_step is not None}


def get_solver(solver: str | Solver) -> Solver:
    """The solver called ``solver`` (one of ``SOLVERS``), or the ``Solver`` instance itself."""
    if isinstance(solver, Solver):
        return solver
    if solver not in SOLVER_REGISTRY:
        raise ValueError(f"unknown solver {solver!r}; choose one of {list(SOLVERS)} or pass a Solver")
    return SOLVER_REGISTRY[solver]
