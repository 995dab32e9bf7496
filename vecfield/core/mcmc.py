"""MCMC samplers that use the energy itself, beside the ODE/SDE solvers.

For a target π(x) ∝ exp(−E(x)) with x (B, …) holding B independent chains and ``energy(x) -> (B,)``:
  - ``ula``: unadjusted Langevin, x' = x − η∇E(x) + √(2η)·ξ, ξ ~ N(0, I) (biased for η > 0);
  - ``mala``: the Langevin proposal x' with a Metropolis–Hastings correction,
        log a(x → x') = E(x) − E(x') + log q(x | x') − log q(x' | x),
        log q(y | x) = −‖y − x + η∇E(x)‖² / (4η),
    which makes π exactly invariant;
  - ``hmc``: momentum p ~ N(0, I), ``leapfrog_steps`` leapfrog steps of size η on
    H(x, p) = E(x) + ½‖p‖², accepted with log a = H(x, p) − H(x', p').
Every sampler takes a seeded ``torch.Generator`` and reports its acceptance rate (1 for ULA).

Annealed samplers (Song & Ermon 2019; Du et al. 2023) run a few steps on each energy of a
sequence, e.g. E(·, t_k, cond) of an energy model along an increasing time grid with steps
η_k ∝ σ²_{t_k} (``vecfield.core.energy.sample_mcmc``).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

Energy = Callable[[Tensor], Tensor]
SAMPLERS: tuple[str, ...] = ("ula", "mala", "hmc")


def check_sampler(name: str) -> str:
    """Return ``name`` if it is a known MCMC sampler, else raise ValueError listing them."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown MCMC sampler {name!r}; choose one of {list(SAMPLERS)}")
    return name


def check_step_size(step_size: float) -> float:
    """Return a positive finite step size, else raise ValueError."""
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"the MCMC step size must be a positive number, got {step_size!r}")
    return float(step_size)


def energy_and_gradient(energy: Energy, x: Tensor) -> tuple[Tensor, Tensor]:
    """E(x) (B,) and ∇ₓE(x) (B, …), both detached."""
    with torch.enable_grad():
        point = x.detach().requires_grad_(True)
        value = energy(point)
        if value.shape != (x.shape[0],):
            raise ValueError(f"an energy must return one value per chain, shape ({x.shape[0]},), "
                             f"got {tuple(value.shape)}")
        (grad,) = torch.autograd.grad(value.sum(), point)
    return value.detach(), grad.detach()


def _normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    where = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=where).to(like.device)


def _uniform(batch: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    where = generator.device if generator is not None else like.device
    return torch.rand(batch, generator=generator, dtype=like.dtype, device=where).to(like.device)


def _sum_event(x: Tensor) -> Tensor:
    return x.flatten(1).sum(1)


def langevin_log_proposal(y: Tensor, x: Tensor, grad_x: Tensor, step_size: float) -> Tensor:
    """log q(y | x) of the Langevin proposal N(x − η∇E(x), 2η·I) up to its constant; (B,)."""
    return -_sum_event((y - x + step_size * grad_x) ** 2) / (4 * step_size)


def mala_log_acceptance(x: Tensor, energy_x: Tensor, grad_x: Tensor, y: Tensor, energy_y: Tensor,
                        grad_y: Tensor, step_size: float) -> Tensor:
    """log a(x → y) = min(0, E(x) − E(y) + log q(x | y) − log q(y | x)); (B,)."""
    log_ratio = (energy_x - energy_y + langevin_log_proposal(x, y, grad_y, step_size)
                 - langevin_log_proposal(y, x, grad_x, step_size))
    return log_ratio.clamp(max=0)


def leapfrog(energy: Energy, x: Tensor, p: Tensor, grad: Tensor, step_size: float,
             steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``steps`` leapfrog steps on H = E(x) + ½‖p‖²: returns (x', p', E(x'), ∇E(x')).

    Volume preserving and reversible: from (x', −p') it returns to (x, −p).
    """
    p = p - 0.5 * step_size * grad
    for i in range(steps):
        x = x + step_size * p
        value, grad = energy_and_gradient(energy, x)
        if i < steps - 1:
            p = p - step_size * grad
    p = p - 0.5 * step_size * grad
    return x, p, value, grad


@dataclass(frozen=True)
class MCMCResult:
    """Final states (B, …), their energies (B,) and gradients (B, …), and the acceptance rate over all
    chains and steps."""

    samples: Tensor
    energy: Tensor
    gradient: Tensor
    acceptance_rate: float


def mcmc_step(energy: Energy, x: Tensor, value: Tensor, grad: Tensor, sampler: str, step_size: float,
              generator: torch.Generator | None = None,
              leapfrog_steps: int = 5) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One transition of every chain: returns (x', E(x'), ∇E(x'), accepted (B,) bool).

    x (B, …) with its energy ``value`` (B,) and gradient ``grad`` (B, …) (``energy_and_gradient``).
    """
    check_sampler(sampler)
    step_size = check_step_size(step_size)
    if sampler == "hmc":
        if leapfrog_steps < 1:
            raise ValueError(f"leapfrog_steps must be ≥ 1, got {leapfrog_steps}")
        momentum = _normal(x, generator)
        y, p, value_y, grad_y = leapfrog(energy, x, momentum, grad, step_size, leapfrog_steps)
        log_accept = (value + 0.5 * _sum_event(momentum**2) - value_y - 0.5 * _sum_event(p**2)).clamp(max=0)
    else:
        y = x - step_size * grad + math.sqrt(2 * step_size) * _normal(x, generator)
        value_y, grad_y = energy_and_gradient(energy, y)
        if sampler == "ula":
            return y, value_y, grad_y, torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        log_accept = mala_log_acceptance(x, value, grad, y, value_y, grad_y, step_size)
    # NaN energies (a proposal that left the energy's domain) are rejected
    accept = torch.log(_uniform(x.shape[0], x, generator)) < torch.nan_to_num(log_accept, nan=-math.inf)
    keep = accept.reshape((-1,) + (1,) * (x.ndim - 1))
    return (torch.where(keep, y, x), torch.where(accept, value_y, value), torch.where(keep, grad_y, grad),
            accept)


def run_mcmc(energy: Energy, x: Tensor, sampler: str = "mala", step_size: float = 0.01, steps: int = 100,
             generator: torch.Generator | None = None, leapfrog_steps: int = 5) -> MCMCResult:
    """``steps`` transitions of ``sampler`` from the chains x (B, …) on π ∝ exp(−energy)."""
    check_sampler(sampler)
    check_step_size(step_size)
    if steps < 0:
        raise ValueError(f"steps must be ≥ 0, got {steps}")
    value, grad = energy_and_gradient(energy, x)
    x = x.detach()
    accepted = 0.0
    for _ in range(steps):
        x, value, grad, accept = mcmc_step(energy, x, value, grad, sampler, step_size, generator,
                                           leapfrog_steps)
        accepted += float(accept.double().mean())
    return MCMCResult(x, value, grad, accepted / steps if steps else 1.0)


@dataclass(frozen=True)
class AnnealedResult:
    """Final states (B, …), the acceptance rate at each level (K,) and the number of energy-gradient
    evaluations per chain (the NFE of the sampler)."""

    samples: Tensor
    acceptance_rates: Tensor
    evaluations: int

    @property
    def acceptance_rate(self) -> float:
        """Mean acceptance rate over the levels."""
        return float(self.acceptance_rates.mean())


Transport = Callable[[Tensor, Tensor, int], Tensor]


def annealed_mcmc(energies: Sequence[Energy], x: Tensor, step_sizes: Sequence[float], sampler: str = "mala",
                  steps_per_level: int = 1, generator: torch.Generator | None = None,
                  leapfrog_steps: int = 3, transport: Transport | None = None) -> AnnealedResult:
    """Annealed MCMC: ``steps_per_level`` transitions on each energy of ``energies`` in turn.

    x (B, …) are the starting chains; step_sizes holds one step per level (e.g. η_k ∝ σ²_{t_k}).
    transport(x, ∇E_{k−1}(x), k) -> x, when given, moves the chains before the transitions of level
    k ≥ 1 (e.g. a deterministic reverse-diffusion step; Du et al. 2023), reusing the gradient that the
    previous level's last transition computed.
    """
    check_sampler(sampler)
    if len(step_sizes) != len(energies):
        raise ValueError(f"give one step size per level ({len(energies)}), got {len(step_sizes)}")
    if steps_per_level < 1:
        raise ValueError(f"steps_per_level must be ≥ 1, got {steps_per_level}")
    rates = []
    gradient = None
    for k, (energy, step) in enumerate(zip(energies, step_sizes, strict=True)):
        if transport is not None and gradient is not None:
            x = transport(x, gradient, k)
        result = run_mcmc(energy, x, sampler, step, steps_per_level, generator, leapfrog_steps)
        x, gradient = result.samples, result.gradient
        rates.append(result.acceptance_rate)
    per_transition = leapfrog_steps if sampler == "hmc" else 1
    evaluations = len(energies) * (1 + steps_per_level * per_transition)
    return AnnealedResult(x, torch.tensor(rates, dtype=torch.float64), evaluations)
