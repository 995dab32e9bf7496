"""Schedules of the one Gaussian probability path x_t = α_t·x₁ + σ_t·x₀.

Flow time t ∈ [0, 1]; t = 0 is the source (x₀ ~ noise, or a caller-supplied state), t = 1 the
data x₁. Every schedule returns α_t, σ_t and their time derivatives α̇_t, σ̇_t, which is all the
targets, objective, solvers and likelihood need. Diffusion conventions are converted here, at the
boundary: DDPM's step index n ∈ {0, …, N} is t = 1 − n/N, and the continuous VP diffusion time is
s = s_min + (1 − t)(1 − s_min); EDM's noise level σ is the VE schedule's σ_t (with α_t = 1).

Schedules:
  - ``CondOTSchedule``: conditional OT / rectified flow, α = t, σ = 1 − t (seed eq. 15.15);
  - ``CosineSchedule``: α = sin(πt/2), σ = cos(πt/2);
  - ``VPSchedule``: continuous variance-preserving diffusion, β(s) linear from 0.1 to 20 per unit
    diffusion time (DDPM's β from 1e-4 to 0.02 over N = 1000 steps);
  - ``DDPMSchedule``: the discrete ᾱ table of seed eqs. 15.7–15.8, interpolated linearly in n;
  - ``EDMSchedule``: variance exploding, α = 1 and σ_t on EDM's ρ-warped grid between σ_max (t=0)
    and σ_min (t=1), so a uniform time grid is the Karras et al. (2022) sampling grid.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


def check_time(t: Tensor) -> None:
    """Raise ValueError unless every entry of ``t`` is a finite number in [0, 1]."""
    if not torch.is_tensor(t) or not t.is_floating_point():
        raise TypeError(f"flow time must be a floating-point tensor, got {type(t).__name__}"
                        + (f" of dtype {t.dtype}" if torch.is_tensor(t) else ""))
    if t.numel() and not bool(((t >= 0) & (t <= 1)).all()):
        bad = t[~((t >= 0) & (t <= 1))].flatten()[:3].tolist()
        raise ValueError(f"flow time must lie in [0, 1] (t = 0 source, t = 1 data); got values such as "
                         f"{bad}. Convert diffusion step indices or EDM noise levels first.")


@dataclass(frozen=True)
class PathCoefficients:
    """α_t, σ_t, α̇_t = dα/dt and σ̇_t = dσ/dt, each shaped like the flow time that produced them."""

    alpha: Tensor
    sigma: Tensor
    d_alpha: Tensor
    d_sigma: Tensor

    def expand_as(self, x: Tensor) -> "PathCoefficients":
        """Reshape per-example coefficients (B,) to (B, 1, …, 1) so they broadcast against x (B, …)."""
        shape = (-1,) + (1,) * (x.ndim - 1)
        return PathCoefficients(*(c.reshape(shape).to(x.dtype) for c in
                                  (self.alpha, self.sigma, self.d_alpha, self.d_sigma)))


class Schedule(ABC):
    """α_t and σ_t of the path x_t = α_t·x₁ + σ_t·x₀ with their derivatives, for t ∈ [0, 1]."""

    name: str = "schedule"

    def coefficients(self, t: Tensor) -> PathCoefficients:
        """Coefficients at flow time ``t`` (any shape, floating point, in [0, 1])."""
        check_time(t)
        return self._coefficients(t)

    @abstractmethod
    def _coefficients(self, t: Tensor) -> PathCoefficients: ...

    def point_and_velocity(self, x1: Tensor, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """x_t = α_t·x₁ + σ_t·x₀ and the conditional velocity u_t = α̇_t·x₁ + σ̇_t·x₀, both (B, …).

        The training hot path: ``t`` (B,) is trusted (sampled internally or checked by the caller),
        so nothing here reads a value back to the host.
        """
        c = self._coefficients(t).expand_as(x1)
        return torch.addcmul(c.sigma * x0, c.alpha, x1), torch.addcmul(c.d_sigma * x0, c.d_alpha, x1)

    def noise_to_signal(self, t: Tensor) -> Tensor:
        """σ_t/α_t: the EDM noise level of the rescaled path x_t/α_t (∞ where α_t = 0)."""
        c = self.coefficients(t)
        return c.sigma / c.alpha

    def time_at_noise_to_signal(self, ratio: Tensor, iterations: int = 60) -> Tensor:
        """Flow time where σ_t/α_t equals ``ratio`` (bisection; the ratio decreases in t).

        Ratios above σ_0/α_0 map to t = 0 and ratios below σ_1/α_1 map to t = 1.
        """
        dtype = ratio.dtype if ratio.is_floating_point() else torch.float64
        ratio = ratio.to(dtype)
        lo = torch.zeros_like(ratio)
        hi = torch.ones_like(ratio)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            above = self.noise_to_signal(mid) > ratio
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return (lo + hi) / 2

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CondOTSchedule(Schedule):
    """Conditional OT / rectified flow: α_t = t, σ_t = 1 − t (seed eq. 15.15)."""

    name = "condot"

    def _coefficients(self, t: Tensor) -> PathCoefficients:
        return PathCoefficients(t, 1 - t, torch.ones_like(t), -torch.ones_like(t))

    def point_and_velocity(self, x1: Tensor, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """x_t = x₀ + t·(x₁ − x₀) (one fused lerp) and u_t = x₁ − x₀, both (B, …)."""
        weight = t.reshape((-1,) + (1,) * (x1.ndim - 1)).to(x1.dtype)
        return torch.lerp(x0, x1, weight), x1 - x0


class CosineSchedule(Schedule):
    """Trigonometric (variance-preserving) path: α_t = sin(πt/2), σ_t = cos(πt/2)."""

    name = "cosine"

    def _coefficients(self, t: Tensor) -> PathCoefficients:
        angle = t * (math.pi / 2)
        return PathCoefficients(torch.sin(angle), torch.cos(angle),
                                (math.pi / 2) * torch.cos(angle), -(math.pi / 2) * torch.sin(angle))


class VPSchedule(Schedule):
    """Continuous VP diffusion (score SDE): ᾱ(s) = exp(−∫₀ˢ β), β(s) = β_min + s(β_max − β_min).

    β_min = 0.1 and β_max = 20 per unit diffusion time are DDPM's β from 1e-4 to 0.02 over 1000
    steps. Diffusion time s = s_min + (1 − t)(1 − s_min): s_min > 0 keeps σ̇ finite at t = 1 (where
    σ_1 = √(1 − ᾱ(s_min)) ≈ 0.01 for the defaults, the noise of DDPM's first step).
    α_t = √ᾱ(s), σ_t = √(1 − ᾱ(s)), α̇_t = ½β(s)(1 − s_min)·α_t, σ̇_t = −α_t·α̇_t/σ_t.
    """

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, s_min: float = 1e-3) -> None:
        if not 0 < beta_min <= beta_max:
            raise ValueError(f"need 0 < beta_min ≤ beta_max, got {beta_min}, {beta_max}")
        if not 0 < s_min < 1:
            raise ValueError(f"s_min must lie in (0, 1) so that σ̇ stays finite at t = 1, got {s_min}")
        self.beta_min, self.beta_max, self.s_min = beta_min, beta_max, s_min

    def _coefficients(self, t: Tensor) -> PathCoefficients:
        s = self.s_min + (1 - t) * (1 - self.s_min)
        log_alpha_bar = -(self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2)
        alpha = torch.exp(0.5 * log_alpha_bar)
        sigma = torch.sqrt(-torch.expm1(log_alpha_bar))
        beta = self.beta_min + s * (self.beta_max - self.beta_min)
        d_alpha = 0.5 * beta * (1 - self.s_min) * alpha
        return PathCoefficients(alpha, sigma, d_alpha, -alpha * d_alpha / sigma)

    def __repr__(self) -> str:
        return f"VPSchedule(beta_min={self.beta_min}, beta_max={self.beta_max}, s_min={self.s_min})"


class DDPMSchedule(Schedule):
    """The discrete DDPM table (seed eqs. 15.7–15.8) as a path in flow time.

    Forward chain (eq. 15.7): x_n = √(1 − β_n)·x_{n−1} + √β_n·ε, n = 1…N, β linear from
    ``beta_start`` to ``beta_end``. Marginal (eq. 15.8): x_n = √ᾱ_n·x₀ + √(1 − ᾱ_n)·ε with
    ᾱ_n = ∏_{i ≤ n}(1 − β_i) and ᾱ_0 = 1. Step n is flow time t = 1 − n/N; between steps α and σ
    are interpolated linearly in n, so α̇ and σ̇ are piecewise constant and finite everywhere.
    """

    name = "ddpm"

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps must be ≥ 1, got {num_steps}")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need 0 < beta_start ≤ beta_end < 1, got {beta_start}, {beta_end}")
        self.num_steps, self.beta_start, self.beta_end = num_steps, beta_start, beta_end
        self.betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - self.betas, 0)])
        self.alpha_bar = alpha_bar  # (N + 1,), index n = step
        self._alpha = alpha_bar.sqrt()
        self._sigma = (1 - alpha_bar).sqrt()

    def time_of_step(self, n: Tensor | int) -> Tensor:
        """Flow time t = 1 − n/N of step index n (float64)."""
        return 1 - torch.as_tensor(n, dtype=torch.float64) / self.num_steps

    def _coefficients(self, t: Tensor) -> PathCoefficients:
        n = (1 - t) * self.num_steps
        k = n.detach().floor().long().clamp(0, self.num_steps - 1)
        frac = n - k.to(n.dtype)
        table_alpha, table_sigma = self._alpha.to(t), self._sigma.to(t)
        a0, a1 = table_alpha[k], table_alpha[k + 1]
        s0, s1 = table_sigma[k], table_sigma[k + 1]
        # dn/dt = −N
        return PathCoefficients(a0 + frac * (a1 - a0), s0 + frac * (s1 - s0),
                                -self.num_steps * (a1 - a0), -self.num_steps * (s1 - s0))

    def __repr__(self) -> str:
        return (f"DDPMSchedule(num_steps={self.num_steps}, beta_start={self.beta_start}, "
                f"beta_end={self.beta_end})")


class EDMSchedule(Schedule):
    """Variance exploding path of EDM: α_t = 1, σ_t = (σ_max^{1/ρ} + t(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ.

    t = 0 is σ_max (source ≈ N(0, σ_max² I)), t = 1 is σ_min. A uniform grid in t is Karras et
    al.'s sampling grid; uniform training times are GenCast's σ distribution on [σ_min, σ_max].
    """

    name = "edm"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        if rho <= 0:
            raise ValueError(f"rho must be positive, got {rho}")
        self.sigma_min, self.sigma_max, self.rho = sigma_min, sigma_max, rho

    def _coefficients(self, t: Tensor) -> PathCoefficients:
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        root = hi + t * (lo - hi)
        sigma = root**self.rho
        d_sigma = self.rho * root ** (self.rho - 1) * (lo - hi)
        return PathCoefficients(torch.ones_like(t), sigma, torch.zeros_like(t), d_sigma)

    def time_at_noise_to_signal(self, ratio: Tensor, iterations: int = 60) -> Tensor:
        """Closed-form inverse of σ_t (clamped to [σ_min, σ_max], i.e. t ∈ [0, 1])."""
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        ratio = ratio.clamp(self.sigma_min, self.sigma_max)
        return ((hi - ratio ** (1 / self.rho)) / (hi - lo)).clamp(0, 1)

    def __repr__(self) -> str:
        return f"EDMSchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, rho={self.rho})"


SCHEDULES: dict[str, Callable[[], Schedule]] = {
    "condot": CondOTSchedule,
    "cosine": CosineSchedule,
    "vp": VPSchedule,
    "ddpm": DDPMSchedule,
    "edm": EDMSchedule,
}


def get_schedule(schedule: str | Schedule) -> Schedule:
    """A schedule instance from its name (default parameters) or the instance itself."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)} "
                         "or pass a Schedule instance (e.g. EDMSchedule(sigma_max=88))")
    return SCHEDULES[schedule]()


class GaussianPath:
    """The path x_t = α_t·x₁ + σ_t·x₀ under one schedule; x of any shape (B, …), t of shape (B,)."""

    def __init__(self, schedule: str | Schedule) -> None:
        self.schedule = get_schedule(schedule)

    def interpolate(self, x1: Tensor, x0: Tensor, t: Tensor) -> tuple[Tensor, PathCoefficients]:
        """x_t (B, …) and the broadcast coefficients (B, 1, …) at per-example times t (B,)."""
        if x1.shape != x0.shape:
            raise ValueError(f"data x1 {tuple(x1.shape)} and source x0 {tuple(x0.shape)} must have the same "
                             "shape; supply a source of the data's shape")
        if t.shape != (x1.shape[0],):
            raise ValueError(f"expected one time per example, shape ({x1.shape[0]},), got {tuple(t.shape)}")
        c = self.schedule.coefficients(t).expand_as(x1)
        return c.alpha * x1 + c.sigma * x0, c
