"""The reference entropies of the 2-D toys, recomputed from the samplers' own definitions."""

import math

import torch

from vecfield.toys import TRUE_ENTROPY, sample_toy


def eight_gaussians_log_density(x: torch.Tensor) -> torch.Tensor:
    """log of the equal mixture of N(c_k, 0.125·I), c_k = (4/√2)(cos kπ/4, sin kπ/4); x (N, 2) -> (N,)."""
    angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
    centers = torch.stack([angles.cos(), angles.sin()], dim=1) * (4 / math.sqrt(2))
    squared = ((x[:, None, :] - centers[None]) ** 2).sum(-1)
    return torch.logsumexp(-squared / (2 * 0.125), dim=1) - math.log(8 * 2 * math.pi * 0.125)


def test_eight_gaussians_density_matches_the_sampler() -> None:
    """The density above is the sampler's: mean and covariance of samples agree with the mixture's."""
    x = sample_toy("8gaussians", 200_000, torch.Generator().manual_seed(0)).double()
    # mixture covariance: 0.125·I + E[c cᵀ] = (0.125 + 8/2)·I, mean 0
    assert x.mean(0).abs().max() < 5 * math.sqrt(4.125 / len(x))
    torch.testing.assert_close(torch.cov(x.T), 4.125 * torch.eye(2, dtype=torch.float64), atol=0.05, rtol=0)
    # the mean of −log p over samples is a Monte-Carlo estimate of the entropy
    nll = -eight_gaussians_log_density(x)
    assert abs(float(nll.mean()) - TRUE_ENTROPY["8gaussians"]) < 4 * float(nll.std()) / math.sqrt(len(x))


def test_eight_gaussians_entropy_by_quadrature() -> None:
    """−∫ p ln p by the midpoint rule on [−5, 5]²; the overlap of the modes makes it 0.006 nats less
    than ln 8 plus one Gaussian's entropy."""
    h = 0.02
    axis = torch.arange(-5, 5, h, dtype=torch.float64) + h / 2
    grid = torch.cartesian_prod(axis, axis)
    log_p = eight_gaussians_log_density(grid)
    p = log_p.exp()
    assert abs(float(p.sum()) * h * h - 1) < 1e-8
    entropy = -float((p * log_p).sum()) * h * h
    assert abs(entropy - TRUE_ENTROPY["8gaussians"]) < 1e-5
    assert math.log(8) + math.log(2 * math.pi * math.e * 0.125) - entropy > 0.005


def test_checkerboard_entropy_is_log_support_area() -> None:
    """Uniform density on its support: entropy = ln(area). All samples lie on 8 squares of side 2."""
    x = sample_toy("checkerboard", 20_000, torch.Generator().manual_seed(0))
    assert x.abs().max() <= 4
    column, row = torch.floor((x + 4) / 2).long().unbind(1)
    assert torch.all((column + row) % 2 == 0)  # one colour only: 8 of the 16 cells of side 2
    assert TRUE_ENTROPY["checkerboard"] == math.log(8 * 2 * 2)
