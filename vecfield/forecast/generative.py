"""The generative one-step forecaster: the same learner, condition and residual coordinates as
:mod:`vecfield.forecast.step`, with a non-degenerate path from noise to the normalized residual.

In the residual coordinates y = (S − S(t))/σ^Δ the data is y₁ = r(t) and the source is noise y₀ = ε
(instead of 0), on the Gaussian path y_τ = α_τ·r + σ_τ·ε of flow time τ ∈ [0, 1]:

  - ``flow_matching``: α = τ, σ = 1 − τ, velocity target r − ε, uniform τ;
  - ``edm`` (GenCast): α = 1, σ_τ on EDM's ρ-warped schedule between σ_max = 88 (τ = 0) and
    σ_min = 0.02 (τ = 1) with ρ = 7, training τ uniform (GenCast's training noise distribution),
    preconditioned denoiser with σ_data = 1 and loss weight λ(σ) = 1/c_out² = (σ² + 1)/σ².

Both minimise

    L = mean_{b,n,c} λ(τ_b) · w[n, c] · (f_θ(y_τ, τ, cond)[b, n, c] − target[b, n, c])²          (1)

with the forecaster's latitude × level × variable weights w and the condition of GraphCast
(previous states, forcings at t − Δt, t, t + Δt, static fields; ``OneStepForecaster.condition``).
Sampling integrates the probability-flow ODE with Heun's method on ``sampling_steps`` steps
(2 network calls per step; on the EDM schedule a uniform τ grid is Karras et al.'s), one member per batch row.
With ``sampling_churn`` S_churn > 0 it is GenCast's stochastic sampler instead: Heun with churn
(``vecfield.core.solvers.solve_stochastic_heun``, GenCast's S_min 0.75, S_max ∞, S_noise 1.05),
whose added noise is the sphere noise (2) as well.

Noise on the sphere: the source ε at grid node n (cell of relative area a_n, mean 1) is

    ε[n, c] = z[n, c] / √a_n,   z ~ N(0, 1) i.i.d.                                              (2)

so the area integral of the noise over any union R of cells, Σ_{n∈R} a_n·ε[n], has variance
Σ_{n∈R} a_n = area(R): the variance per unit area is the same at every latitude, as for white noise
on the sphere (i.i.d. grid noise instead gives variance Σ a_n², i.e. per unit area ∝ a_n ∝ cos φ,
so the same field is far quieter per area near the poles, where grid cells crowd).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vecfield.core.likelihood import gaussian_log_prob
from vecfield.core.model import VectorFieldModel
from vecfield.core.schedules import EDMSchedule
from vecfield.core.solvers import Churn
from vecfield.forecast.config import GENERATIVE_METHODS
from vecfield.forecast.normalization import Normalization
from vecfield.forecast.rollout import StepResult
from vecfield.forecast.step import OneStepForecaster
from vecfield.geo import relative_cell_areas

#: GenCast's noise levels (σ_data = 1 in normalized-residual units)
EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO = 0.02, 88.0, 7.0


class SphereNoise:
    """Eq. (2): Gaussian noise with latitude-independent variance per unit area, as a noise sampler
    ``(shape, generator, dtype, device) -> Tensor`` for shapes (B, nodes, C).

    relative_area: (nodes,) cell areas with mean 1 (``vecfield.geo.relative_cell_areas``; ``on_grid``
    builds it for a lat-lon grid); scale: overall amplitude (1 for sampling; 0 makes every member
    the deterministic solution of the ODE from y₀ = 0).
    """

    def __init__(self, relative_area: Tensor, scale: float = 1.0) -> None:
        if relative_area.ndim != 1 or not bool((relative_area > 0).all()):
            raise ValueError("relative_area must be a 1-D tensor of positive cell areas (one per grid node)")
        if scale < 0:
            raise ValueError(f"the noise scale must be ≥ 0, got {scale}")
        self.std = (scale / relative_area.double().sqrt())[:, None]  # (nodes, 1)

    @classmethod
    def on_grid(cls, latitude: np.ndarray, n_longitude: int, scale: float = 1.0) -> "SphereNoise":
        """Noise on the latitude-major nodes of a lat-lon grid (rows ``latitude``, ``n_longitude``
        evenly spaced columns), with the package's cell areas."""
        return cls(torch.from_numpy(relative_cell_areas(latitude, n_longitude)), scale)

    def transform(self, z: Tensor) -> Tensor:
        """ε = z/√a from standard normal z (B, nodes, C)."""
        if z.ndim != 3 or z.shape[1] != self.std.shape[0]:
            raise ValueError(f"noise must be (batch, {self.std.shape[0]} nodes, channels), "
                             f"got {tuple(z.shape)}")
        return z * self.std.to(z)

    def __call__(self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
        where = generator.device if generator is not None else device
        return self.transform(torch.randn(shape, generator=generator, dtype=dtype, device=where).to(device))

    def log_prob(self, x: Tensor, sigma: float = 1.0) -> Tensor:
        """log N(x; 0, σ²·diag(std²)) summed over (nodes, C) of x (B, nodes, C); returns (B,)."""
        return gaussian_log_prob(x, (sigma * self.std).to(x))


def sampler_options(steps: int, churn: float, churn_noise: float = Churn.s_noise) -> dict[str, Any]:
    """``VectorFieldModel`` options of the sampler: Heun on ``steps`` steps, with GenCast's churn
    settings but S_churn = ``churn`` and S_noise = ``churn_noise`` where ``churn`` is positive
    (``churn`` 0: the deterministic probability-flow ODE, where S_noise plays no part)."""
    if steps < 1:
        raise ValueError(f"sampling steps must be ≥ 1, got {steps}")
    if not churn >= 0:
        raise ValueError(f"sampling churn must be ≥ 0 (0: the deterministic ODE; GenCast 2.5), got {churn}")
    if not churn_noise > 0:
        raise ValueError(f"sampling churn noise S_noise must be > 0 (GenCast 1.05), got {churn_noise}")
    return {"solver": "stochastic_heun" if churn > 0 else "heun", "steps": steps,
            "churn": Churn(s_churn=churn, s_noise=churn_noise)}


def generative_field(net: torch.nn.Module, method: str, noise: SphereNoise, event_shape: tuple[int, int],
                     sampling_steps: int, sampling_churn: float = 0.0,
                     sampling_churn_noise: float = Churn.s_noise) -> VectorFieldModel:
    """The learner of eq. (1) for ``method`` ∈ GENERATIVE_METHODS with the sphere noise (2) as source
    and Heun's sampler (with churn where ``sampling_churn`` > 0, S_noise = ``sampling_churn_noise``);
    ``event_shape`` = (nodes, C) of one residual."""
    if method not in GENERATIVE_METHODS:
        raise ValueError(f"unknown generative method {method!r}; choose one of {list(GENERATIVE_METHODS)}")
    common = {"noise": noise, "event_shape": tuple(event_shape),
              **sampler_options(sampling_steps, sampling_churn, sampling_churn_noise)}
    if method == "flow_matching":
        return VectorFieldModel(net, "flow_matching", source_log_prob=noise.log_prob, **common)
    schedule = EDMSchedule(EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO)
    return VectorFieldModel(net, "edm", schedule=schedule, time_sampler="uniform", sigma_data=1.0,
                            source_log_prob=lambda y: noise.log_prob(y, EDM_SIGMA_MAX), **common)


class GenerativeOneStepForecaster(OneStepForecaster):
    """S(t + Δt) sampled from p(S(t + Δt) | S(t − Δt), S(t), forcings, static) learnt by eq. (1).

    field: ``generative_field(...)`` with net(y (B, N, C), τ (B,), cond (B, N, 2C + 3F + S)) -> (B, N, C).
    Training steps are teacher-forced: a step with ``target`` returns the loss (1) and the target as
    the next state, so a k-step window gives k independent one-step losses (GenCast trains one step).
    """

    def __init__(self, field: VectorFieldModel, normalization: Normalization, loss_weight: Tensor,
                 noise: SphereNoise, rim: Tensor | None = None, input_noise: float = 0.0) -> None:
        super().__init__(field, normalization, loss_weight, rim, input_noise)
        self.noise = noise

    def _check_field(self, field: VectorFieldModel) -> None:
        if field.method not in GENERATIVE_METHODS:
            raise ValueError(f"the generative forecaster needs a VectorFieldModel with method in "
                             f"{list(GENERATIVE_METHODS)}; got {field.method!r}")

    @property
    def method(self) -> str:
        """``flow_matching`` or ``edm``."""
        return self.field.method

    @property
    def sampling_steps(self) -> int:
        """Heun steps per sample (2 network calls each)."""
        return self.field.options.steps

    @property
    def sampling_churn(self) -> float:
        """S_churn of the sampler (0: the deterministic probability-flow ODE)."""
        options = self.field.options
        return options.churn.s_churn if options.solver == "stochastic_heun" else 0.0

    @property
    def sampling_churn_noise(self) -> float:
        """S_noise of the sampler: the churn noise as a multiple of the noise it replaces."""
        return self.field.options.churn.s_noise

    @contextmanager
    def sampling(self, steps: int | None = None, churn: float | None = None,
                 churn_noise: float | None = None) -> Iterator[None]:
        """Sample with ``steps`` Heun steps, S_churn = ``churn`` and S_noise = ``churn_noise`` inside
        the block (None: as built), e.g. to compare 4 … 20 steps or the ODE with GenCast's churn."""
        field, options = self.field, self.field.options
        chosen = sampler_options(self.sampling_steps if steps is None else steps,
                                 self.sampling_churn if churn is None else churn,
                                 self.sampling_churn_noise if churn_noise is None else churn_noise)
        field.options = replace(options, **chosen)
        try:
            yield
        finally:
            field.options = options

    def source_scale(self) -> float:
        """σ at the start of the path (1 for flow matching, σ_max = 88 for EDM)."""
        start = self.field.schedule.coefficients(torch.tensor([self.field.t_start], dtype=torch.float64))
        return float(start.sigma[0])

    def noise_shape(self, current: Tensor) -> tuple[int, ...]:
        """The shape of one row's standard normal noise per step: a field (N, C) like the state."""
        return tuple(current.shape[1:])

    def step_from_noise(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor,
                        z: Tensor, draw_normal: Callable[[], Tensor] | None = None) -> Tensor:
        """The next state (B, N, C) from standard normal z (B, N, C): y₀ = σ_start·z/√a (eq. 2), then
        Heun to τ = 1. With churn, each churning step adds the sphere noise of a fresh standard normal
        ``draw_normal()`` (B, N, C) (default: torch's global generator)."""
        cond = self.condition(previous, current, forcings, static)
        source = self.source_scale() * self.noise.transform(z.to(current))
        draw_noise = None if draw_normal is None else lambda: self.noise.transform(draw_normal().to(current))
        residual = self.field.sample(source, cond, draw_noise=draw_noise)
        return self.normalization.apply_residual(current, residual)

    def step(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor,
             target: Tensor | None = None) -> StepResult:
        """Without ``target``: one sampled next state (noise from torch's global generator). With it:
        the loss (1) on the target's normalized residual and the target as the next state."""
        if target is None:
            z = torch.randn(current.shape, dtype=current.dtype, device=current.device)
            return StepResult(self.step_from_noise(previous, current, forcings, static, z))
        cond = self.condition(previous, current, forcings, static)
        data = self.normalization.residual(target, current)
        return StepResult(target, self.field.training_loss(data, cond, weight=self.loss_weight).loss)

    @torch.no_grad()
    def log_score(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor, target: Tensor,
                  steps: int = 8, probes: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """log p(target | inputs) in nats per example (B,), the log-score of the verifying state.

        The exact instantaneous change of variables of the learnt probability-flow ODE
        (``VectorFieldModel.log_prob``, RK4 on ``steps`` steps, Hutchinson divergence averaged over
        ``probes`` Rademacher probes) gives the density of the normalized residual r; the state's
        density follows from r = (S − S(t))/σ^Δ: log p(S) = log p(r) − N·Σ_c log σ^Δ_c. Cost per state:
        steps × 4 × probes forward-and-backward passes (see docs/ensembles.md).
        """
        if probes < 1:
            raise ValueError(f"probes must be ≥ 1, got {probes}")
        cond = self.condition(previous, current, forcings, static)
        residual = self.normalization.residual(target, current)
        total = torch.zeros(residual.shape[0], dtype=torch.float64, device=residual.device)
        for _ in range(probes):
            total += self.field.log_prob(residual, cond, divergence="hutchinson", method="rk4", steps=steps,
                                         generator=generator).double()
        jacobian = residual.shape[1] * torch.log(self.normalization.diff_std.double()).sum()
        return total / probes - jacobian
