"""MCMC with the energy itself (ULA, MALA, HMC) and annealed importance sampling of log Z."""

import math

import pytest
import torch

from tests.core.nets import GaussianEnergy
from vecfield.core import (
    EnergyField,
    VectorFieldModel,
    VPSchedule,
    annealed_importance_sampling,
    gaussian_energy,
    geometric_path,
    log_partition,
    mcmc_step,
    run_mcmc,
)
from vecfield.core.mcmc import energy_and_gradient, leapfrog, mala_log_acceptance

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.8], [0.8, 2.0]], dtype=torch.float64)
PRECISION = torch.linalg.inv(COV)


def gaussian(x: torch.Tensor) -> torch.Tensor:
    """E(x) = ½(x − μ)ᵀΣ⁻¹(x − μ), unnormalised: log Z = ½ log det(2πΣ)."""
    d = x - MEAN
    return 0.5 * ((d @ PRECISION) * d).sum(1)


def double_well(x: torch.Tensor) -> torch.Tensor:
    """A non-Gaussian 1-D energy E(x) = x⁴/4 − x²."""
    return (x**4 / 4 - x**2).sum(1)


@pytest.mark.parametrize(("sampler", "step"), [("mala", 0.4), ("hmc", 0.3)])
def test_metropolis_samplers_reproduce_a_known_gaussian(sampler: str, step: float) -> None:
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(4000, 2, dtype=torch.float64, generator=generator)
    result = run_mcmc(gaussian, start, sampler, step, steps=150, generator=generator)
    x = result.samples
    assert 0.5 < result.acceptance_rate < 1
    # the chains are correlated over steps, not over chains: each final state is one independent draw
    assert (x.mean(0) - MEAN).abs().max() < 4 * math.sqrt(2.0 / len(x))
    torch.testing.assert_close(torch.cov(x.T), COV, atol=0.1, rtol=0)
    torch.testing.assert_close(result.energy, gaussian(x))


def test_mala_kernel_satisfies_detailed_balance_on_a_grid() -> None:
    """π(x)·q(y|x)·a(x→y) = π(y)·q(x|y)·a(y→x) for every pair of a grid, on a double-well energy."""
    step = 0.3
    grid = torch.linspace(-2.5, 2.5, 41, dtype=torch.float64)[:, None]
    x, y = (g.reshape(-1, 1) for g in torch.meshgrid(grid[:, 0], grid[:, 0], indexing="ij"))
    ex, gx = energy_and_gradient(double_well, x)
    ey, gy = energy_and_gradient(double_well, y)

    def log_q(to: torch.Tensor, frm: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:  # normalised N(·, 2η)
        return (-(to - frm + step * grad) ** 2 / (4 * step) - 0.5 * math.log(4 * math.pi * step)).sum(1)

    forward = -ex + log_q(y, x, gx) + mala_log_acceptance(x, ex, gx, y, ey, gy, step)
    backward = -ey + log_q(x, y, gy) + mala_log_acceptance(y, ey, gy, x, ex, gx, step)
    torch.testing.assert_close(forward, backward, rtol=0, atol=1e-12)


def test_mala_step_accepts_exactly_with_the_metropolis_hastings_ratio() -> None:
    """The sampler's accept decision equals u < min(1, π(y)q(x|y)/(π(x)q(y|x))) for its own draws."""
    step = 0.5
    x = torch.randn(2000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    value, grad = energy_and_gradient(double_well, x)
    draw = torch.Generator().manual_seed(2)
    y_out, _, _, accept = mcmc_step(double_well, x, value, grad, "mala", step, draw)

    replay = torch.Generator().manual_seed(2)
    y = x - step * grad + math.sqrt(2 * step) * torch.randn(x.shape, dtype=torch.float64, generator=replay)
    u = torch.rand(x.shape[0], dtype=torch.float64, generator=replay)
    ey, gy = energy_and_gradient(double_well, y)
    log_ratio = (value - ey - ((x - y + step * gy) ** 2).sum(1) / (4 * step)
                 + ((y - x + step * grad) ** 2).sum(1) / (4 * step))
    expected = u < log_ratio.exp().clamp(max=1)
    assert torch.equal(accept, expected) and 0 < int(accept.sum()) < len(x)
    torch.testing.assert_close(y_out, torch.where(expected[:, None], y, x))


def test_leapfrog_is_reversible_and_volume_preserving() -> None:
    """From (x', −p') leapfrog returns to (x, −p); its Jacobian has determinant 1 (float64)."""
    x = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
    p = torch.tensor([[0.7, 0.4]], dtype=torch.float64)
    energy = double_well
    _, grad = energy_and_gradient(energy, x)
    x1, p1, _, grad1 = leapfrog(energy, x, p, grad, 0.2, 7)
    x2, p2, _, _ = leapfrog(energy, x1, -p1, grad1, 0.2, 7)
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(-p2, p, rtol=0, atol=1e-12)

    def flow(state: torch.Tensor) -> torch.Tensor:  # differentiable leapfrog on the quadratic energy
        q, m = state[:2], state[2:]
        for _ in range(5):
            m = m - 0.1 * (PRECISION @ (q - MEAN))
            q = q + 0.2 * m
            m = m - 0.1 * (PRECISION @ (q - MEAN))
        return torch.cat([q, m])

    start = torch.tensor([0.3, -1.2, 0.7, 0.4], dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(flow, start)
    assert abs(float(torch.linalg.det(jacobian)) - 1) < 1e-12
    # the module's leapfrog is this map
    _, g = energy_and_gradient(gaussian, x)
    q5, m5, _, _ = leapfrog(gaussian, x, p, g, 0.2, 5)
    torch.testing.assert_close(torch.cat([q5[0], m5[0]]), flow(torch.cat([x[0], p[0]])))


def test_hmc_accepts_with_the_change_of_the_hamiltonian() -> None:
    step, leaps = 0.4, 4
    x = torch.randn(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    value, grad = energy_and_gradient(double_well, x)
    draw = torch.Generator().manual_seed(4)
    _, _, _, accept = mcmc_step(double_well, x, value, grad, "hmc", step, draw, leaps)
    replay = torch.Generator().manual_seed(4)
    p = torch.randn(x.shape, dtype=torch.float64, generator=replay)
    _, p_end, ey, _ = leapfrog(double_well, x, p, grad, step, leaps)
    u = torch.rand(x.shape[0], dtype=torch.float64, generator=replay)
    delta = value + 0.5 * (p**2).sum(1) - ey - 0.5 * (p_end**2).sum(1)
    assert torch.equal(accept, u < delta.exp().clamp(max=1)) and 0 < int(accept.sum()) < len(x)


def test_ula_accepts_everything_and_bad_settings_raise() -> None:
    x = torch.randn(10, 2, dtype=torch.float64)
    assert run_mcmc(gaussian, x, "ula", 0.1, steps=3).acceptance_rate == 1.0
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="step size must be a positive number"):
            run_mcmc(gaussian, x, "mala", bad)
    with pytest.raises(ValueError, match="unknown MCMC sampler 'gibbs'"):
        run_mcmc(gaussian, x, "gibbs")
    with pytest.raises(ValueError, match=r"one value per chain, shape \(10,\)"):
        run_mcmc(lambda y: y, x, "mala")


def test_samplers_are_reproducible_with_a_seeded_generator() -> None:
    x = torch.randn(20, 2, dtype=torch.float64)
    a = run_mcmc(gaussian, x, "hmc", 0.2, steps=5, generator=torch.Generator().manual_seed(7))
    b = run_mcmc(gaussian, x, "hmc", 0.2, steps=5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.samples, b.samples) and a.acceptance_rate == b.acceptance_rate


def test_ais_recovers_the_log_partition_of_a_gaussian_energy() -> None:
    """Closed form log Z = ½ log det(2πΣ) of the unnormalised Gaussian energy, within 0.02 nats."""
    exact = 0.5 * float(torch.logdet(2 * math.pi * COV))
    generator = torch.Generator().manual_seed(8)
    x0 = torch.randn(2000, 2, dtype=torch.float64, generator=generator)
    path = geometric_path(gaussian_energy(1.0), gaussian, torch.linspace(0, 1, 101, dtype=torch.float64))
    result = annealed_importance_sampling(path, x0, "hmc", 0.3, generator=generator)
    assert abs(result.log_z - exact) < 0.02
    assert 0.5 * len(x0) < result.ess <= len(x0)
    assert 0.5 < result.acceptance_rate < 1
    with pytest.raises(ValueError, match="betas must increase strictly from 0 to 1"):
        geometric_path(gaussian_energy(1.0), gaussian, torch.tensor([0.0, 0.5]))


def test_log_partition_along_the_model_path_of_a_normalised_energy_is_zero() -> None:
    """AIS from the Gaussian source at t_start along E(·, t_k) of an exact, normalised energy model."""
    schedule = VPSchedule()
    means = torch.tensor([[-1.0, 0.5], [1.0, 0.0]], dtype=torch.float64)
    covs = torch.stack([0.3 * torch.eye(2, dtype=torch.float64), COV])
    model = VectorFieldModel(EnergyField(GaussianEnergy(schedule, means, covs)), schedule=schedule,
                             target="score", event_shape=(2,))
    result = log_partition(model, chains=1000, cond=torch.tensor([1]), levels=50, step_size=0.3,
                           generator=torch.Generator().manual_seed(9))
    assert abs(result.log_z) < 0.02 and result.ess > 500
