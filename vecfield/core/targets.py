"""The four things a network may predict, and one exact conversion between any two of them.

On the path x_t = α_t·x₁ + σ_t·x₀ every target is affine in (x₁, x₀):
  - ``velocity``: u = α̇_t·x₁ + σ̇_t·x₀                (flow matching, seed eq. 15.15)
  - ``epsilon``:  ε = x₀                              (noise prediction, seed eq. 15.10)
  - ``x1``:       x₁                                  (data / denoiser prediction)
  - ``score``:    ∇ log p_t(x_t) = −x₀/σ_t             (seed eq. 15.13)
Given x_t and one target, the pair (x₁, x₀) solves a 2×2 linear system, from which any other
target follows. Divisions by α_t, σ_t or α_t·σ̇_t − σ_t·α̇_t are guarded so that the result stays
finite where the conversion is singular (e.g. ε → x₁ at α_t = 0); choose the time interval so
that no singular point is used (``singular_endpoints`` tells which are).
"""

import torch
from torch import Tensor

from vecfield.core.schedules import PathCoefficients

TARGETS: tuple[str, ...] = ("velocity", "epsilon", "x1", "score")


def check_target(name: str) -> str:
    """Return ``name`` if it is a known target, else raise ValueError listing the valid ones."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; choose one of {list(TARGETS)}")
    return name


def _safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator with |denominator| raised to at least the dtype's machine epsilon."""
    tiny = torch.finfo(denominator.dtype).eps
    guarded = torch.where(denominator.abs() < tiny, torch.full_like(denominator, tiny) *
                          torch.where(denominator < 0, -1.0, 1.0), denominator)
    return numerator / guarded


def target_value(target: str, x1: Tensor, x0: Tensor, c: PathCoefficients) -> Tensor:
    """The regression target for known endpoints (x₁, x₀); c broadcast against x (see expand_as)."""
    check_target(target)
    if target == "velocity":
        return c.d_alpha * x1 + c.d_sigma * x0
    if target == "epsilon":
        return x0
    if target == "x1":
        return x1
    return -_safe_divide(x0, c.sigma)


def endpoints(prediction: Tensor, target: str, x_t: Tensor, c: PathCoefficients) -> tuple[Tensor, Tensor]:
    """(x̂₁, x̂₀) implied by ``prediction`` of kind ``target`` at x_t (x_t = α·x̂₁ + σ·x̂₀ holds)."""
    check_target(target)
    if target == "x1":
        return prediction, _safe_divide(x_t - c.alpha * prediction, c.sigma)
    if target in ("epsilon", "score"):
        x0 = prediction if target == "epsilon" else -c.sigma * prediction
        return _safe_divide(x_t - c.sigma * x0, c.alpha), x0
    # [α σ; α̇ σ̇]·[x₁; x₀] = [x_t; u]
    det = c.alpha * c.d_sigma - c.sigma * c.d_alpha
    return (_safe_divide(c.d_sigma * x_t - c.sigma * prediction, det),
            _safe_divide(c.alpha * prediction - c.d_alpha * x_t, det))


def convert(prediction: Tensor, source: str, destination: str, x_t: Tensor, c: PathCoefficients) -> Tensor:
    """Convert a prediction of kind ``source`` at x_t into kind ``destination`` (exact, affine).

    Shapes: prediction and x_t (B, …); c broadcast to (B, 1, …) with ``PathCoefficients.expand_as``.
    """
    check_target(destination)
    if source == destination:
        check_target(source)
        return prediction
    x1, x0 = endpoints(prediction, source, x_t, c)
    return target_value(destination, x1, x0, c)


def singular_endpoints(target: str, c: PathCoefficients) -> Tensor:
    """Boolean mask of times where turning ``target`` into a velocity divides by zero.

    ε and score need α_t ≠ 0; x₁ needs σ_t ≠ 0; velocity needs α·σ̇ − σ·α̇ ≠ 0, which holds on
    every schedule here.
    """
    check_target(target)
    if target == "velocity":
        return (c.alpha * c.d_sigma - c.sigma * c.d_alpha) == 0
    if target == "x1":
        return c.sigma == 0
    return c.alpha == 0

