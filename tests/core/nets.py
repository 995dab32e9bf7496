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
