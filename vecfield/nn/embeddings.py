"""Embeddings of flow time (or any scalar such as a noise level)."""

import math

import torch
from torch import Tensor, nn


class SinusoidalEmbedding(nn.Module):
    """Transformer-style features of a scalar: [sin(s·ω_k), cos(s·ω_k)], k < dim/2.

    ω_k = max_period^(−k/(dim/2)) · scale, so t ∈ [0, 1] with ``scale=1000`` covers the same
    frequencies as a DDPM step index in [0, 1000].

    Shapes: (batch,) -> (batch, dim).
    """

    def __init__(self, dim: int, scale: float = 1000.0, max_period: float = 10_000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"embedding dim must be an even number ≥ 2, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half) / half) * scale
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, s: Tensor) -> Tensor:
        if s.ndim != 1:
            raise ValueError(f"expected a 1-D tensor of shape (batch,), got shape {tuple(s.shape)}")
        if not s.is_floating_point():
            s = s.float()
        arg = s[:, None] * self.freqs.to(s.dtype)[None, :]
        return torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
