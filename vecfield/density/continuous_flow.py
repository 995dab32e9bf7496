"""The core's vector-field learner as a density model: a continuous normalizing flow (CNF).

A ``VectorFieldModel`` trained by flow matching defines the probability-flow ODE dx/dt = u_t(x)
carrying the source N(0, σ²I) at t_start to the data at t_end. Its log-likelihood is exact up to
the ODE solver's tolerance by the instantaneous change of variables (FFJORD, Chen et al. 2018),

    log p(x) = log N(x_start; 0, σ²I) + ∫_{t_start}^{t_end} ∇·u_t(x_t) dt,

computed by ``VectorFieldModel.log_prob`` (``vecfield.core.likelihood.ode_log_prob``). The
divergence is exact (one backward pass per event entry) for events of at most
``exact_max_dims`` entries and Hutchinson's unbiased one-probe estimate ε^T(∂u/∂x)ε above; the
Hutchinson value is an unbiased estimate of log p(x), not a bound, so reports do not label it one.

``ContinuousFlowDensity`` adapts any ``VectorFieldModel`` to the density contract
(``vecfield.density.contract``); ``FlowMatchingCNF`` builds one from an MLP field with plain
constructor arguments, so that it can be checkpointed and named in pipeline presets.
"""

import math
from typing import Literal, TypedDict

import torch
from torch import Tensor, nn

from vecfield.core import VectorFieldModel
from vecfield.flows.flow import check_batch
from vecfield.nn import MLP

Divergence = Literal["auto", "exact", "hutchinson"]
DIVERGENCES: tuple[str, ...] = ("auto", "exact", "hutchinson")


class _ODESettings(TypedDict):
    """The keyword arguments of ``VectorFieldModel.log_prob`` that set up the likelihood ODE."""

    method: str
    rtol: float
    atol: float
    steps: int


class ContinuousFlowDensity(nn.Module):
    """Density contract over a ``VectorFieldModel`` whose source has a known density.

    log_prob: (B, *event) -> (B,) nats by the likelihood ODE (module docstring); training_loss: the
    model's own objective (flow matching, not the NLL); sample(n): the ODE from the source with
    ``sample_solver`` and ``sample_steps``.

    divergence: "exact", "hutchinson", or "auto" (exact when the event has ≤ ``exact_max_dims``
    entries). ode_method, rtol, atol, ode_steps: passed to ``VectorFieldModel.log_prob``.
    """

    exact_log_prob = True

    def __init__(self, model: VectorFieldModel, event_shape: tuple[int, ...], divergence: Divergence = "auto",
                 exact_max_dims: int = 16, ode_method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5,
                 ode_steps: int = 100, sample_solver: str = "dopri5", sample_steps: int = 50) -> None:
        super().__init__()
        if not isinstance(model, VectorFieldModel):
            raise TypeError(f"model must be a vecfield.VectorFieldModel, got {type(model).__name__}")
        if divergence not in DIVERGENCES:
            raise ValueError(f"unknown divergence {divergence!r}; choose one of {list(DIVERGENCES)}")
        if exact_max_dims < 0:
            raise ValueError(f"exact_max_dims must be ≥ 0, got {exact_max_dims}")
        self.model = model
        self.event_shape = tuple(int(s) for s in event_shape)
        dims = math.prod(self.event_shape)
        self.divergence = divergence if divergence != "auto" else (
            "exact" if dims <= exact_max_dims else "hutchinson")
        self.ode = _ODESettings(method=ode_method, rtol=rtol, atol=atol, steps=ode_steps)
        self.sample_solver, self.sample_steps = sample_solver, sample_steps

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats per example: (B, *event) -> (B,), detached (an evaluation)."""
        check_batch(x, self.event_shape)
        return self.model.log_prob(x, divergence=self.divergence, **self.ode)

    def training_loss(self, x: Tensor) -> Tensor:
        """The vector-field model's training objective on a batch (B, *event), a scalar."""
        check_batch(x, self.event_shape)
        return self.model.training_loss(x).loss

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws by integrating the ODE from the source: -> (n, *event)."""
        return self.model.sample(n, steps=self.sample_steps, solver=self.sample_solver, generator=generator)


class FlatField(nn.Module):
    """Calls an MLP field on events of any shape by flattening: (B, *event), (B,) -> (B, *event)."""

    def __init__(self, net: MLP) -> None:
        super().__init__()
        self.net = net

    def forward(self, x_t: Tensor, t: Tensor, cond: object = None) -> Tensor:
        return self.net(x_t.flatten(1), t, cond).reshape(x_t.shape)


class FlowMatchingCNF(ContinuousFlowDensity):
    """A flow-matching CNF on events of any shape with an MLP field over the flattened event.

    The field is ``vecfield.nn.MLP(D, hidden_features, depth, time_features, activation)`` on the
    D = prod(event_shape) entries; ``method`` is a flow-matching preset of ``VectorFieldModel``
    (flow_matching or ot_flow_matching). fourier_features K > 0 feeds the MLP random Fourier features
    of x at ``fourier_scale`` cycles per unit (``vecfield.nn.FourierFeatures``). Other arguments: see
    ``ContinuousFlowDensity``.
    """

    METHODS: tuple[str, ...] = ("flow_matching", "ot_flow_matching")

    def __init__(self, event_shape: tuple[int, ...], hidden_features: int = 256, depth: int = 3,
                 time_features: int = 64, activation: Literal["silu", "relu", "gelu", "tanh"] = "silu",
                 fourier_features: int = 0, fourier_scale: float = 1.0, method: str = "flow_matching",
                 divergence: Divergence = "auto", exact_max_dims: int = 16,
                 ode_method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5, ode_steps: int = 100,
                 sample_solver: str = "dopri5", sample_steps: int = 50) -> None:
        shape = tuple(int(s) for s in event_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"event_shape must be a non-empty tuple of positive sizes, got {event_shape}")
        if method not in self.METHODS:
            raise ValueError(f"unknown flow-matching method {method!r}; choose one of {list(self.METHODS)}")
        net = FlatField(MLP(math.prod(shape), hidden_features=hidden_features, depth=depth,
                             time_features=time_features, activation=activation,
                             fourier_features=fourier_features, fourier_scale=fourier_scale))
        model = VectorFieldModel(net, method=method, event_shape=shape)
        super().__init__(model, shape, divergence, exact_max_dims, ode_method, rtol, atol, ode_steps,
                         sample_solver, sample_steps)
        self.config = dict(event_shape=shape, hidden_features=hidden_features, depth=depth,
                           time_features=time_features, activation=activation,
                           fourier_features=fourier_features, fourier_scale=fourier_scale, method=method,
                           divergence=divergence, exact_max_dims=exact_max_dims, ode_method=ode_method,
                           rtol=rtol, atol=atol, ode_steps=ode_steps, sample_solver=sample_solver,
                           sample_steps=sample_steps)
