"""A normalizing flow as a density model: a bijection to a standard normal base (seed eq. 15.2).

    log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x|,         x = f⁻¹(z), z ~ N(0, I)

where f is a chain of bijections whose log-determinants are sums of log-diagonal terms.
"""

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from vecfield.core.likelihood import gaussian_log_prob
from vecfield.flows.bijection import Bijection


def check_batch(x: Tensor, event_shape: tuple[int, ...], what: str = "data") -> None:
    """Raise ValueError unless x is a finite floating batch of shape (B, *event_shape)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(event_shape) or x.ndim != len(event_shape) + 1:
        raise ValueError(f"{what} must have shape (batch, {', '.join(map(str, event_shape))}), "
                         f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got {x.dtype}; convert with .float()")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).flatten(1).any(dim=1).sum())
        raise ValueError(f"{what} contains non-finite values (NaN or ±inf) in {bad} example(s); "
                         f"drop or impute them first")


class Flow(nn.Module):
    """Density model ``p(x)`` from a bijection ``transform`` (data → latent) and a N(0, I) base.

    ``config`` holds the constructor arguments (plain Python values) so that a checkpoint can
    rebuild the model (see ``vecfield.density.checkpoint``).
    """

    exact_log_prob = True

    def __init__(self, transform: Bijection, event_shape: tuple[int, ...], config: dict[str, Any]) -> None:
        super().__init__()
        self.transform = transform
        self.event_shape = tuple(event_shape)
        self.config = config

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density in nats, eq. 15.2: (B, *event) -> (B,)."""
        check_batch(x, self.event_shape)
        z, log_det = self.transform(x)
        return gaussian_log_prob(z) + log_det

    def training_loss(self, x: Tensor) -> Tensor:
        """Mean negative log-likelihood of a batch (B, *event), a scalar."""
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples x = f⁻¹(z), z ~ N(0, I): -> (n, *event)."""
        reference = next(itertools.chain(self.parameters(), self.buffers()))  # dtype and device of the flow
        z = torch.randn((n, *self.event_shape), generator=generator, dtype=reference.dtype)
        return self.transform.inverse(z.to(reference.device))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Data-dependent initialization (Glow's ActNorm) from a batch x (B, *event), B ≥ 2."""
        check_batch(x, self.event_shape)
        self.transform.initialize(x)

    @property
    def initialized(self) -> bool:
        """True once every layer with data-dependent initialization has been initialized."""
        return all(bool(buf) for name, buf in self.named_buffers() if name.endswith("initialized"))
