"""Coupling layers (NICE additive, RealNVP affine), their masks, and NICE's scaling layer.

With a binary mask b (1 = conditioning part) and a conditioner network giving s(·), t(·), the
affine coupling of RealNVP (seed eqs. 15.3–15.6) is, in the normalizing direction,

    y = b⊙x + (1−b)⊙(x⊙exp(s(b⊙x)) + t(b⊙x)),       log|det ∂y/∂x| = Σ (1−b)⊙s(b⊙x),
    x = b⊙y + (1−b)⊙((y − t(b⊙y))⊙exp(−s(b⊙y))),

because the Jacobian is triangular with diagonal exp((1−b)⊙s): the log-determinant is the sum
of the log-diagonal. NICE's additive coupling is the case s = 0 (volume preserving). The masks work
for vectors (D,) and images (C, H, W) alike; the conditioner is any vecfield backbone called as
``net(b⊙x, None, None)`` and returning 2× (affine) or 1× (additive) the input's channels.
"""


import torch
from torch import Tensor, nn

from vecfield.flows.bijection import Bijection


def checkerboard_mask(event_shape: tuple[int, ...], parity: int) -> Tensor:
    """Mask of ``event_shape`` with 1 where (sum of spatial indices + parity) is even.

    Vectors (D,): alternate entries; images (C, H, W): a spatial checkerboard, equal over channels.
    """
    if len(event_shape) == 1:
        return ((torch.arange(event_shape[0]) + parity) % 2 == 0).float()
    c, h, w = event_shape
    board = (torch.arange(h)[:, None] + torch.arange(w)[None, :] + parity) % 2 == 0
    return board.float().expand(c, h, w).clone()


def channel_mask(event_shape: tuple[int, ...], parity: int) -> Tensor:
    """Mask with 1 on the first half of the channels (parity 0) or on the second half (parity 1).

    Vectors (D,): the first ⌊D/2⌋ entries; images (C, H, W): the first ⌊C/2⌋ channels.
    """
    channels = event_shape[0]
    first = (torch.arange(channels) < channels // 2).float()
    mask = first if parity == 0 else 1 - first
    return mask.reshape(-1, *([1] * (len(event_shape) - 1))).expand(*event_shape).clone()


class Coupling(Bijection):
    """Affine (RealNVP) or additive (NICE) coupling with a fixed mask; see the module docstring.

    ``scale_bound`` softly clamps s to (−bound, bound) with bound·tanh(s/bound), which keeps
    exp(s) finite early in training without changing the triangular structure.
    """

    mask: Tensor  # (*event) 0/1 buffer, 1 = conditioning entry

    def __init__(self, mask: Tensor, conditioner: nn.Module, affine: bool = True,
                 scale_bound: float = 3.0) -> None:
        super().__init__()
        if mask.min() != 0 or mask.max() != 1:
            raise ValueError("a coupling mask must contain both 0 (transformed) and 1 (conditioning) entries")
        self.register_buffer("mask", mask)
        self.conditioner = conditioner
        self.affine = affine
        self.scale_bound = scale_bound

    def _shift_and_log_scale(self, x_cond: Tensor) -> tuple[Tensor, Tensor]:
        h = self.conditioner(x_cond, None, None)
        free = 1 - self.mask
        if not self.affine:
            return h * free, torch.zeros_like(x_cond)
        raw_log_scale, shift = h.chunk(2, dim=1)
        log_scale = self.scale_bound * torch.tanh(raw_log_scale / self.scale_bound)
        return shift * free, log_scale * free

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_cond = x * self.mask
        shift, log_scale = self._shift_and_log_scale(x_cond)
        y = x_cond + (1 - self.mask) * (x * torch.exp(log_scale) + shift)
        return y, log_scale.flatten(1).sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        y_cond = y * self.mask
        shift, log_scale = self._shift_and_log_scale(y_cond)
        return y_cond + (1 - self.mask) * ((y - shift) * torch.exp(-log_scale))


class ElementwiseScaling(Bijection):
    """NICE's final scaling layer y = x⊙exp(s), one learned s per event entry; log_det = Σ s."""

    def __init__(self, event_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(event_shape))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        log_det = self.log_scale.sum().expand(x.shape[0])
        return x * torch.exp(self.log_scale), log_det

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.log_scale)
