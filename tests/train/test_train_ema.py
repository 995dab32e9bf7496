"""EMA of weights against the closed-form exponential average."""

import torch
from torch import nn

from vecfield.train.ema import build_ema, ema_state, load_ema_state


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))


def closed_form(values: list[float], d: float) -> float:
    """e_n = dⁿ⁻¹·θ₁ + (1 − d)·Σ_{k=2..n} dⁿ⁻ᵏ·θ_k."""
    n = len(values)
    return d ** (n - 1) * values[0] + (1 - d) * sum(d ** (n - k) * values[k - 1] for k in range(2, n + 1))


def test_ema_equals_the_closed_form_average_for_parameters_and_buffers():
    d = 0.9
    model = Scalar()
    ema = build_ema(model, d)
    thetas = [1.0, 3.0, -2.0, 5.0, 0.5]
    for k, theta in enumerate(thetas):
        with torch.no_grad():
            model.theta.fill_(theta)
            model.count.fill_(10.0 * k)
        ema.update_parameters(model)
    assert abs(ema.module.theta.item() - closed_form(thetas, d)) < 1e-12
    # hand value: 0.9⁴·1 + 0.1·(0.9³·3 − 0.9²·2 + 0.9·5 + 0.5)
    assert abs(ema.module.theta.item() - (0.6561 + 0.1 * (2.187 - 1.62 + 4.5 + 0.5))) < 1e-12
    assert abs(ema.module.count.item() - closed_form([10.0 * k for k in range(5)], d)) < 1e-12


def test_ema_state_round_trip_continues_identically():
    model = Scalar()
    ema = build_ema(model, 0.8)
    for theta in (2.0, 4.0):
        with torch.no_grad():
            model.theta.fill_(theta)
        ema.update_parameters(model)
    copy = build_ema(Scalar(), 0.8)
    load_ema_state(copy, ema_state(ema))
    assert copy.n_averaged.item() == 2
    for averaged in (ema, copy):
        with torch.no_grad():
            model.theta.fill_(-1.0)
        averaged.update_parameters(model)
    assert copy.module.theta.item() == ema.module.theta.item()
    assert abs(copy.module.theta.item() - closed_form([2.0, 4.0, -1.0], 0.8)) < 1e-12


def test_integer_buffers_are_copied_not_averaged() -> None:
    """Graph indices stored as int64 buffers must survive the EMA exactly (averaging rounds them)."""
    model = torch.nn.Linear(2, 2)
    model.register_buffer("index", torch.arange(1000, dtype=torch.int64))
    model.register_buffer("mask", torch.arange(1000) % 3 == 0)
    ema = build_ema(model, decay=0.9)
    for _ in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        ema.update_parameters(model)
    assert torch.equal(ema.module.index, model.index)
    assert torch.equal(ema.module.mask, model.mask)
    assert not torch.equal(ema.module.weight, model.weight)  # floats are still averaged
