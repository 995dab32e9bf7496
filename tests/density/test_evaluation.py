"""Held-out reports: nats ↔ bits/dim, dequantization's exact uniform baseline, one fit for all models."""

import dataclasses
import math
from pathlib import Path

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
from vecfield.train import load_checkpoint as load_training_checkpoint


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


class _PlainGaussian:
    """Has the gradient-training contract's methods but is no torch.nn.Module (no parameters())."""

    event_shape = (2,)
    exact_log_prob = True

    def log_prob(self, x: Tensor) -> Tensor:
        return -0.5 * (x**2).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 2, generator=generator)

    def training_loss(self, x: Tensor) -> Tensor:
        return -self.log_prob(x).mean()


def test_fit_refuses_a_gradient_model_that_is_not_a_module() -> None:
    train = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="not a torch\\.nn\\.Module"):
        fit(_PlainGaussian(), train)


class _RecordingGaussian(torch.nn.Module):
    """A diagonal Gaussian density model whose training_loss records the weights each step starts from."""

    event_shape, exact_log_prob = (2,), True

    def __init__(self) -> None:
        super().__init__()
        self.mean, self.log_std = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
        self.seen: list[Tensor] = []

    def log_prob(self, x: Tensor) -> Tensor:
        z = (x - self.mean) / self.log_std.exp()
        return -(0.5 * z**2 + self.log_std + 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.randn(n, 2, generator=generator, dtype=self.mean.dtype)
        return self.mean + self.log_std.exp() * noise

    def training_loss(self, x: Tensor) -> Tensor:
        self.seen.append(torch.cat([self.mean, self.log_std]).detach().clone())
        return -self.log_prob(x).mean()


def test_ema_of_the_weights_is_the_exponential_average_of_the_trajectory() -> None:
    """``ema_decay`` d ends with θ̄_N, θ̄_1 = θ_1, θ̄_k = d θ̄_(k−1) + (1 − d) θ_k over the weights θ_k
    after each step (recomputed here from the recorded trajectory); d = None keeps θ_N."""
    train = torch.randn(500, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) + 2.0
    settings = TrainSettings(steps=40, batch_size=64, learning_rate=5e-2)
    plain = _RecordingGaussian().double()
    fit(plain, train, settings)
    trajectory = [*plain.seen[1:], torch.cat([plain.mean, plain.log_std]).detach()]  # θ_1 … θ_N
    expected = trajectory[0]
    for weights in trajectory[1:]:
        expected = 0.9 * expected + 0.1 * weights
    averaged = _RecordingGaussian().double()
    fit(averaged, train, dataclasses.replace(settings, ema_decay=0.9))
    torch.testing.assert_close(torch.stack(averaged.seen), torch.stack(plain.seen))  # same run
    torch.testing.assert_close(torch.cat([averaged.mean, averaged.log_std]).detach(), expected)
    assert (expected - trajectory[-1]).abs().max() > 1e-3  # the average is not the last iterate
    with pytest.raises(ValueError, match="ema_decay"):
        TrainSettings(ema_decay=1.0)


def test_fit_runs_on_the_trainer_reproducibly_from_its_seed(tmp_path: Path) -> None:
    """The gradient path is the package's Trainer: the seed fixes data order and dequantization
    (same seed, same losses; another seed, other losses), and ``run_dir`` keeps its log and final
    checkpoint, which loads back into the model's class."""
    levels = torch.randint(0, 17, (300, 2), generator=torch.Generator().manual_seed(4)).double()
    deq = Dequantization(17)

    def run(seed: int, run_dir: str | None = None) -> tuple[list[float], torch.nn.Module]:
        torch.manual_seed(0)  # the same initial weights
        flow = RealNVP((2,), num_couplings=2, hidden_features=8, depth=1).double()
        settings = TrainSettings(steps=12, batch_size=32, learning_rate=1e-2, seed=seed)
        return fit(flow, levels, settings, dequantization=deq, run_dir=run_dir), flow

    first, flow = run(1, str(tmp_path / "run"))
    assert len(first) == 12 and run(1)[0] == first and run(2)[0] != first
    log = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert len(log) == 13 and log[0].startswith("step,")
    stored = load_training_checkpoint(tmp_path / "run" / "checkpoints" / "step_000000012.pt")
    torch.testing.assert_close(stored["model"], flow.state_dict())
