"""Rational-quadratic splines (knots, derivatives, inverse, log-derivative vs autograd) and MADE's masks."""

import pytest
import torch

from vecfield.flows import MADE, NeuralSplineFlow, SplineCoupling, rational_quadratic_spline
from vecfield.flows.spline import spline_knots

BINS, BOUND = 5, 3.0


def _raw(batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(batch, 3 * BINS - 1, generator=generator, dtype=torch.float64)


def test_zero_parameters_give_the_identity() -> None:
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    raw = torch.zeros(101, 3 * BINS - 1, dtype=torch.float64)
    y, log_derivative = rational_quadratic_spline(x, raw, BOUND)
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_derivative, torch.zeros_like(x), atol=1e-12, rtol=0)


def test_spline_passes_through_its_knots_with_their_derivatives() -> None:
    raw = _raw(1).expand(BINS + 1, -1)
    xk, yk, dk = spline_knots(raw[0], BINS, BOUND)
    inner = xk[1:-1].clone().requires_grad_(True)
    y, log_derivative = rational_quadratic_spline(inner, raw[: BINS - 1], BOUND)
    torch.testing.assert_close(y, yk[1:-1], atol=1e-12, rtol=0)
    torch.testing.assert_close(log_derivative.exp(), dk[1:-1], atol=1e-10, rtol=0)
    assert float(dk[0]) == float(dk[-1]) == 1.0 and float(xk[0]) == -BOUND and float(yk[-1]) == BOUND


def test_log_derivative_matches_autograd_and_the_map_is_monotone() -> None:
    x = torch.linspace(-BOUND - 1, BOUND + 1, 400, dtype=torch.float64)
    raw = _raw(1).expand(400, -1)
    y, log_derivative = rational_quadratic_spline(x.requires_grad_(True), raw, BOUND)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_derivative, grad.log(), atol=1e-10, rtol=0)
    assert bool((y.diff() > 0).all())
    outside = x.abs() > BOUND
    assert torch.equal(y[outside], x[outside].detach())  # identity tails


def test_inverse_round_trip_and_inverse_log_derivative() -> None:
    x = 1.5 * BOUND * (2 * torch.rand(2000, dtype=torch.float64) - 1)  # inside and outside the interval
    raw = _raw(2000, seed=1)
    y, log_derivative = rational_quadratic_spline(x, raw, BOUND)
    back, inverse_log_derivative = rational_quadratic_spline(y, raw, BOUND, inverse=True)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)  # the quadratic's root, in float64
    torch.testing.assert_close(inverse_log_derivative, -log_derivative, atol=1e-9, rtol=0)


def test_random_masks_come_in_complementary_pairs_and_rebuild_from_the_seed() -> None:
    flow = NeuralSplineFlow((10,), num_couplings=4, hidden_features=4, depth=1, seed=7)
    again = NeuralSplineFlow((10,), num_couplings=4, hidden_features=4, depth=1, seed=7)
    first, second = flow.transform.layers[0], flow.transform.layers[1]
    assert sorted(first.free.tolist()) == sorted(second.conditioning.tolist())
    assert len(first.free) == 5 and torch.equal(first.free, again.transform.layers[0].free)
    assert not torch.equal(first.free, flow.transform.layers[2].free)


def test_made_outputs_depend_only_on_earlier_entries_in_the_order() -> None:
    order = torch.tensor([3, 0, 4, 1, 2])
    made = MADE(order, outputs_per_entry=2, hidden_features=12, depth=2, activation="silu").double()
    x = torch.randn(1, 5, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: made(v)[0], x)[:, :, 0, :]  # (entry, output, input)
    position = torch.empty(5, dtype=torch.long)
    position[order] = torch.arange(5)
    allowed = position[None, :] < position[:, None]  # (entry i, input j): j comes before i
    assert bool((jac.abs().sum(1)[~allowed] == 0).all())
    assert bool((jac.abs().sum(1)[allowed] > 0).all())  # and every earlier entry does reach it


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="only 0"):
        SplineCoupling(torch.ones(4))
    with pytest.raises(ValueError, match="bins"):
        SplineCoupling(torch.tensor([0.0, 1.0]), bins=1)
    with pytest.raises(ValueError, match=r"choose one of \['random', 'alternate'\]"):
        NeuralSplineFlow((4,), masks="checker")
