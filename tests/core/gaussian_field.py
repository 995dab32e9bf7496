"""The closed-form optimal vector field for Gaussian data, used as an exact 'network' in tests."""

import torch
from torch import Tensor, nn

from vecfield.core.schedules import Schedule
from vecfield.core.targets import target_value


class GaussianOptimalField(nn.Module):
    """E[target | x_t] for data x₁ ~ N(μ, Σ) and source x₀ ~ N(0, I) under ``schedule``.

    With C_t = α_t²Σ + σ_t²I and r = C_t⁻¹(x_t − α_tμ): E[x₁|x_t] = μ + α_tΣr, E[x₀|x_t] = σ_t·r.
    Counts its calls in ``calls``.
    """

    def __init__(self, mean: Tensor, cov: Tensor, schedule: Schedule, target: str = "velocity") -> None:
        super().__init__()
        self.mean, self.cov, self.schedule, self.target = mean, cov, schedule, target
        self.eigvals, self.eigvecs = torch.linalg.eigh(cov)
        self.calls = 0

    def forward(self, x_t: Tensor, t: Tensor, cond: object = None) -> Tensor:
        self.calls += 1
        c = self.schedule.coefficients(t).expand_as(x_t)  # (B, 1)
        # C_t = Q(α²Λ + σ²I)Qᵀ with Σ = QΛQᵀ, so r = Q·diag(1/(α²λ + σ²))·Qᵀ(x_t − αμ)
        rotated = (x_t - c.alpha * self.mean) @ self.eigvecs  # (B, D)
        r = (rotated / (c.alpha**2 * self.eigvals + c.sigma**2)) @ self.eigvecs.T
        x1 = self.mean + c.alpha * (r @ self.cov.T)
        return target_value(self.target, x1, c.sigma * r, c)

    def marginal(self, t: float) -> tuple[Tensor, Tensor]:
        """Mean (D,) and covariance (D, D) of x_t."""
        c = self.schedule.coefficients(torch.tensor(t, dtype=torch.float64))
        eye = torch.eye(self.mean.shape[0], dtype=torch.float64)
        return c.alpha * self.mean, c.alpha**2 * self.cov + c.sigma**2 * eye


MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
