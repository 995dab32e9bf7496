"""Volume-preserving reshapes of images: squeeze (space → channels) and multi-scale factoring.

Squeeze (RealNVP §3.6) turns each 2×2 spatial block into 4 channels: (C, H, W) → (4C, H/2, W/2).
``FactorOut`` implements the multi-scale architecture: the first half of the channels leave the
flow (they are Gaussianized directly by the base density) and the rest go through the next scale.
Both have log-determinant 0.
"""

import torch
from torch import Tensor

from vecfield.flows.bijection import Bijection


def check_squeezable(image_shape: tuple[int, ...], squeezes: int) -> None:
    """Raise ValueError unless an image (C, H, W) can be squeezed ``squeezes`` times."""
    if len(image_shape) != 3:
        raise ValueError(f"expected an image shape (C, H, W), got {tuple(image_shape)}")
    _, height, width = image_shape
    factor = 2**squeezes
    if height % factor or width % factor:
        possible = 0
        while height % 2 ** (possible + 1) == 0 and width % 2 ** (possible + 1) == 0:
            possible += 1
        raise ValueError(
            f"image sides {height}×{width} do not allow {squeezes} squeeze(s) (each halves both sides, "
            f"so they must be divisible by {factor}); use at most {possible} squeeze(s), i.e. fewer "
            f"scales, or crop/pad the images"
        )


def squeeze(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2×2 block becomes 4 channels."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2)  # (B, C, H/2, 2, W/2, 2)
    return x.permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(y: Tensor) -> Tensor:
    """(B, 4C, H/2, W/2) -> (B, C, H, W), the inverse of ``squeeze``."""
    b, c4, h2, w2 = y.shape
    y = y.reshape(b, c4 // 4, 2, 2, h2, w2)  # (B, C, 2, 2, H/2, W/2)
    return y.permute(0, 1, 4, 2, 5, 3).reshape(b, c4 // 4, 2 * h2, 2 * w2)


class Squeeze(Bijection):
    """Space-to-channel reshape, log-determinant 0."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_squeezable(tuple(x.shape[1:]), 1)
        return squeeze(x), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return unsqueeze(y)


class Unsqueeze(Bijection):
    """Channel-to-space reshape (the inverse of ``Squeeze``), log-determinant 0."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return unsqueeze(x), x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return squeeze(y)


class FactorOut(Bijection):
    """Multi-scale step: channels [0, keep) leave unchanged, channels [keep, C) go through ``inner``.

    Shapes: (B, C, H, W) -> (B, C, H, W); log_det = inner's log_det.
    """

    def __init__(self, inner: Bijection, factored_channels: int) -> None:
        super().__init__()
        self.inner = inner
        self.factored_channels = factored_channels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        out, rest = x[:, : self.factored_channels], x[:, self.factored_channels :]
        rest, log_det = self.inner(rest)
        return torch.cat([out, rest], dim=1), log_det

    def inverse(self, y: Tensor) -> Tensor:
        out, rest = y[:, : self.factored_channels], y[:, self.factored_channels :]
        return torch.cat([out, self.inner.inverse(rest)], dim=1)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> Tensor:
        out, rest = x[:, : self.factored_channels], x[:, self.factored_channels :]
        return torch.cat([out, self.inner.initialize(rest)], dim=1)
