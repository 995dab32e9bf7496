"""Annealed importance sampling (AIS, Neal 2001): log Z of an energy from a normalised base.

Given energies E_0, …, E_K with E_0 normalised (∫exp(−E_0) = 1, the base) and E_K the target,
chains start at x_0 ~ exp(−E_0) and move through MCMC transitions T_k that leave exp(−E_k)
invariant. Each chain carries the log weight

    log w = Σ_{k=1}^{K} [E_{k−1}(x_{k−1}) − E_k(x_{k−1})],      x_k = T_k(x_{k−1}),

and E[w] = Z_K, so log Ẑ = logsumexp(log w) − log n (a stochastic lower bound on log Z_K in
expectation, by Jensen). The effective sample size ESS = (Σw)²/Σw² ∈ [1, n] says how many chains
carry the estimate. ``geometric_path`` builds E_β = (1 − β)E_0 + βE_K; an energy model's own path
of time-indexed energies E(·, t_k) (from the Gaussian source to the data end) is another choice.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from vecfield.core.mcmc import Energy, check_sampler, check_step_size, energy_and_gradient, mcmc_step


@dataclass(frozen=True)
class AISResult:
    """log Ẑ of the last energy, the chains' log weights (n,), their ESS, the mean acceptance rate
    of the transitions and the final states (n, …) (approximate draws from the target)."""

    log_z: float
    log_weights: Tensor
    ess: float
    acceptance_rate: float
    samples: Tensor


def effective_sample_size(log_weights: Tensor) -> float:
    """(Σw)²/Σw² from log weights (n,), computed stably."""
    return float(torch.exp(2 * torch.logsumexp(log_weights, 0) - torch.logsumexp(2 * log_weights, 0)))


def gaussian_energy(std: float = 1.0) -> Energy:
    """The normalised energy −log N(x; 0, std²·I) of x (B, …) -> (B,)."""
    def energy(x: Tensor) -> Tensor:
        dims = x[0].numel()
        log_norm = dims * (0.5 * math.log(2 * math.pi) + math.log(std))
        return 0.5 * (x.flatten(1) ** 2).sum(1) / std**2 + log_norm

    return energy


def geometric_path(base: Energy, target: Energy, betas: Tensor) -> list[Energy]:
    """E_β = (1 − β)·E_base + β·E_target for each β of ``betas`` (increasing from 0 to 1)."""
    increasing = betas.ndim == 1 and betas.numel() >= 2 and bool((betas[1:] > betas[:-1]).all())
    if not increasing or float(betas[0]) != 0 or float(betas[-1]) != 1:
        raise ValueError("betas must increase strictly from 0 to 1, e.g. torch.linspace(0, 1, 101)")

    def blend(beta: float) -> Energy:
        if beta == 0:
            return base
        if beta == 1:
            return target
        return lambda x: (1 - beta) * base(x) + beta * target(x)

    return [blend(float(b)) for b in betas]


def annealed_importance_sampling(energies: Sequence[Energy], x0: Tensor, sampler: str = "hmc",
                                 step_sizes: float | Sequence[float] = 0.1, mcmc_steps: int = 1,
                                 generator: torch.Generator | None = None,
                                 leapfrog_steps: int = 3) -> AISResult:
    """AIS estimate of log Z_K for ``energies`` [E_0 (normalised base), …, E_K (target)].

    x0: n draws from exp(−E_0), (n, …). step_sizes: one for every transition T_1…T_K, or one for
    all; ``mcmc_steps`` transitions of ``sampler`` (mala | hmc | ula) per level.
    """
    check_sampler(sampler)
    if len(energies) < 2:
        raise ValueError("AIS needs at least the base and the target energy")
    steps = [step_sizes] * (len(energies) - 1) if isinstance(step_sizes, (int, float)) else list(step_sizes)
    if len(steps) != len(energies) - 1:
        raise ValueError(f"give one step size per transition ({len(energies) - 1}), got {len(steps)}")
    for step in steps:
        check_step_size(step)
    if mcmc_steps < 1:
        raise ValueError(f"mcmc_steps must be ≥ 1, got {mcmc_steps}")
    x = x0.detach()
    log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    accepted, transitions = 0.0, 0
    with torch.no_grad():
        previous = energies[0](x)
    for energy, step in zip(energies[1:], steps, strict=True):
        value, grad = energy_and_gradient(energy, x)
        log_w = log_w + (previous - value).double()
        for _ in range(mcmc_steps):
            x, value, grad, accept = mcmc_step(energy, x, value, grad, sampler, step, generator,
                                               leapfrog_steps)
            accepted += float(accept.double().mean())
            transitions += 1
        previous = value
    log_z = float(torch.logsumexp(log_w, 0)) - math.log(x.shape[0])
    return AISResult(log_z, log_w, effective_sample_size(log_w), accepted / transitions, x)


def time_path(energy_at: Callable[[Tensor, Tensor], Tensor], times: Tensor) -> list[Energy]:
    """Energies x ↦ E(x, t_k) (B,) at each flow time of ``times`` (K,), for AIS or annealed MCMC."""
    def at(t: float) -> Energy:
        return lambda x: energy_at(x, torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device))

    return [at(float(t)) for t in times]
