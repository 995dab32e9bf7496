"""The energy-based model as a density model: held-out NLL from an AIS estimate of log Z.

An energy model (``vecfield.core.energy_model``) learns E(x, t) with p_t(x) = exp(−E(x, t))/Z_t. At
the data end t_end,

    log p(x) = −E(x, t_end) − log Z,     log Z estimated once by annealed importance sampling
                                           from the Gaussian source along the model's own energies

(``vecfield.core.log_partition``; Neal 2001). log Ẑ is consistent but, being the log of an unbiased
estimate of Z, low in expectation by about the variance of the log weights over 2n; ``ais_result``
reports the effective sample size that says how far to trust it. The estimate is cached until
the parameters change (``training_loss`` or a switch of train/eval mode clears it).
"""

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vecfield.core import (
    AISResult,
    EnergyHead,
    LogitNormalTime,
    VectorFieldModel,
    energy_model,
    log_partition,
)
from vecfield.core.energy import field_energy
from vecfield.density.continuous_flow import FlatField
from vecfield.flows.flow import check_batch
from vecfield.nn import MLP


class EnergyDensity(nn.Module):
    """Density contract over an energy model: log_prob by −E(x, t_end) − log Ẑ (module docstring).

    training_loss: the energy model's denoising score matching loss; sample(n): the probability-flow
    ODE with ``sample_solver`` and ``sample_steps``. ais_*: ``vecfield.core.log_partition`` settings
    (chains, levels, sampler, step size, data scale, seed).
    """

    exact_log_prob = True

    def __init__(self, model: VectorFieldModel, event_shape: tuple[int, ...], ais_chains: int = 2000,
                 ais_levels: int = 200, ais_sampler: str = "hmc", ais_step_size: float = 0.05,
                 ais_data_scale: float = 1.0, ais_seed: int = 0, sample_solver: str = "heun",
                 sample_steps: int = 100) -> None:
        super().__init__()
        field_energy(model)
        self.model = model
        self.event_shape = tuple(int(s) for s in event_shape)
        self.ais = dict(chains=ais_chains, levels=ais_levels, sampler=ais_sampler, step_size=ais_step_size,
                        data_scale=ais_data_scale)
        self.ais_seed = ais_seed
        self.sample_solver, self.sample_steps = sample_solver, sample_steps
        self._ais: AISResult | None = None

    def ais_result(self) -> AISResult:
        """The AIS estimate of log Z at t_end (computed on first use, then cached)."""
        if self._ais is None:
            generator = torch.Generator().manual_seed(self.ais_seed)
            self._ais = log_partition(self.model, generator=generator, **self.ais)  # type: ignore[arg-type]
        return self._ais

    def energy(self, x: Tensor) -> Tensor:
        """E(x, t_end) (B,) of data x (B, *event), detached."""
        check_batch(x, self.event_shape)
        t = torch.full((x.shape[0],), self.model.t_end, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            return field_energy(self.model).energy(x, t)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats per example: (B, *event) -> (B,)."""
        return -self.energy(x) - self.ais_result().log_z

    def training_loss(self, x: Tensor) -> Tensor:
        """Denoising score matching on a batch (B, *event), a scalar; clears the cached log Z."""
        check_batch(x, self.event_shape)
        self._ais = None
        return self.model.loss(x)

    def train(self, mode: bool = True) -> "EnergyDensity":
        self._ais = None
        return super().train(mode)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws by the probability-flow ODE from the source: -> (n, *event)."""
        return self.model.sample(n, steps=self.sample_steps, solver=self.sample_solver, generator=generator)


class EnergyMLP(EnergyDensity):
    """An energy model with an MLP energy head over the flattened event, on plain constructor arguments.

    E(x, t) = head(MLP(D, hidden_features, depth, time_features)) with head "l2" (½‖x − f(x)‖²) or
    "dot" (⟨x, f(x)⟩); the VP path; training times t = sigmoid(time_mean + time_std·n), n ~ N(0, 1),
    which weights the data end where the density is read. fourier_features K > 0 feeds the MLP random
    Fourier features of x at ``fourier_scale`` cycles per unit (``vecfield.nn.FourierFeatures``), for
    energies with sharp edges. Other arguments: see ``EnergyDensity``.
    """

    def __init__(self, event_shape: tuple[int, ...], hidden_features: int = 128, depth: int = 3,
                 time_features: int = 32, head: str = "l2",
                 activation: Literal["silu", "relu", "gelu", "tanh"] = "silu", time_mean: float = 1.0,
                 time_std: float = 1.5, fourier_features: int = 0, fourier_scale: float = 1.0,
                 ais_chains: int = 2000, ais_levels: int = 200,
                 ais_sampler: str = "hmc", ais_step_size: float = 0.05, ais_data_scale: float = 1.0,
                 ais_seed: int = 0, sample_solver: str = "heun", sample_steps: int = 100) -> None:
        shape = tuple(int(s) for s in event_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"event_shape must be a non-empty tuple of positive sizes, got {event_shape}")
        backbone = FlatField(MLP(math.prod(shape), hidden_features=hidden_features, depth=depth,
                                 time_features=time_features, activation=activation,
                                 fourier_features=fourier_features, fourier_scale=fourier_scale))
        model = energy_model(EnergyHead(backbone, head), "vp", event_shape=shape,
                             time_sampler=LogitNormalTime(time_mean, time_std))
        super().__init__(model, shape, ais_chains, ais_levels, ais_sampler, ais_step_size, ais_data_scale,
                         ais_seed, sample_solver, sample_steps)
        self.config: dict[str, Any] = dict(
            event_shape=shape, hidden_features=hidden_features, depth=depth, time_features=time_features,
            head=head, activation=activation, time_mean=time_mean, time_std=time_std,
            fourier_features=fourier_features, fourier_scale=fourier_scale, ais_chains=ais_chains,
            ais_levels=ais_levels, ais_sampler=ais_sampler, ais_step_size=ais_step_size,
            ais_data_scale=ais_data_scale, ais_seed=ais_seed, sample_solver=sample_solver,
            sample_steps=sample_steps)
