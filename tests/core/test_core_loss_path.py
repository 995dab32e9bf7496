"""The training loss's fast path equals the general objective, and bad data is still named.

The loss checks one scalar (its own finiteness) instead of scanning the batch; these tests prove
that NaN in the data, a supplied source or the weights still raises a ValueError naming the input,
for every method, and that the fused flow-matching path computes exactly eq. 15.15.
"""

import pytest
import torch

from vecfield import VectorFieldModel
from vecfield.core.schedules import SCHEDULES, get_schedule
from vecfield.core.targets import target_value
from vecfield.nn import MLP


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_point_and_velocity_match_the_coefficients(name: str) -> None:
    """x_t = α·x₁ + σ·x₀ and u = α̇·x₁ + σ̇·x₀ from the hot path equal the coefficient form (float64)."""
    schedule = get_schedule(name)
    generator = torch.Generator().manual_seed(0)
    x1, x0 = torch.randn(2, 7, 3, 2, generator=generator, dtype=torch.float64)
    t = torch.rand(7, generator=generator, dtype=torch.float64)
    x_t, velocity = schedule.point_and_velocity(x1, x0, t)
    c = schedule.coefficients(t).expand_as(x1)
    torch.testing.assert_close(x_t, c.alpha * x1 + c.sigma * x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(velocity, target_value("velocity", x1, x0, c), rtol=1e-12, atol=1e-12)


def test_flow_matching_loss_is_eq_15_15() -> None:
    """With given t and x₀ the loss is mean‖f(t·x₁ + (1 − t)·x₀, t) − (x₁ − x₀)‖², weighted or not."""
    net = MLP(2, hidden_features=16, depth=2).double()
    model = VectorFieldModel(net, "flow_matching")
    generator = torch.Generator().manual_seed(1)
    x1, x0 = torch.randn(2, 32, 2, generator=generator, dtype=torch.float64)
    t = torch.rand(32, generator=generator, dtype=torch.float64)
    residual = net(t[:, None] * x1 + (1 - t[:, None]) * x0, t) - (x1 - x0)
    torch.testing.assert_close(model.loss(x1, x0=x0, t=t), (residual**2).mean(), rtol=1e-12, atol=0)
    weight = torch.tensor([[2.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(model.loss(x1, x0=x0, t=t, weight=weight), (weight * residual**2).mean(),
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["flow_matching", "ot_flow_matching", "ddpm", "edm", "deterministic"])
def test_nan_in_training_data_is_named_for_every_method(method: str) -> None:
    model = VectorFieldModel(MLP(2, hidden_features=8, depth=1), method)
    x1 = torch.randn(6, 2)
    x1[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"training data x1 contains NaN.*impute"):
        model.loss(x1)


def test_nan_in_source_or_weight_is_named() -> None:
    model = VectorFieldModel(MLP(2, hidden_features=8, depth=1), "deterministic")
    x1, x0 = torch.randn(2, 4, 2)
    x0[0, 0] = float("nan")
    with pytest.raises(ValueError, match="source x0 contains NaN"):
        model.loss(x1, x0=x0)
    weight = torch.tensor([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="loss weight contains NaN"):
        model.loss(x1, weight=weight)


def test_finite_inputs_give_a_finite_loss_without_error() -> None:
    """The scalar check only diagnoses: a non-finite loss from finite inputs is returned as it is."""
    net = MLP(2, hidden_features=8, depth=1)
    with torch.no_grad():
        net.head.bias.fill_(float("inf"))
    loss = VectorFieldModel(net, "flow_matching").loss(torch.randn(4, 2))
    assert not torch.isfinite(loss)
