"""Small backbones for events beyond vectors: grid fields (B, nodes, channels) and images (B, C, H, W)."""

import torch
from torch import Tensor, nn


class GridField(nn.Module):
    """Pointwise field on (B, nodes, channels) conditioned on a grid field (B, nodes, cond_channels).

    The null condition is all zeros. Records every condition it is called with in ``seen``.
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(channels + cond_channels + 1, hidden), nn.SiLU(),
                                  nn.Linear(hidden, channels))
        self.seen: list[Tensor] = []
        self.calls = 0

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        self.calls += 1
        self.seen.append(cond)
        time = t[:, None, None].expand(-1, x_t.shape[1], 1).to(x_t.dtype)
        return self.body(torch.cat([x_t, cond.to(x_t.dtype), time], dim=-1))

    def null_condition(self, cond: Tensor) -> Tensor:
        return torch.zeros_like(cond)


class ImageField(nn.Module):
    """A tiny class-conditional convolutional field on (B, C, H, W); label K is the null class."""

    def __init__(self, channels: int, num_classes: int, hidden: int = 8) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes + 1, hidden)
        self.inp = nn.Conv2d(channels, hidden, 3, padding=1)
        self.out = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        h = self.inp(x_t) + self.embed(cond)[:, :, None, None] + t[:, None, None, None].to(x_t.dtype)
        return self.out(torch.nn.functional.silu(h))

    def null_condition(self, cond: Tensor) -> Tensor:
        return torch.full_like(cond, self.num_classes)


class GaussianEnergy(nn.Module):
    """The exact normalised energy of Gaussian classes on the path x_t = α_t·x₁ + σ_t·x₀.

    Class h has data N(μ_h, Σ_h); at flow time t its marginal is N(α_t·μ_h, α_t²Σ_h + σ_t²I), and
    E(x, t, h) = −log N(x; α_t·μ_h, α_t²Σ_h + σ_t²I): (B, D), (B,), labels (B,) or None (class 0) -> (B,).
    """

    def __init__(self, schedule: object, means: Tensor, covariances: Tensor) -> None:
        super().__init__()
        self.schedule, self.means, self.covariances = schedule, means, covariances
        self.features = means.shape[1]

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        labels = torch.zeros(x_t.shape[0], dtype=torch.long) if cond is None else cond
        c = self.schedule.coefficients(t)
        alpha, sigma = c.alpha.to(x_t.dtype)[:, None], c.sigma.to(x_t.dtype)[:, None]
        eye = torch.eye(x_t.shape[1], dtype=x_t.dtype)
        cov = alpha[:, :, None] ** 2 * self.covariances[labels] + sigma[:, :, None] ** 2 * eye
        normal = torch.distributions.MultivariateNormal(alpha * self.means[labels], covariance_matrix=cov)
        return -normal.log_prob(x_t)
