"""Scoring rules for push-forward generators: estimators against closed forms, and toy generators
trained by them recover known distributions."""

import math

import pytest
import torch
from scipy import stats
from torch import nn

from vecfield.core.scoring import (
    PushForwardObjective,
    ScoringRule,
    crps,
    energy_score,
    mean_pairwise_difference,
)


def gaussian_crps(mu: torch.Tensor, sigma: float, y: torch.Tensor) -> torch.Tensor:
    """CRPS(N(μ, σ²), y) = σ·[z(2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/σ (Gneiting et al. 2005)."""
    z = ((y - mu) / sigma).numpy()
    value = z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi)
    return sigma * torch.from_numpy(value)


def ensemble_crps(members: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The ensemble's own (biased) CRPS by brute force: mean |x − y| − 1/(2M²) Σ_{j,k} |x_j − x_k|."""
    pairs = (members[:, None] - members[None, :]).abs().sum(dim=(0, 1))
    return (members - target).abs().mean(dim=0) - pairs / (2 * members.shape[0] ** 2)


def test_the_fair_crps_is_unbiased_for_the_gaussian_crps_at_two_members():
    """E[fCRPS] over draws of 2 members = the closed-form CRPS, at several observations, over many seeds;
    the ensemble's own CRPS at M = 2 is biased by ¼E|X − X'| = σ/(2√π) and fails the same check."""
    sigma, y = 1.5, torch.tensor([-3.0, -0.5, 0.0, 1.0, 4.0], dtype=torch.float64)
    exact = gaussian_crps(torch.zeros(()), sigma, y)
    fair, own = [], []
    for seed in range(40):
        generator = torch.Generator().manual_seed(seed)
        members = sigma * torch.randn(2, 20_000, y.numel(), generator=generator, dtype=torch.float64)
        fair.append(crps(members, y.expand(20_000, -1)).mean(dim=0))
        own.append(ensemble_crps(members, y.expand(20_000, -1)).mean(dim=0))
    fair_means, own_means = torch.stack(fair), torch.stack(own)  # (seeds, observations)
    standard_error = fair_means.std(dim=0) / math.sqrt(len(fair))
    assert ((fair_means.mean(dim=0) - exact).abs() < 4 * standard_error).all()
    bias = own_means.mean(dim=0) - exact
    expected_bias = torch.full_like(bias, sigma / (2 * math.sqrt(math.pi)))
    torch.testing.assert_close(bias, expected_bias, atol=0.01, rtol=0)


def test_fair_crps_of_many_members_approaches_the_closed_form_per_observation():
    generator = torch.Generator().manual_seed(1)
    mu = torch.tensor([0.0, 2.0, -1.0], dtype=torch.float64)
    y = torch.tensor([0.3, -1.0, 2.5], dtype=torch.float64)
    members = mu + 0.7 * torch.randn(40_000, 3, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(crps(members, y), gaussian_crps(mu, 0.7, y), atol=0.015, rtol=0)


def test_almost_fair_crps_is_the_fair_one_at_alpha_one_and_the_mixture_otherwise():
    generator = torch.Generator().manual_seed(2)
    members = torch.randn(5, 7, 3, generator=generator, dtype=torch.float64)
    target = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    fair = crps(members, target)
    torch.testing.assert_close(crps(members, target, alpha=1.0), fair, rtol=0, atol=0)
    m = members.shape[0]
    brute_pairs = (members[:, None] - members[None, :]).abs().sum(dim=(0, 1)) / (m * (m - 1))
    torch.testing.assert_close(mean_pairwise_difference(members), brute_pairs)
    torch.testing.assert_close(fair, (members - target).abs().mean(dim=0) - 0.5 * brute_pairs)
    for alpha in (0.0, 0.5, 0.95):
        # Lang et al.'s pair form: 1/(2M(M−1)) Σ_{j≠k} (|x_j − y| + |x_k − y| − (1 − ε)|x_j − x_k|)
        eps = (1 - alpha) / m
        error = (members - target).abs()
        pair_terms = error[:, None] + error[None, :] - (1 - eps) * (members[:, None] - members[None, :]).abs()
        off_diagonal = ~torch.eye(m, dtype=torch.bool)
        pair_form = pair_terms[off_diagonal].sum(dim=0) / (2 * m * (m - 1))
        torch.testing.assert_close(crps(members, target, alpha), pair_form)
        mixture = alpha * fair + (1 - alpha) * ensemble_crps(members, target)
        torch.testing.assert_close(crps(members, target, alpha), mixture)
    assert not torch.allclose(crps(members, target, 0.95), fair)


def test_energy_score_in_one_dimension_is_the_fair_crps_and_weights_enter_the_norm():
    generator = torch.Generator().manual_seed(3)
    members = torch.randn(4, 6, 1, generator=generator, dtype=torch.float64)
    target = torch.randn(6, 1, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(energy_score(members, target), crps(members, target)[:, 0])
    members2 = torch.randn(4, 6, 2, generator=generator, dtype=torch.float64)
    target2 = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    weight = torch.tensor([4.0, 0.25], dtype=torch.float64)
    scaled = torch.tensor([2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(energy_score(members2, target2, weight),
                               energy_score(members2 * scaled, target2 * scaled))


def test_scores_refuse_bad_shapes_and_alphas():
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="members must be"):
        crps(x, torch.zeros(5))
    with pytest.raises(ValueError, match="at least 2 members"):
        crps(torch.zeros(1, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="alpha"):
        ScoringRule("crps", alpha=1.5)
    with pytest.raises(ValueError, match="unknown scoring rule"):
        ScoringRule("log")
    with pytest.raises(ValueError, match="≥ 2 members"):
        PushForwardObjective(ScoringRule(), members=1, noise_features=2)


class PushForward(nn.Module):
    """x = MLP([c, z]): a push-forward generator of D-dim samples from condition c and noise z."""

    def __init__(self, cond: int, noise: int, out: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cond + noise, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, out)).double()

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.net(z if cond is None else torch.cat([cond, z], dim=-1))


def test_a_generator_trained_by_the_energy_score_recovers_a_2d_gaussian():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0], dtype=torch.float64)
    covariance = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    chol = torch.linalg.cholesky(covariance)
    model = PushForward(0, 2, 2)
    objective = PushForwardObjective(ScoringRule("energy"), members=8, noise_features=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for step in range(600):
        y = mean + torch.randn(64, 2, generator=generator, dtype=torch.float64) @ chol.T
        loss = objective.loss(model, y, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 400:
            optimizer.param_groups[0]["lr"] = 2e-3
    with torch.no_grad():
        samples = model(torch.randn(40_000, 2, generator=generator, dtype=torch.float64), None)
    torch.testing.assert_close(samples.mean(dim=0), mean, atol=0.08, rtol=0)
    torch.testing.assert_close(torch.cov(samples.T), covariance, atol=0.12, rtol=0)


def test_a_conditional_generator_trained_by_the_afcrps_recovers_the_conditional_spread():
    """y = sin(2c) + s(c)·n with s(c) = 0.45 + 0.35·c: the trained generator's spread at c follows s(c)."""
    torch.manual_seed(1)

    def spread(c: torch.Tensor) -> torch.Tensor:
        return 0.45 + 0.35 * c

    model = PushForward(1, 4, 1)
    objective = PushForwardObjective(ScoringRule("crps", alpha=0.95), members=4, noise_features=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for step in range(800):
        c = 2 * torch.rand(128, 1, generator=generator, dtype=torch.float64) - 1
        y = torch.sin(2 * c) + spread(c) * torch.randn(128, 1, generator=generator, dtype=torch.float64)
        loss = objective.loss(model, y, c, generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 500:
            optimizer.param_groups[0]["lr"] = 2e-3
    grid = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)[:, None]
    with torch.no_grad():
        samples = objective.sample(model, grid, 7, torch.float64, torch.device("cpu"), generator)
        many = torch.cat([objective.sample(model, grid, 7, torch.float64, torch.device("cpu"), generator)
                          for _ in range(1000)])  # (4000, 7, 1)
    assert samples.shape == (4, 7, 1)
    torch.testing.assert_close(many.std(dim=0)[:, 0], spread(grid)[:, 0], atol=0.03, rtol=0.1)
    torch.testing.assert_close(many.mean(dim=0)[:, 0], torch.sin(2 * grid)[:, 0], atol=0.08, rtol=0)
