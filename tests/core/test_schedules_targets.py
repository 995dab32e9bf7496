"""Schedules and target conversions: the discrete chain, derivatives, exact round trips."""

import itertools

import pytest
import torch

from vecfield.core.schedules import (
    SCHEDULES,
    CondOTSchedule,
    DDPMSchedule,
    EDMSchedule,
    GaussianPath,
    VPSchedule,
    get_schedule,
)
from vecfield.core.targets import TARGETS, convert, singular_endpoints, target_value

ALL_SCHEDULES = sorted(SCHEDULES)


def test_ddpm_marginal_matches_markov_chain() -> None:
    """Eq. 15.8's closed-form marginal equals running the chain of eq. 15.7, in mean and variance."""
    schedule = DDPMSchedule()
    n = 40_000  # float32 noise from the seeded global generator (fast), float64 arithmetic
    x = 1.5 + 0.5 * torch.randn(n).double()  # data with mean 1.5, variance 0.25
    for step in range(1, schedule.num_steps + 1):
        beta = schedule.betas[step - 1]
        x = torch.sqrt(1 - beta) * x + torch.sqrt(beta) * torch.randn(n).double()
        if step in (1, 10, 100, 500, 1000):
            c = schedule.coefficients(schedule.time_of_step(step))
            mean, var = c.alpha * 1.5, c.alpha**2 * 0.25 + c.sigma**2
            se_mean = (var / n).sqrt()
            assert abs(x.mean() - mean) < 4 * se_mean
            assert abs(x.var() - var) < 4 * var * (2 / n) ** 0.5
            # the table itself is the product of (1 − β)
            assert torch.isclose(c.alpha**2, torch.prod(1 - schedule.betas[:step]))


@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_schedule_derivatives_match_autograd(name: str) -> None:
    schedule = get_schedule(name)
    # avoid the DDPM knots (t = 1 − n/N), where the interpolated derivative jumps
    t = torch.tensor([0.0123, 0.2501, 0.5037, 0.7775, 0.9987], dtype=torch.float64, requires_grad=True)
    c = schedule.coefficients(t)
    # "+ 0·t" keeps constant coefficients (EDM's α = 1) in the graph
    (d_alpha,) = torch.autograd.grad((c.alpha + 0 * t).sum(), t, retain_graph=True)
    (d_sigma,) = torch.autograd.grad((c.sigma + 0 * t).sum(), t)
    torch.testing.assert_close(c.d_alpha, d_alpha, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(c.d_sigma, d_sigma, rtol=1e-9, atol=1e-9)
    # endpoints: finite, t = 0 noisier than t = 1
    ends = schedule.coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64))
    for value in (ends.alpha, ends.sigma, ends.d_alpha, ends.d_sigma):
        assert torch.isfinite(value).all()
    assert (ends.sigma / ends.alpha.clamp_min(1e-300))[0] > (ends.sigma / ends.alpha)[1]


@pytest.mark.parametrize("name", ALL_SCHEDULES)
def test_target_conversions_round_trip(name: str) -> None:
    schedule = get_schedule(name)
    gen = torch.Generator().manual_seed(2)
    x1 = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    x0 = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    t = 0.02 + 0.96 * torch.rand(64, generator=gen, dtype=torch.float64)
    x_t, c = GaussianPath(schedule).interpolate(x1, x0, t)
    truth = {k: target_value(k, x1, x0, c) for k in TARGETS}
    for a, b in itertools.product(TARGETS, TARGETS):
        there = convert(truth[a], a, b, x_t, c)
        back = convert(there, b, a, x_t, c)
        scale = truth[b].abs().max()
        assert (there - truth[b]).abs().max() <= 1e-10 * max(1.0, float(scale)), (a, b)
        assert (back - truth[a]).abs().max() <= 1e-10 * max(1.0, float(truth[a].abs().max())), (a, b)
    # score = −ε/σ (seed eq. 15.13)
    torch.testing.assert_close(truth["score"], -truth["epsilon"] / c.sigma, rtol=0, atol=1e-12)


def test_singular_endpoints_are_named() -> None:
    c = CondOTSchedule().coefficients(torch.tensor([0.0, 0.5, 1.0]))
    assert singular_endpoints("epsilon", c).tolist() == [True, False, False]
    assert singular_endpoints("x1", c).tolist() == [False, False, True]
    assert not singular_endpoints("velocity", c).any()


def test_edm_schedule_is_karras_grid_and_inverts() -> None:
    schedule = EDMSchedule(sigma_min=0.02, sigma_max=88.0, rho=7.0)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    sigma = schedule.coefficients(t).sigma
    i = torch.arange(11, dtype=torch.float64)
    karras = (88 ** (1 / 7) + i / 10 * (0.02 ** (1 / 7) - 88 ** (1 / 7))) ** 7
    torch.testing.assert_close(sigma, karras)
    torch.testing.assert_close(schedule.time_at_noise_to_signal(sigma), t)
    # the generic bisection agrees with the closed form
    vp = VPSchedule()
    ratio = vp.noise_to_signal(t[1:-1])
    torch.testing.assert_close(vp.time_at_noise_to_signal(ratio), t[1:-1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [0.5, 1.2], [float("nan")]])
def test_time_outside_unit_interval_is_rejected(bad: list[float]) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CondOTSchedule().coefficients(torch.tensor(bad))


def test_unknown_schedule_lists_choices() -> None:
    with pytest.raises(ValueError, match="condot"):
        get_schedule("linear")


def test_path_rejects_mismatched_shapes() -> None:
    path = GaussianPath("condot")
    with pytest.raises(ValueError, match="same shape"):
        path.interpolate(torch.zeros(4, 2), torch.zeros(4, 3), torch.rand(4))
