"""The invertible-map interface every flow layer implements, and its composition.

A bijection maps a batch of events to a batch of the same shape and returns the log-absolute
Jacobian determinant of the map per example (the normalizing direction, data → latent):

    y, log_det = bijection(x)        x, y: (B, *event_shape)   log_det: (B,) = log|det ∂y/∂x|
    x = bijection.inverse(y)

Every layer keeps the event shape (squeezes are undone at the end of each scale, see
``vecfield.flows.reshape``), so a flow is a plain chain and its base density is a standard
normal over the whole event.
"""

from abc import ABC, abstractmethod
from typing import cast

import torch
from torch import Tensor, nn


class Bijection(nn.Module, ABC):
    """An invertible map with a tractable log-determinant: ``x -> (y, log|det ∂y/∂x|)``."""

    @abstractmethod
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, *event) -> ((B, *event), (B,))."""

    @abstractmethod
    def inverse(self, y: Tensor) -> Tensor:
        """(B, *event) -> (B, *event), the exact inverse of ``forward``."""

    @torch.no_grad()
    def initialize(self, x: Tensor) -> Tensor:
        """Data-dependent initialization from a batch x (B, *event); returns this layer's output.

        Layers without data-dependent parameters only pass the batch on; ActNorm overrides this.
        """
        return self.forward(x)[0]


class Chain(Bijection):
    """Composition f_n ∘ … ∘ f_1; the log-determinants add (chain rule)."""

    def __init__(self, *layers: Bijection) -> None:
        super().__init__()
        if not layers:
            raise ValueError("a Chain needs at least one bijection")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, y: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            y = cast(Bijection, layer).inverse(y)  # __init__ fills ``layers`` with Bijections only
        return y

    @torch.no_grad()
    def initialize(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = cast(Bijection, layer).initialize(x)  # __init__ fills ``layers`` with Bijections only
        return x
