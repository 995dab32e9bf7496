"""Monotonic rational-quadratic spline couplings (neural spline flows, Durkan et al. 2019).

On [−B, B] a spline with K bins has knots (x_k, y_k), k = 0…K, with x_0 = y_0 = −B, x_K = y_K = B,
and positive derivatives δ_k at the knots (δ_0 = δ_K = 1, so it joins the identity outside).
In bin k, with w_k = x_{k+1} − x_k, h_k = y_{k+1} − y_k, s_k = h_k/w_k and ξ = (x − x_k)/w_k ∈ [0, 1]:

    g(x)  = y_k + h_k·(s_k ξ² + δ_k ξ(1−ξ)) / (s_k + (δ_{k+1} + δ_k − 2 s_k) ξ(1−ξ))
    g'(x) = s_k²·(δ_{k+1} ξ² + 2 s_k ξ(1−ξ) + δ_k (1−ξ)²) / (s_k + (δ_{k+1} + δ_k − 2 s_k) ξ(1−ξ))²

(paper eqs. 4 and 5). The inverse solves the quadratic a ξ² + b ξ + c = 0 for ξ ∈ [0, 1], with
Δ = y − y_k, d = δ_{k+1} + δ_k − 2 s_k:

    a = h_k (s_k − δ_k) + Δ·d,   b = h_k δ_k − Δ·d,   c = −s_k Δ,   ξ = 2c / (−b − √(b² − 4ac)).

Outside [−B, B] the map is the identity (log-derivative 0). The network's outputs u are first
soft-clipped, c(u; L) = u / (1 + |u|/L) ∈ (−L, L), with L = ln(1/s) for the minimum slope s = 1e-3:
widths and heights are softmaxes of c(u; L/2), so no bin is more than 1/s times wider than another,
and interior derivatives are exp c(u; L) ∈ (s, 1/s), equal to 1 at u = 0. This bounded, exp-based
parametrization is zuko's; against the earlier one (softmax with a floor share of 1e-3 per bin,
derivatives a shifted softplus) it lowered the digits test NLL of the autoregressive NSF by
0.5–0.7 nats on average over 3 seeds (docs/density.md).

``SplineCoupling`` transforms the free entries of the event with one spline each, whose 3K − 1
parameters come from a conditioner that reads only the conditioning entries (so no weights are
spent on masked-out zeros). The Jacobian is triangular; log|det| = Σ log g'.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vecfield.flows.bijection import Bijection
from vecfield.nn import MLP
from vecfield.nn.mlp import Activation

MIN_SLOPE = 1e-3  # s: derivatives lie in (s, 1/s), bin widths and heights within a factor 1/s
_CLIP = math.log(1 / MIN_SLOPE)


def soft_clip(u: Tensor, limit: float) -> Tensor:
    """u / (1 + |u|/limit): the identity near 0, smoothly bounded to (−limit, limit)."""
    return u / (1 + u.abs() / limit)


def spline_knots(raw: Tensor, bins: int, bound: float) -> tuple[Tensor, Tensor, Tensor]:
    """Knot positions and derivatives from unnormalized parameters raw (..., 3K − 1).

    Returns x knots (..., K+1), y knots (..., K+1) and derivatives (..., K+1), boundary ones = 1.
    """
    raw_w, raw_h, raw_d = raw[..., :bins], raw[..., bins : 2 * bins], raw[..., 2 * bins :]

    def knots(unnormalized: Tensor) -> Tensor:
        share = torch.softmax(soft_clip(unnormalized, _CLIP / 2), dim=-1)
        cumulative = F.pad(torch.cumsum(share, dim=-1), (1, 0))
        cumulative = cumulative / cumulative[..., -1:]  # exactly 1 at the right end
        return 2 * bound * cumulative - bound

    derivatives = F.pad(torch.exp(soft_clip(raw_d, _CLIP)), (1, 1), value=1.0)
    return knots(raw_w), knots(raw_h), derivatives


def _bin_index(knots: Tensor, value: Tensor) -> Tensor:
    """Index k (..., 1) of the bin [knots_k, knots_{k+1}) containing value: knots (..., K+1), value (...)."""
    index = torch.searchsorted(knots.contiguous(), value.unsqueeze(-1).contiguous(), right=True) - 1
    return index.clamp(0, knots.shape[-1] - 2)


def rational_quadratic_spline(x: Tensor, raw: Tensor, bound: float,
                              inverse: bool = False) -> tuple[Tensor, Tensor]:
    """Elementwise monotonic RQ spline (module docstring) of x (...) with raw parameters (..., 3K − 1).

    Returns (g(x), log g'(x)) forward, or (g⁻¹(x), log (g⁻¹)'(x)) with ``inverse``; both shaped like x.
    """
    bins = (raw.shape[-1] + 1) // 3
    xk, yk, dk = spline_knots(raw, bins, bound)
    inside = (x > -bound) & (x < bound)
    v = x.clamp(-bound, bound)
    k = _bin_index(yk if inverse else xk, v)
    table = torch.stack([xk, yk, dk], dim=-2)  # (..., 3, K+1): one gather for both ends of the bin
    ends = table.gather(-1, torch.cat([k, k + 1], dim=-1).unsqueeze(-2).expand(*k.shape[:-1], 3, 2))
    x0, y0, d0 = ends[..., 0].unbind(-1)
    x1, y1, d1 = ends[..., 1].unbind(-1)
    width, height = x1 - x0, y1 - y0
    slope = height / width
    curvature = d1 + d0 - 2 * slope
    if inverse:
        delta = v - y0
        a = height * (slope - d0) + delta * curvature
        b = height * d0 - delta * curvature
        c = -slope * delta
        xi = (2 * c / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))).clamp(0, 1)
        out = x0 + xi * width
    else:
        xi = (v - x0) / width
        out = y0 + height * (slope * xi**2 + d0 * xi * (1 - xi)) / (slope + curvature * xi * (1 - xi))
    mix = xi * (1 - xi)
    log_derivative = (2 * torch.log(slope) + torch.log(d1 * xi**2 + 2 * slope * mix + d0 * (1 - xi) ** 2)
                      - 2 * torch.log(slope + curvature * mix))
    if inverse:
        log_derivative = -log_derivative
    return torch.where(inside, out, x), torch.where(inside, log_derivative, torch.zeros_like(x))


class SplineCoupling(Bijection):
    """Coupling with one RQ spline per free entry: y_free = g(x_free; θ(x_cond)), y_cond = x_cond.

    mask: (*event) of 0/1, 1 = conditioning entry. The conditioner is a ``vecfield.nn.MLP`` from the
    n_cond conditioning entries to n_free·(3·bins − 1) spline parameters. log_det = Σ log g'(x_free).
    Works on any event shape (entries are indexed in the flattened event).
    """

    conditioning: Tensor  # (n_cond,) int64 buffer: flat indices of the conditioning entries
    free: Tensor  # (n_free,) int64 buffer: flat indices of the transformed entries

    def __init__(self, mask: Tensor, hidden_features: int = 128, depth: int = 2, bins: int = 8,
                 bound: float = 5.0, activation: Activation = "relu") -> None:
        super().__init__()
        flat = mask.flatten()
        if not bool(((flat == 0) | (flat == 1)).all()) or flat.min() != 0 or flat.max() != 1:
            raise ValueError("a coupling mask must hold only 0 (transformed) and 1 (conditioning), "
                             "and both of them")
        if bins < 2 or bound <= 0:
            raise ValueError(f"need bins ≥ 2 and bound > 0, got bins={bins}, bound={bound}")
        self.register_buffer("conditioning", flat.nonzero().squeeze(1))
        self.register_buffer("free", (flat == 0).nonzero().squeeze(1))
        self.bins, self.bound = bins, bound
        self.conditioner = MLP(len(self.conditioning), len(self.free) * (3 * bins - 1),
                               hidden_features=hidden_features, depth=depth, time_features=0,
                               activation=activation)

    def _transform(self, x: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        flat = x.flatten(1)
        raw = self.conditioner(flat[:, self.conditioning], None, None)
        raw = raw.reshape(flat.shape[0], len(self.free), 3 * self.bins - 1)
        moved, log_derivative = rational_quadratic_spline(flat[:, self.free], raw, self.bound, inverse)
        out = flat.index_copy(1, self.free, moved)
        return out.reshape(x.shape), log_derivative.sum(dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(x, inverse=False)

    def inverse(self, y: Tensor) -> Tensor:
        return self._transform(y, inverse=True)[0]
