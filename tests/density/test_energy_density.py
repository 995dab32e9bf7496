"""The energy-based model meets the density contract: −E matches log p, AIS gives the NLL."""

import math
from pathlib import Path

import pytest
import torch

from vecfield.density import (
    EnergyMLP,
    GradientTrainable,
    TrainSettings,
    fit,
    held_out_report,
    load_checkpoint,
    save_checkpoint,
)

MEANS = torch.tensor([[-1.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
STD = 0.5


def sample_mixture(n: int, generator: torch.Generator) -> torch.Tensor:
    """The equal mixture of N(μ_k, 0.25·I), k = 1, 2."""
    k = torch.randint(0, 2, (n,), generator=generator)
    return MEANS[k] + STD * torch.randn(n, 2, dtype=torch.float64, generator=generator)


def mixture_log_prob(x: torch.Tensor, alpha: float = 1.0, sigma: float = 0.0) -> torch.Tensor:
    """log of the mixture's marginal at α, σ on the path: N(α·μ_k, (α²·0.25 + σ²)·I) mixed equally."""
    var = alpha**2 * STD**2 + sigma**2
    squared = ((x[:, None] - alpha * MEANS[None]) ** 2).sum(-1)
    return torch.logsumexp(-squared / (2 * var), 1) - math.log(2) - math.log(2 * math.pi * var)


def mixture_entropy() -> float:
    """−∫ p log p by the midpoint rule on [−4, 4] × [−3.5, 4]."""
    h = 0.01
    grid = torch.cartesian_prod(torch.arange(-4, 4, h, dtype=torch.float64) + h / 2,
                                torch.arange(-3.5, 4, h, dtype=torch.float64) + h / 2)
    log_p = mixture_log_prob(grid)
    return -float((log_p.exp() * log_p).sum()) * h * h


@pytest.fixture(scope="module")
def trained() -> EnergyMLP:
    torch.manual_seed(0)
    model = EnergyMLP((2,), hidden_features=64, depth=2, time_features=16, ais_chains=2000, ais_levels=100)
    data = sample_mixture(20_000, torch.Generator().manual_seed(1)).float()
    fit(model, data, TrainSettings(steps=6000, batch_size=1024, learning_rate=2e-3, ema_decay=0.995))
    return model


@pytest.mark.slow
def test_learned_energy_matches_log_density_up_to_a_constant(trained: EnergyMLP) -> None:
    """RMS of (−E) − log p_{t_end} after removing the mean, over the grid where log p is within 4 nats
    of its maximum: ≤ 0.1 nats."""
    grid = torch.cartesian_prod(torch.linspace(-2, 2, 41), torch.linspace(-1.5, 2, 36)).double()
    c = trained.model.schedule.coefficients(torch.tensor([trained.model.t_end], dtype=torch.float64))
    log_p = mixture_log_prob(grid, float(c.alpha[0]), float(c.sigma[0]))
    inside = log_p > log_p.max() - 4
    difference = (-trained.energy(grid.float()).double() - log_p)[inside]
    assert float((difference - difference.mean()).pow(2).mean().sqrt()) <= 0.1


@pytest.mark.slow
def test_held_out_nll_by_ais_is_within_a_tenth_of_a_nat_of_the_entropy(trained: EnergyMLP) -> None:
    held_out = sample_mixture(5000, torch.Generator().manual_seed(2)).float()
    report = held_out_report(trained, held_out[:1000], held_out)
    assert abs(-report.held_out_nats - mixture_entropy()) < 0.1
    assert trained.ais_result().ess > 0.5 * 2000


def test_energy_density_contract_cache_and_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = EnergyMLP((2, 1), hidden_features=8, depth=1, time_features=4, ais_chains=50, ais_levels=5)
    assert isinstance(model, GradientTrainable)
    x = torch.randn(6, 2, 1)
    log_p = model.log_prob(x)
    assert log_p.shape == (6,) and torch.isfinite(log_p).all()
    first = model.ais_result()
    assert model.ais_result() is first  # cached
    model.training_loss(x).backward()
    assert model.ais_result() is not first  # the parameters may have changed
    assert model.sample(3, torch.Generator().manual_seed(0)).shape == (3, 2, 1)
    save_checkpoint(model, tmp_path / "ebm.pt")
    loaded = load_checkpoint(tmp_path / "ebm.pt", EnergyMLP)
    torch.testing.assert_close(loaded.energy(x), model.energy(x))
    with pytest.raises(ValueError, match="event_shape"):
        EnergyMLP(())
