"""Exact log-likelihood of the probability-flow ODE (instantaneous change of variables).

Along a trajectory of dx/dt = u_t(x), d/dt log p_t(x_t) = −∇·u_t(x_t) (FFJORD; Chen et al. 2018).
Integrating backwards from the data x at t_end to t_start together with L, dL/dt = ∇·u_t, L = 0
at t_end, gives

    log p_end(x) = log p_start(x_start) + L(t_start).

The divergence is either exact (one backward pass per event dimension, for small dimension) or
Hutchinson's estimate ε^T (∂u/∂x) ε with one Rademacher probe ε per example, held fixed along the
trajectory (unbiased; average several calls to shrink its variance).
"""

import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor
from torchdiffeq import odeint

from vecfield.core.conditions import Condition
from vecfield.core.solvers import Velocity

DIVERGENCES: tuple[str, ...] = ("exact", "hutchinson")
LIKELIHOOD_METHODS: tuple[str, ...] = ("dopri5", "rk4", "midpoint", "euler")


HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
NatsT = TypeVar("NatsT", Tensor, float)

def exact_divergence(output: Tensor, x: Tensor) -> Tensor:
    """∇·f = Σ_i ∂f_i/∂x_i for output = f(x), both (B, …) with x requiring grad; returns (B,)."""
    flat = output.flatten(1)
    total = torch.zeros(x.shape[0], dtype=output.dtype, device=output.device)
    for i in range(flat.shape[1]):
        (grad,) = torch.autograd.grad(flat[:, i].sum(), x, retain_graph=True)
        total = total + grad.flatten(1)[:, i]
    return total


def hutchinson_divergence(output: Tensor, x: Tensor, probe: Tensor) -> Tensor:
    """ε^T (∂f/∂x) ε for one probe ε (B, …) per example (unbiased for E[εε^T] = I); returns (B,)."""
    (vjp,) = torch.autograd.grad((output * probe).sum(), x)
    return (vjp * probe).flatten(1).sum(1)


def rademacher(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
               device: torch.device) -> Tensor:
    """Entries ±1 with probability ½ each."""
    where = generator.device if generator is not None else device
    bits = torch.randint(0, 2, shape, generator=generator, device=where).to(device)
    return (2 * bits - 1).to(dtype)


def gaussian_log_prob(x: Tensor, std: float | Tensor = 1.0, mean: float | Tensor = 0.0,
                      event_dims: int | None = None) -> Tensor:
    """log N(x; mean, diag std²) summed over the event dimensions of x: the package's one Gaussian
    log-density (source densities, flow bases, the VAE, the sphere noise).

        log p(x) = Σ_i [ −½ ((x_i − μ_i)/σ_i)² − log σ_i − ½ log 2π ]

    x: (*batch, *event) with the last ``event_dims`` dimensions the event (default: all but the
    first, so (B, …) → (B,)). mean, std: numbers, or tensors that broadcast against x (per element,
    per node (N, 1), per example (B, D), or with extra leading sample dims (S, B, D)). Returns the
    broadcast batch shape.
    """
    event_dims = x.ndim - 1 if event_dims is None else event_dims
    if not 0 < event_dims <= x.ndim:
        raise ValueError(f"event_dims must lie in [1, {x.ndim}] for x of shape {tuple(x.shape)}, "
                         f"got {event_dims}")
    z = (x - mean) / std  # the broadcast shape: leading dims of mean or std add batch dims
    start = z.ndim - event_dims
    size = math.prod(z.shape[start:])
    quadratic = (-0.5 * z**2).flatten(start).sum(-1)
    if isinstance(std, Tensor):
        return quadratic - torch.broadcast_to(torch.log(std).to(z.dtype), z.shape).flatten(start).sum(-1) \
            - size * HALF_LOG_2PI
    return quadratic - size * (math.log(std) + HALF_LOG_2PI)


def bits_per_dim(log_prob: NatsT, dims: int) -> NatsT:
    """Negative log-likelihood in bits per dimension: −log p / (dims · ln 2), for a tensor of
    log-likelihoods in nats or one number."""
    return -log_prob / (dims * math.log(2))


def ode_log_prob(velocity: Velocity, x: Tensor, source_log_prob: Callable[[Tensor], Tensor],
                 cond: Condition = None,
                 t_start: float = 0.0, t_end: float = 1.0, divergence: str = "exact", method: str = "dopri5",
                 steps: int = 100, rtol: float = 1e-5, atol: float = 1e-5,
                 generator: torch.Generator | None = None) -> Tensor:
    """log p(x) in nats per example (B,) for data x (B, …) under the flow of ``velocity``.

    ``source_log_prob`` is the log density of the source at t_start (e.g. ``gaussian_log_prob``);
    ``method`` is dopri5 (adaptive, ``rtol``/``atol``) or a fixed-step method with ``steps`` steps.
    The result is detached (an evaluation, not a training signal).
    """
    if divergence not in DIVERGENCES:
        raise ValueError(f"unknown divergence {divergence!r}; choose one of {list(DIVERGENCES)}")
    if method not in LIKELIHOOD_METHODS:
        raise ValueError(f"unknown likelihood ODE method {method!r}; "
                         f"choose one of {list(LIKELIHOOD_METHODS)}")
    probe = rademacher(tuple(x.shape), generator, x.dtype, x.device) if divergence == "hutchinson" else None

    def augmented(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            point = state[0].detach().requires_grad_(True)
            out = velocity(point, t.to(point.dtype).expand(point.shape[0]), cond)
            div = exact_divergence(out, point) if probe is None else hutchinson_divergence(out, point, probe)
        return out.detach(), div.detach()

    start = (x.detach(), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device))
    if method == "dopri5":
        times = torch.tensor([t_end, t_start], dtype=x.dtype, device=x.device)
        # step_t: land exactly on t_start instead of stepping past it (the field is undefined beyond)
        path = odeint(augmented, start, times, method="dopri5", rtol=rtol, atol=atol,
                      options={"step_t": times[1:]})
    else:
        times = torch.linspace(t_end, t_start, steps + 1, dtype=x.dtype, device=x.device)
        path = odeint(augmented, start, times, method=method)
    x_start, change = path[0][-1], path[1][-1]
    return (source_log_prob(x_start) + change).detach()
