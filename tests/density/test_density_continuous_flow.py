"""The flow-matching CNF under the density contract: closed-form likelihoods, shapes, units, errors."""

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch.distributions import MultivariateNormal

from tests.core.gaussian_field import COV, MEAN, GaussianOptimalField
from vecfield import VectorFieldModel
from vecfield.core.schedules import get_schedule
from vecfield.density import (
    ContinuousFlowDensity,
    Dequantization,
    FlowMatchingCNF,
    GradientTrainable,
    TrainSettings,
    fit,
    held_out_report,
    load_checkpoint,
    mean_log_likelihood,
    save_checkpoint,
)
from vecfield.toys import sample_toy

TIGHT = dict(rtol=1e-9, atol=1e-9)
FIXED_STEPS = dict(ode_method="rk4", ode_steps=8, sample_solver="heun", sample_steps=8)  # untrained nets


@pytest.fixture(autouse=True)
def _single_intra_op_thread() -> Iterator[None]:
    """Small ODE solves: torch's intra-op thread pool costs more than it gains on shared cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _gaussian_density(mean: torch.Tensor, cov: torch.Tensor, **kwargs: object) -> ContinuousFlowDensity:
    field = GaussianOptimalField(mean, cov, get_schedule("condot"))
    model = VectorFieldModel(field, event_shape=tuple(mean.shape))
    return ContinuousFlowDensity(model, tuple(mean.shape), **kwargs)


def test_exact_divergence_gives_the_closed_form_gaussian_log_density() -> None:
    density = _gaussian_density(MEAN, COV, **TIGHT)
    assert density.divergence == "exact"  # 2 entries ≤ exact_max_dims
    x = MultivariateNormal(MEAN, COV).sample((64,)) * 1.5  # also points in the tails
    expected = MultivariateNormal(MEAN, COV).log_prob(x)
    torch.testing.assert_close(density.log_prob(x), expected, atol=1e-7, rtol=0)


def test_hutchinson_is_exact_for_a_diagonal_jacobian() -> None:
    """Above exact_max_dims the probe estimate is used; with diagonal ∂u/∂x, ε^T J ε = tr J exactly."""
    dims = 20
    mean = torch.linspace(-1, 1, dims, dtype=torch.float64)
    cov = torch.diag(torch.linspace(0.2, 2.0, dims, dtype=torch.float64))
    density = _gaussian_density(mean, cov, exact_max_dims=16, **TIGHT)
    assert density.divergence == "hutchinson"
    x = MultivariateNormal(mean, cov).sample((32,))
    expected = MultivariateNormal(mean, cov).log_prob(x)
    torch.testing.assert_close(density.log_prob(x), expected, atol=1e-7, rtol=0)


def test_hutchinson_is_unbiased_for_a_full_covariance() -> None:
    density = _gaussian_density(MEAN, COV, divergence="hutchinson", rtol=1e-7, atol=1e-7)
    x = MultivariateNormal(MEAN, COV).sample((1,)).expand(4000, 2)
    estimates = density.log_prob(x)
    truth = MultivariateNormal(MEAN, COV).log_prob(x[:1])
    assert estimates.std() > 1e-3  # one probe per example really is random here
    assert abs(float(estimates.mean() - truth)) < 4 * float(estimates.std()) / math.sqrt(4000)


def test_contract_shapes_units_and_gradients() -> None:
    shape = (2, 3)
    cnf = FlowMatchingCNF(shape, hidden_features=16, depth=1, time_features=8, **FIXED_STEPS).double()
    assert isinstance(cnf, GradientTrainable) and cnf.exact_log_prob
    x = torch.randn(5, *shape, dtype=torch.float64)
    assert cnf.log_prob(x).shape == (5,)
    assert cnf.sample(4, generator=torch.Generator().manual_seed(0)).shape == (4, *shape)
    loss = cnf.training_loss(x)
    assert loss.ndim == 0
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cnf.parameters())
    # units: the report's nats are the mean log_prob of one dequantized draw plus D·log(2/L)
    levels, deq = torch.randint(0, 4, (6, *shape)).double(), Dequantization(4)
    manual = float(cnf.log_prob(deq(levels, torch.Generator().manual_seed(3)).double()).mean())
    nats = mean_log_likelihood(cnf, levels, deq, generator=torch.Generator().manual_seed(3))
    assert nats == pytest.approx(manual + 6 * math.log(2 / 4), abs=1e-9)
    report = held_out_report(cnf, levels, levels, deq)
    assert report.dims == 6 and report.is_bound


def test_training_improves_the_held_out_likelihood_on_a_toy() -> None:
    train = sample_toy("8gaussians", 2000, torch.Generator().manual_seed(0))
    test = sample_toy("8gaussians", 256, torch.Generator().manual_seed(1))
    cnf = FlowMatchingCNF((2,), hidden_features=32, depth=2, time_features=16, rtol=1e-4, atol=1e-4)
    before = held_out_report(cnf, train[:8], test).held_out_nats
    fit(cnf, train, TrainSettings(steps=150, batch_size=256, learning_rate=3e-3))
    after = held_out_report(cnf, train[:8], test).held_out_nats
    assert after > before + 1.0, (before, after)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    cnf = FlowMatchingCNF((3,), hidden_features=8, depth=1, time_features=4, **FIXED_STEPS)
    x = torch.randn(7, 3)
    save_checkpoint(cnf, tmp_path / "cnf.pt")
    loaded = load_checkpoint(tmp_path / "cnf.pt", FlowMatchingCNF)
    torch.testing.assert_close(loaded.log_prob(x), cnf.log_prob(x))
    assert loaded.config == cnf.config


def test_bad_input_is_a_clear_error() -> None:
    cnf = FlowMatchingCNF((2,), hidden_features=8, depth=1, time_features=4)
    with pytest.raises(ValueError, match="non-finite"):
        cnf.log_prob(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="shape"):
        cnf.log_prob(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="choose one of"):
        FlowMatchingCNF((2,), divergence="trace")
    with pytest.raises(ValueError, match="choose one of"):
        FlowMatchingCNF((2,), method="ddpm")
    with pytest.raises(TypeError, match="VectorFieldModel"):
        ContinuousFlowDensity(torch.nn.Linear(2, 2), (2,))  # type: ignore[arg-type]
