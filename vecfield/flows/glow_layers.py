"""Glow's layers (Kingma & Dhariwal 2018): ActNorm and the invertible 1×1 convolution in LU form.

Both act on dimension 1 (features of a vector (B, D), or channels of an image (B, C, H, W)) and
are shared by every spatial position, so their log-determinants are H·W times a per-channel sum
of log-diagonal terms.
"""

import torch
from torch import Tensor, nn

from vecfield.flows.bijection import Bijection


def _positions(x: Tensor) -> int:
    """Number of spatial positions sharing the per-channel parameters (1 for vectors)."""
    return x[0, 0].numel()


class ActNorm(Bijection):
    """y = (x + bias)⊙exp(log_scale) per channel; log_det = H·W·Σ log_scale.

    Data-dependent initialization is explicit: ``initialize(batch)`` (called by ``Flow.initialize``
    and by ``vecfield.density.fit`` before the first step) sets bias and scale so that the batch's
    outputs have zero mean and unit variance per channel, and sets the persistent ``initialized``
    buffer. Nothing happens lazily on a forward call; a fresh layer is the identity, and a layer
    loaded from a checkpoint keeps its state (the buffer travels in the state dict).
    """

    initialized: Tensor  # () bool buffer

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, p: Tensor, x: Tensor) -> Tensor:
        return p.reshape(1, -1, *([1] * (x.ndim - 2)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = (x + self._view(self.bias, x)) * torch.exp(self._view(self.log_scale, x))
        return y, (self.log_scale.sum() * _positions(x)).expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self._view(self.log_scale, y)) - self._view(self.bias, y)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> Tensor:
        if x.shape[0] < 2:
            raise ValueError("ActNorm's data-dependent initialization needs a batch of at least 2 examples")
        per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, B·H·W)
        self.bias.copy_(-per_channel.mean(dim=1))
        self.log_scale.copy_(-torch.log(per_channel.std(dim=1) + 1e-6))
        self.initialized.fill_(True)
        return self.forward(x)[0]


class InvertibleLinearLU(Bijection):
    """Invertible 1×1 convolution (or dense layer on vectors) with W = P·L·(U + diag(sign·exp(log_s))).

    P is a fixed permutation, L unit lower triangular, U strictly upper triangular, so
    log|det W| = Σ log_s and the layer's log_det = H·W·Σ log_s. Initialized from a random rotation
    (drawn from torch's global generator).
    """

    perm: Tensor  # (C, C) permutation matrix P, buffer
    sign: Tensor  # (C,) buffer
    lower_mask: Tensor  # (C, C) strictly lower-triangular ones, buffer

    def __init__(self, channels: int) -> None:
        super().__init__()
        rotation, _ = torch.linalg.qr(torch.randn(channels, channels))
        perm, lower, upper = torch.linalg.lu(rotation)
        diagonal = torch.diagonal(upper)
        self.register_buffer("perm", perm)
        self.register_buffer("sign", torch.sign(diagonal))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diagonal.abs()))

    def weight(self) -> Tensor:
        """The (C, C) matrix W = P L (U + diag(sign·exp(log_s)))."""
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = torch.einsum("ij,bj...->bi...", self.weight(), x)
        return y, (self.log_s.sum() * _positions(x)).expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return torch.einsum("ij,bj...->bi...", torch.linalg.inv(self.weight()), y)
