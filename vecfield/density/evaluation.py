"""Held-out log-likelihood in nats and bits/dim, with uniform dequantization of discrete data.

Discrete data with L levels k ∈ {0, …, L−1} are dequantized into [−1, 1] as

    y = 2·(k + u)/L − 1,   u ~ U(0, 1)^D,

so each discrete value owns a cell of side 2/L. For any density p on y,

    log P(k) = log ∫_cell p(y) dy ≥ E_u[log p(y)] + D·log(2/L)     (Jensen),

which is the discrete log-likelihood reported here (a lower bound, estimated with one u per
example). Bits/dim = −log-likelihood / (D·ln 2); a uniform density gives exactly log₂ L.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vecfield.core.likelihood import bits_per_dim
from vecfield.density.contract import DensityModel


@dataclass(frozen=True)
class Dequantization:
    """Uniform dequantization of integer data with ``levels`` values into [−1, 1]."""

    levels: int

    def __post_init__(self) -> None:
        if self.levels < 2:
            raise ValueError(f"levels must be ≥ 2 (e.g. 17 for sklearn digits, 256 for 8-bit images), "
                             f"got {self.levels}")

    def __call__(self, k: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Integer levels (B, *event) -> dequantized floats y = 2(k+u)/L − 1 in [−1, 1]."""
        if k.is_floating_point() and not torch.equal(k, k.round()):
            raise ValueError("dequantization expects integer levels; got non-integer values")
        if int(k.min()) < 0 or int(k.max()) >= self.levels:
            raise ValueError(f"levels must lie in [0, {self.levels - 1}], "
                             f"got values in [{int(k.min())}, {int(k.max())}]")
        u = torch.rand(k.shape, generator=generator, dtype=torch.get_default_dtype())
        return 2 * (k.to(u.dtype) + u) / self.levels - 1

    def log_cell_volume(self, dims: int) -> float:
        """D·log(2/L): log-volume of one discrete value's cell in [−1, 1]^D."""
        return dims * math.log(2 / self.levels)


@torch.no_grad()
def mean_log_likelihood(model: DensityModel, data: Tensor, dequantization: Dequantization | None = None,
                        batch_size: int = 512, generator: torch.Generator | None = None) -> float:
    """Average log-likelihood in nats per example of data (N, *event).

    With ``dequantization``, ``data`` holds integer levels and the result is the dequantized
    lower bound on the discrete log-likelihood (module docstring).
    """
    if data.shape[0] == 0:
        raise ValueError("cannot evaluate a log-likelihood on an empty data set")
    dims = math.prod(data.shape[1:])
    dtype = next((p.dtype for p in getattr(model, "parameters", list)()), torch.get_default_dtype())
    total = 0.0
    for start in range(0, data.shape[0], batch_size):
        batch = data[start : start + batch_size]
        x = dequantization(batch, generator) if dequantization is not None else batch
        total += float(model.log_prob(x.to(dtype)).double().sum())
    mean = total / data.shape[0]
    return mean + (dequantization.log_cell_volume(dims) if dequantization is not None else 0.0)


@dataclass(frozen=True)
class HeldOutReport:
    """Train and held-out log-likelihood side by side (seed §14.2.1), nats and bits/dim.

    ``is_bound`` is True when the numbers are lower bounds (VAE's IWAE, or dequantized data).
    """

    model: str
    dims: int
    train_nats: float
    held_out_nats: float
    is_bound: bool

    @property
    def train_bits_per_dim(self) -> float:
        return bits_per_dim(self.train_nats, self.dims)

    @property
    def held_out_bits_per_dim(self) -> float:
        return bits_per_dim(self.held_out_nats, self.dims)

    def as_dict(self) -> dict[str, float | str | bool | int]:
        """Plain values (JSON-ready), bits/dim included."""
        return dict(model=self.model, dims=self.dims, train_nats=self.train_nats,
                    held_out_nats=self.held_out_nats, train_bits_per_dim=self.train_bits_per_dim,
                    held_out_bits_per_dim=self.held_out_bits_per_dim, is_bound=self.is_bound)

    def __str__(self) -> str:
        label = "  (lower bound)" if self.is_bound else ""
        return (f"{self.model:<10} log-likelihood per example: train {self.train_nats:10.3f} nats "
                f"({self.train_bits_per_dim:.3f} bits/dim) | held-out {self.held_out_nats:10.3f} nats "
                f"({self.held_out_bits_per_dim:.3f} bits/dim){label}")


def held_out_report(model: DensityModel, train: Tensor, held_out: Tensor,
                    dequantization: Dequantization | None = None, batch_size: int = 512,
                    generator: torch.Generator | None = None) -> HeldOutReport:
    """Evaluate ``model`` on its training data and on held-out data (same units, same estimator)."""
    if tuple(train.shape[1:]) != tuple(held_out.shape[1:]):
        raise ValueError(f"train and held-out examples differ in shape: {tuple(train.shape[1:])} vs "
                         f"{tuple(held_out.shape[1:])}")
    dims = math.prod(train.shape[1:])
    train_ll = mean_log_likelihood(model, train, dequantization, batch_size, generator)
    held_ll = mean_log_likelihood(model, held_out, dequantization, batch_size, generator)
    is_bound = (not model.exact_log_prob) or dequantization is not None
    return HeldOutReport(type(model).__name__, dims, train_ll, held_ll, is_bound)
