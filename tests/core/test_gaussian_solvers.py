"""The closed-form optimal field for Gaussian data: solvers, orders of convergence, likelihood."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from tests.core.gaussian_field import COV, MEAN, GaussianOptimalField
from vecfield import VectorFieldModel
from vecfield.core.schedules import SCHEDULES, get_schedule
from vecfield.core.solvers import Churn


def _model(schedule: str = "condot", target: str = "velocity", **options: object) -> VectorFieldModel:
    field = GaussianOptimalField(MEAN, COV, get_schedule(schedule), target)
    return VectorFieldModel(field, schedule=schedule, target=target, event_shape=(2,), **options)


def _affine_flow_map(model: VectorFieldModel, solver: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The optimal field is linear in x, so the flow map is x ↦ A·x + b: push 0, e₁, e₂ through it."""
    points = torch.cat([torch.zeros(1, 2), torch.eye(2)]).double()
    out = model.sample(points, solver=solver, steps=steps)
    b = out[0]
    return out[1:].T - b[:, None], b


@pytest.mark.parametrize(("solver", "steps", "tol"), [("euler", 400, 1e-2), ("midpoint", 100, 1e-4),
                                                      ("heun", 100, 1e-4), ("rk4", 40, 1e-6),
                                                      ("dopri5", 0, 1e-4)])
def test_ode_solvers_map_standard_normal_to_data_gaussian(solver: str, steps: int, tol: float) -> None:
    a, b = _affine_flow_map(_model(), solver, steps)
    torch.testing.assert_close(b, MEAN, atol=tol, rtol=0)
    torch.testing.assert_close(a @ a.T, COV, atol=tol, rtol=0)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_schedule_transports_its_marginals(schedule: str) -> None:
    """From the t_start marginal to the t_end marginal, exactly (RK4, fine grid), on every schedule."""
    model = _model(schedule)
    field = model.net
    a, b = _affine_flow_map(model, "rk4", 200)
    m0, c0 = field.marginal(model.t_start)
    m1, c1 = field.marginal(model.t_end)
    # the DDPM table's α̇, σ̇ jump at its 1000 knots, which costs RK4 its order there
    tol = 2e-3 if schedule == "ddpm" else 1e-4
    torch.testing.assert_close(a @ m0 + b, m1, atol=tol, rtol=0)
    torch.testing.assert_close(a @ c0 @ a.T, c1, atol=tol, rtol=tol)


@pytest.mark.parametrize(("solver", "order"), [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_solvers_show_their_order_of_convergence(solver: str, order: int) -> None:
    model = _model()
    a_ref, b_ref = _affine_flow_map(model, "rk4", 400)
    errors = []
    for steps in (8, 16, 32):
        a, b = _affine_flow_map(model, solver, steps)
        errors.append(float(torch.cat([(a - a_ref).flatten(), b - b_ref]).abs().max()))
    rates = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    # at least the method's order (midpoint and RK4 gain about one on this smooth linear field) …
    assert all(rate > order - 0.35 for rate in rates), (errors, rates)
    # … and Euler really is first order
    assert solver != "euler" or all(rate < 1.35 for rate in rates), (errors, rates)


@pytest.mark.parametrize("schedule", ["condot", "cosine"])
def test_ode_log_likelihood_is_the_exact_gaussian_density(schedule: str) -> None:
    model = _model(schedule)
    x = MultivariateNormal(MEAN, COV).sample((6,))
    x[0] = torch.tensor([3.0, 2.0], dtype=torch.float64)  # a point far in the tail
    log_p = model.log_prob(x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_p, MultivariateNormal(MEAN, COV).log_prob(x), atol=1e-4, rtol=0)


def test_hutchinson_estimate_is_unbiased() -> None:
    model = _model()
    x = torch.tensor([[0.3, 0.9]], dtype=torch.float64)
    exact = model.log_prob(x, method="rk4", steps=40)
    repeats = 2000  # one Rademacher probe per row
    estimates = model.log_prob(x.expand(repeats, 2), divergence="hutchinson", method="rk4", steps=40,
                               generator=torch.Generator().manual_seed(3))
    standard_error = estimates.std() / math.sqrt(repeats)
    assert standard_error > 1e-3  # the estimator really is random
    assert abs(estimates.mean() - exact[0]) < 3 * standard_error


@pytest.mark.parametrize(("schedule", "target", "solver"), [("ddpm", "epsilon", "ddpm"),
                                                             ("ddpm", "epsilon", "ddpm_beta"),
                                                             ("ddpm", "epsilon", "ddim"),
                                                             ("vp", "epsilon", "euler_maruyama"),
                                                             ("condot", "velocity", "ddim")])
def test_diffusion_samplers_reach_the_data_gaussian(schedule: str, target: str, solver: str) -> None:
    model = _model(schedule, target)
    generator = torch.Generator().manual_seed(4)
    samples = model.sample(8000, solver=solver, steps=200, generator=generator).double()
    mean, cov = model.net.marginal(model.t_end)
    torch.testing.assert_close(samples.mean(0), mean, atol=0.06, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), cov, atol=0.08, rtol=0)


def test_stochastic_heun_without_churn_is_heun() -> None:
    model = _model("edm", "x1", churn=Churn(s_churn=0.0))
    source = 80.0 * torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(model.sample(source, solver="stochastic_heun", steps=12),
                               model.sample(source, solver="heun", steps=12), rtol=0, atol=0)


@pytest.mark.parametrize(("schedule", "target"), [("edm", "x1"), ("condot", "velocity")])
def test_stochastic_heun_with_churn_reaches_the_data_gaussian(schedule: str, target: str) -> None:
    """The churn adds noise that keeps x on the path's marginal (α̂²Σ + σ̂²I), so the exact field
    still lands on N(μ, Σ); checked where every step churns, also on a schedule with α_t ≠ 1."""
    churn = Churn(s_churn=20.0, s_min=0.0, s_noise=1.0)
    model = _model(schedule, target, churn=churn, **({"t_start": 1e-3} if schedule == "condot" else {}))
    calls = []

    def draw_noise() -> torch.Tensor:
        calls.append(1)
        return torch.randn(8000, 2, dtype=torch.float64, generator=generator)

    generator = torch.Generator().manual_seed(6)
    samples = model.sample(8000, solver="stochastic_heun", steps=60, generator=generator,
                           draw_noise=draw_noise)
    mean, cov = model.net.marginal(model.t_end)
    torch.testing.assert_close(samples.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), cov, atol=0.06, rtol=0)
    assert len(calls) == 59  # every step but the first, whose σ/α is the cap


def test_churn_settings_are_gencasts_and_validated() -> None:
    assert Churn() == Churn(s_churn=2.5, s_min=0.75, s_max=math.inf, s_noise=1.05)
    for bad in ({"s_churn": -1.0}, {"s_min": 2.0, "s_max": 1.0}, {"s_noise": 0.0}):
        with pytest.raises(ValueError, match="s_"):
            Churn(**bad)
