"""Masked autoregressive spline transforms: a MADE conditioner feeding rational-quadratic splines.

MADE (Germain et al. 2015) gives every input entry i a degree m(i) ∈ {1, …, D} (its position in the
autoregressive order) and every hidden unit a degree in {1, …, D−1}; a weight from unit a to unit b
is kept iff m(b) ≥ m(a) between hidden layers (and from the input), and iff m(i) > m(a) into the
outputs of entry i. Hence the spline parameters θ_i of entry i depend only on the entries before it
in the order, and

    z_i = g(x_i; θ_i(x_<i)),        log|det ∂z/∂x| = Σ_i log g'(x_i; θ_i(x_<i))

(the Jacobian is triangular in the order). The density is one network pass; the inverse needs D
passes, each fixing one more entry (x ← g⁻¹(z; θ(x)), exact after D iterations). The spline is
``vecfield.flows.spline.rational_quadratic_spline``. Masked weights are counted as parameters.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecfield.flows.bijection import Bijection
from vecfield.flows.spline import rational_quadratic_spline

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


class MaskedLinear(nn.Linear):
    """y = x (W ⊙ M)ᵀ + b with a fixed 0/1 mask M (out_features, in_features)."""

    mask: Tensor  # (out_features, in_features) buffer

    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Autoregressive network (B, D) -> (B, D, outputs_per_entry), order given by ``order``.

    order: a permutation of range(D); entry order[j] is the j-th in the autoregressive order.
    """

    def __init__(self, order: Tensor, outputs_per_entry: int, hidden_features: int, depth: int,
                 activation: str = "relu") -> None:
        super().__init__()
        dims = order.numel()
        if dims < 2 or depth < 1:
            raise ValueError(f"MADE needs at least 2 entries and depth ≥ 1, got {dims} entries and "
                             f"depth {depth}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(_ACTIVATIONS)}")
        degree_in = torch.empty(dims, dtype=torch.long)
        degree_in[order] = torch.arange(1, dims + 1)
        degree_hidden = torch.arange(hidden_features) % (dims - 1) + 1
        layers: list[nn.Module] = []
        previous = degree_in
        for _ in range(depth):
            layers += [MaskedLinear((degree_hidden[:, None] >= previous[None, :]).float()),
                       _ACTIVATIONS[activation]()]
            previous = degree_hidden
        degree_out = degree_in.repeat_interleave(outputs_per_entry)
        layers.append(MaskedLinear((degree_out[:, None] > previous[None, :]).float()))
        self.net = nn.Sequential(*layers)
        self.outputs_per_entry = outputs_per_entry

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(x.shape[0], x.shape[1], self.outputs_per_entry)


class AutoregressiveSpline(Bijection):
    """Masked autoregressive RQ-spline transform on the flattened event (module docstring).

    event entries D = prod(event_shape); ``order``: permutation of range(D) (the autoregressive order).
    """

    def __init__(self, order: Tensor, hidden_features: int = 128, depth: int = 2, bins: int = 8,
                 bound: float = 5.0, activation: str = "relu") -> None:
        super().__init__()
        if bins < 2 or bound <= 0:
            raise ValueError(f"need bins ≥ 2 and bound > 0, got bins={bins}, bound={bound}")
        self.bins, self.bound, self.dims = bins, bound, order.numel()
        self.conditioner = MADE(order, 3 * bins - 1, hidden_features, depth, activation)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        z, log_derivative = rational_quadratic_spline(flat, self.conditioner(flat), self.bound)
        return z.reshape(x.shape), log_derivative.sum(dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        z = y.flatten(1)
        x = torch.zeros_like(z)
        for _ in range(self.dims):  # after j passes the first j entries in the order are exact
            x = rational_quadratic_spline(z, self.conditioner(x), self.bound, inverse=True)[0]
        return x.reshape(y.shape)
