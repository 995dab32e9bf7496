"""Held-out reports: nats ↔ bits/dim, dequantization's exact uniform baseline, one fit for all models."""

import math

import pytest
import torch
from torch import Tensor

from vecfield.density import (
    DensityModel,
    Dequantization,
    GaussianMixture,
    TrainSettings,
    bits_per_dim,
    fit,
    held_out_report,
)
from vecfield.flows import RealNVP


class UniformCube:
    """The uniform density on [−1, 1]^D, log p = −D·log 2 inside."""

    exact_log_prob = True

    def __init__(self, dims: int) -> None:
        self.event_shape = (dims,)

    def log_prob(self, x: Tensor) -> Tensor:
        inside = (x.abs() <= 1).all(dim=1)
        return torch.where(inside, -x.shape[1] * math.log(2.0), -math.inf)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.rand(n, *self.event_shape, generator=generator) * 2 - 1


def test_uniform_density_on_dequantized_levels_gives_log2_levels_bits_per_dim() -> None:
    model = UniformCube(64)
    assert isinstance(model, DensityModel)
    levels = torch.randint(0, 17, (100, 64))
    report = held_out_report(model, levels[:60], levels[60:], Dequantization(17))
    assert report.is_bound
    assert report.held_out_bits_per_dim == pytest.approx(math.log2(17), abs=1e-6)  # float32 log_prob
    assert report.train_nats == pytest.approx(-64 * math.log(17), abs=1e-4)
    assert "lower bound" in str(report) and set(report.as_dict()) >= {"train_nats", "held_out_bits_per_dim"}


def test_dequantization_fills_each_cell_and_rejects_bad_levels() -> None:
    deq = Dequantization(4)
    y = deq(torch.full((10_000, 1), 2), torch.Generator().manual_seed(0))
    assert float(y.min()) >= 0.0 and float(y.max()) <= 0.5  # cell of level 2 of 4 is [0, 0.5]
    assert abs(float(y.mean()) - 0.25) < 0.01
    with pytest.raises(ValueError, match=r"lie in \[0, 3\]"):
        deq(torch.tensor([[4]]))
    with pytest.raises(ValueError, match="levels must be"):
        Dequantization(1)


def test_bits_per_dim_of_a_standard_normal() -> None:
    entropy = 0.5 * math.log(2 * math.pi * math.e)  # nats per dimension
    assert bits_per_dim(-3 * entropy, 3) == pytest.approx(entropy / math.log(2))


def test_one_fit_function_trains_every_kind_of_model() -> None:
    g = torch.Generator().manual_seed(0)
    data = torch.randn(6000, 2, generator=g) * torch.tensor([2.0, 0.5]) + torch.tensor([1.0, -1.0])
    train, held_out = data[:1500], data[1500:]
    exact = -(0.5 * math.log(2 * math.pi * math.e) * 2 + math.log(2.0 * 0.5))  # −entropy of the Gaussian
    flow = RealNVP((2,), num_couplings=4, hidden_features=16, depth=1)
    losses = fit(flow, train, TrainSettings(steps=100, batch_size=256, learning_rate=1e-2))
    assert losses[-1] < losses[0]
    gmm = GaussianMixture(2, 1, n_restarts=1)
    assert fit(gmm, train) == [] and bool(gmm.fitted)
    for model, tol in ((gmm, 0.05), (flow, 0.2)):
        report = held_out_report(model, train, held_out)
        assert not report.is_bound
        assert abs(report.held_out_nats - exact) < tol, (type(model).__name__, report)
    with pytest.raises(TypeError, match="training_loss"):
        fit(torch.nn.Linear(2, 2), train)  # type: ignore[arg-type]
