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

    freqs: Tensor  # (dim // 2,) buffer

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


class FourierFeatures(nn.Module):
    """Random Fourier features of a vector (Tancik et al. 2020): γ(x) = [x, sin(2πxB), cos(2πxB)].

    B ∈ R^{D×K} has i.i.d. N(0, scale²) entries, drawn once from the global RNG and stored as a
    buffer, so it travels with the state dict. An MLP on raw coordinates learns high frequencies
    slowly (spectral bias); these features let it represent sharp edges, e.g. the checkerboard's.
    ``scale`` is in cycles per unit of x: a feature's period is 1/|B_{:,k}|.

    Shapes: (batch, D) -> (batch, D + 2K).
    """

    frequencies: Tensor  # (D, K) buffer

    def __init__(self, features: int, frequencies: int, scale: float = 1.0) -> None:
        super().__init__()
        if features < 1 or frequencies < 1:
            raise ValueError(f"need features ≥ 1 and frequencies ≥ 1, got {features} and {frequencies}")
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"the Fourier scale must be a positive number, got {scale}")
        self.register_buffer("frequencies", torch.randn(features, frequencies) * (2 * math.pi * scale))
        self.out_features = features + 2 * frequencies

    def forward(self, x: Tensor) -> Tensor:
        arg = x @ self.frequencies.to(x.dtype)
        return torch.cat([x, torch.sin(arg), torch.cos(arg)], dim=-1)
