"""One objective for flow matching, denoising diffusion, EDM and the deterministic forecaster.

    L = E_{t, (x₀, x₁)} [ λ(t) · mean_elements( w ⊙ (f_θ(x_t, t, c) − y_t(x₁, x₀))² ) ]

with x_t = α_t·x₁ + σ_t·x₀, the target y_t (velocity, ε, x₁ or score; see ``targets``), a time
sampler for t, a per-time weighting λ(t) and an optional per-element weight w broadcastable to x₁
(e.g. latitude × level × variable weights). Choices recover:
  - flow matching (seed eq. 15.15): CondOT schedule, velocity target, uniform t, λ = 1;
  - the ε-prediction loss (seed eq. 15.10): DDPM table, ε target, discrete uniform steps, λ = 1;
  - EDM: VE schedule, x₁ target with preconditioning, log-normal σ, λ = 1/c_out²;
  - denoising score matching (energy models): score target, λ = σ_t² (the ε loss in score space);
  - the deterministic forecaster: zero (or current-state) source, fixed t = 0, velocity target,
    λ = 1, so L = mean(w ⊙ (f_θ(x₀, 0, c) − (x₁ − x₀))²), a weighted MSE of the residual.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vecfield.core.conditions import Condition
from vecfield.core.schedules import DDPMSchedule, GaussianPath, PathCoefficients, Schedule, check_time
from vecfield.core.targets import check_target, target_value

#: A network call already expressed in the objective's target space: (x_t, t, cond) -> prediction.
Predictor = Callable[[Tensor, Tensor, Any], Tensor]


class TimeSampler(ABC):
    """Draws one flow time per training example: ``(batch, generator, dtype, device) -> t (batch,)``."""

    @abstractmethod
    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor: ...

    @staticmethod
    def _uniform(batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        where = generator.device if generator is not None else device
        return torch.rand(batch, generator=generator, dtype=dtype, device=where).to(device)


class UniformTime(TimeSampler):
    """t ~ U[t_min, t_max]."""

    def __init__(self, t_min: float = 0.0, t_max: float = 1.0) -> None:
        if not 0 <= t_min < t_max <= 1:
            raise ValueError(f"need 0 ≤ t_min < t_max ≤ 1, got {t_min}, {t_max}")
        self.t_min, self.t_max = t_min, t_max

    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        u = self._uniform(batch, generator, dtype, device)
        if self.t_min == 0 and self.t_max == 1:
            return u
        return self.t_min + (self.t_max - self.t_min) * u


class LogitNormalTime(TimeSampler):
    """t = sigmoid(m + s·n), n ~ N(0, 1): concentrates training mid-path (Esser et al. 2024)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.mean, self.std = mean, std

    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        where = generator.device if generator is not None else device
        n = torch.randn(batch, generator=generator, dtype=dtype, device=where).to(device)
        return torch.sigmoid(self.mean + self.std * n)


class LogNormalSigmaTime(TimeSampler):
    """EDM's training noise: ln(σ_t/α_t) ~ N(P_mean, P_std²), mapped to flow time by the schedule.

    Noise levels beyond the schedule's range are clamped to its ends (t = 0 or t = 1).
    """

    def __init__(self, schedule: Schedule, mean: float = -1.2, std: float = 1.2) -> None:
        if std <= 0:
            raise ValueError(f"std must be positive, got {std}")
        self.schedule, self.mean, self.std = schedule, mean, std

    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        where = generator.device if generator is not None else device
        n = torch.randn(batch, generator=generator, dtype=torch.float64, device=where).to(device)
        return self.schedule.time_at_noise_to_signal(torch.exp(self.mean + self.std * n)).to(dtype)


class DiscreteStepTime(TimeSampler):
    """DDPM's uniform step index n ∈ {1, …, N} as flow time t = 1 − n/N (seed eq. 15.10)."""

    def __init__(self, num_steps: int = 1000) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps must be ≥ 1, got {num_steps}")
        self.num_steps = num_steps

    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        where = generator.device if generator is not None else device
        n = torch.randint(1, self.num_steps + 1, (batch,), generator=generator, device=where).to(device)
        return 1 - n.to(dtype) / self.num_steps


class FixedTime(TimeSampler):
    """Every example at the same time (t = 0 for the deterministic one-step forecaster)."""

    def __init__(self, t: float = 0.0) -> None:
        if not 0 <= t <= 1:
            raise ValueError(f"the fixed time must lie in [0, 1], got {t}")
        self.t = t

    def __call__(self, batch: int, generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        return torch.full((batch,), self.t, dtype=dtype, device=device)


TIME_SAMPLERS: tuple[str, ...] = ("uniform", "logit_normal", "lognormal_sigma", "ddpm_steps", "fixed")


def get_time_sampler(name: str | TimeSampler, schedule: Schedule) -> TimeSampler:
    """The time sampler called ``name`` (one of ``TIME_SAMPLERS``) for ``schedule``, or ``name`` itself."""
    if isinstance(name, TimeSampler):
        return name
    if name == "uniform":
        return UniformTime()
    if name == "logit_normal":
        return LogitNormalTime()
    if name == "lognormal_sigma":
        return LogNormalSigmaTime(schedule)
    if name == "ddpm_steps":
        if not isinstance(schedule, DDPMSchedule):
            raise ValueError("the ddpm_steps time sampler needs the ddpm schedule; "
                             "use time_sampler='uniform'")
        return DiscreteStepTime(schedule.num_steps)
    if name == "fixed":
        return FixedTime(0.0)
    raise ValueError(f"unknown time sampler {name!r}; choose one of {list(TIME_SAMPLERS)} "
                     "or pass a TimeSampler")


def uniform_weighting(c: PathCoefficients) -> Tensor:
    """λ(t) = 1."""
    return torch.ones_like(c.alpha)


def noise_variance_weighting(c: PathCoefficients) -> Tensor:
    """λ(t) = σ_t²: turns the score loss ‖s − (−x₀/σ_t)‖² into ‖σ_t·s + x₀‖² (Song & Ermon 2019)."""
    return c.sigma**2


@dataclass(frozen=True)
class EDMWeighting:
    """λ = 1/c_out² = (σ̃² + σ_d²)/(σ̃·σ_d)², σ̃ = σ_t/α_t: unit loss weight per noise level (EDM)."""

    sigma_data: float = 1.0

    def __call__(self, c: PathCoefficients) -> Tensor:
        s = c.sigma / c.alpha
        return (s**2 + self.sigma_data**2) / (s * self.sigma_data) ** 2


Weighting = Callable[[PathCoefficients], Tensor]


WEIGHTINGS: tuple[str, ...] = ("uniform", "edm", "sigma_squared")


def get_weighting(name: str, sigma_data: float = 1.0) -> Weighting:
    """The loss weighting λ called ``name`` (one of ``WEIGHTINGS``); ``sigma_data`` for EDM's."""
    if name == "uniform":
        return uniform_weighting
    if name == "edm":
        return EDMWeighting(sigma_data)
    if name == "sigma_squared":
        return noise_variance_weighting
    raise ValueError(f"unknown weighting {name!r}; choose one of {list(WEIGHTINGS)}")


@dataclass(frozen=True)
class LossOutput:
    """The training loss and what it was computed from, so that a caller can reuse the one forward
    pass (the one-step forecaster feeds its prediction into the next autoregressive step).

    loss: scalar; prediction: f_θ(x_t, t, c) in the target space, x₁'s shape; x_t: the point on the
    path, x₁'s shape; t: (B,) the flow times.
    """

    loss: Tensor
    prediction: Tensor
    x_t: Tensor
    t: Tensor


@dataclass(frozen=True)
class Objective:
    """The loss above for one choice of path, target, time sampler and weighting."""

    path: GaussianPath
    target: str
    time_sampler: TimeSampler
    weighting: Weighting = uniform_weighting

    def __post_init__(self) -> None:
        check_target(self.target)

    def loss(self, predict: Predictor, x1: Tensor, x0: Tensor, cond: Condition = None,
             weight: Tensor | None = None, t: Tensor | None = None,
             generator: torch.Generator | None = None) -> LossOutput:
        """The loss for data x₁ (B, …) paired with source x₀ (B, …), with its prediction and x_t.

        ``predict(x_t, t, cond)`` is the model in target space; ``t`` (B,) overrides the time sampler;
        ``weight`` is broadcast against x₁ (per-element weights, e.g. (1, nodes, channels)).
        """
        if t is None:
            t = self.time_sampler(x1.shape[0], generator, x1.dtype, x1.device)
        else:
            check_time(t)
        if x1.shape != x0.shape:
            raise ValueError(f"data x1 {tuple(x1.shape)} and source x0 {tuple(x0.shape)} must have the same "
                             "shape; supply a source of the data's shape")
        if t.shape != (x1.shape[0],):
            raise ValueError(f"expected one time per example, shape ({x1.shape[0]},), got {tuple(t.shape)}")
        fast = self.target == "velocity" and self.weighting is uniform_weighting
        if fast:  # flow matching: x_t and u_t straight from the schedule, no coefficient tensors
            x_t, target = self.path.schedule.point_and_velocity(x1, x0, t)
        else:
            c = self.path.schedule._coefficients(t).expand_as(x1)
            x_t, target = c.alpha * x1 + c.sigma * x0, target_value(self.target, x1, x0, c)
        prediction = predict(x_t, t, cond)
        if prediction.shape != x1.shape:
            raise ValueError(f"the network returned shape {tuple(prediction.shape)} for data of shape "
                             f"{tuple(x1.shape)}; its output must match the data's shape")
        if fast and weight is None:
            return LossOutput(F.mse_loss(prediction, target), prediction, x_t, t)
        squared = (prediction - target) ** 2
        if weight is not None:
            try:
                squared = squared * torch.broadcast_to(weight.to(squared), squared.shape)
            except RuntimeError as error:
                raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to the "
                                 f"data's shape {tuple(x1.shape)}; give one weight per element, e.g. shape "
                                 f"(1, *{tuple(x1.shape[1:])})") from error
        if self.weighting is not uniform_weighting:  # λ = 1 needs no multiplication
            squared = self.weighting(c) * squared
        return LossOutput(squared.mean(), prediction, x_t, t)
