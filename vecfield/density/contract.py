"""The one contract every density model in vecfield meets, so that all of them share one table.

A density model (GMM, VAE, NICE, RealNVP, Glow, …) answers:

    model.event_shape                      the shape of one example, e.g. (2,) or (1, 8, 8)
    model.exact_log_prob                   False when log_prob is a bound (the VAE's IWAE)
    model.log_prob(x)                      (B, *event) -> (B,) log-likelihood, nats per example
    model.sample(n, generator=None)        -> (n, *event)

and is trained by ``vecfield.density.fit`` in one of two ways:

    model.training_loss(x) -> scalar       minimized by gradient steps (flows: NLL; VAE: −ELBO), or
    model.fit(x, generator=None)           a closed-form / EM fit (the Gaussian mixture).

``vecfield.density.held_out_report`` then gives train and held-out log-likelihood side by side
in nats and bits/dim (seed §14.2.1).
"""

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class DensityModel(Protocol):
    """Structural type of a density model: log-likelihood per example and sampling."""

    event_shape: tuple[int, ...]
    exact_log_prob: bool

    def log_prob(self, x: Tensor) -> Tensor: ...

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...


@runtime_checkable
class GradientTrainable(DensityModel, Protocol):
    """A density model trained by minimizing ``training_loss`` over minibatches."""

    def training_loss(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class DirectlyFittable(DensityModel, Protocol):
    """A density model fitted in one call on the whole training set (EM, closed form)."""

    def fit(self, x: Tensor, generator: torch.Generator | None = None) -> "DirectlyFittable": ...
