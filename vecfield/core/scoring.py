"""Scoring-rule objectives for push-forward generators: fair and almost-fair CRPS, the energy score.

A push-forward generator maps a condition c and noise z ~ N(0, I) to a sample, x = G_θ(c, z), in one
pass (no path, no ODE). It has no density, but a proper scoring rule S(P, y) compares the distribution
P of its samples with an observation y and is minimised in expectation by P = the law of y, so
E_y[S(P_θ, y)] trains it. With M samples x_1 … x_M of P for each observation y:

Fair CRPS (unbiased for CRPS(P, y) = E|X − y| − ½E|X − X'|, Ferro 2014), per scalar element:

    fCRPS = (1/M) Σ_j |x_j − y| − 1/(2M(M − 1)) Σ_{j≠k} |x_j − x_k|                             (1)

Almost-fair CRPS (Lang et al. 2024, AIFS-CRPS; α = 0.95 there), with ε = (1 − α)/M:

    afCRPS_α = 1/(2M(M − 1)) Σ_{j≠k} ( |x_j − y| + |x_k − y| − (1 − ε)|x_j − x_k| )
             = α·fCRPS + (1 − α)·CRPS_M,                                                        (2)

CRPS_M = (1/M) Σ_j |x_j − y| − 1/(2M²) Σ_{j,k} |x_j − x_k| being the ensemble's own CRPS. α = 1 is the
fair CRPS. The fair score is indifferent to a member that copies another once the rest are
spread (its expected value does not see the ensemble's collapse); the small share of the ensemble
CRPS makes it strictly proper for the finite ensemble, which removes that degeneracy.

Energy score for vector-valued y ∈ R^D (Gneiting & Raftery 2007), fair estimator:

    fES = (1/M) Σ_j ‖x_j − y‖ − 1/(2M(M − 1)) Σ_{j≠k} ‖x_j − x_k‖,                              (3)

with ‖v‖² = Σ_d w_d·v_d² when per-element weights w are given. In one dimension it equals (1).

Weights: the CRPS of each element is multiplied by w (broadcast to the observation's shape, e.g.
latitude × level × variable) and averaged, as ``Objective`` averages its weighted squared error.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

#: the scoring rules a :class:`ScoringRule` can be
RULES: tuple[str, ...] = ("crps", "energy")

#: a push-forward generator: (noise z (R, …), condition (R, …) or None) -> samples (R, …)
Generator = Callable[[Tensor, Any], Tensor]


def _check_members(members: Tensor, target: Tensor) -> None:
    if members.ndim < 1 or members.shape[1:] != target.shape:
        raise ValueError(f"members must be (M, *target.shape) = (M, *{tuple(target.shape)}), "
                         f"got {tuple(members.shape)}")
    if members.shape[0] < 2:
        raise ValueError(f"the fair scores need at least 2 members per observation, got {members.shape[0]}")


def _check_alpha(alpha: float) -> None:
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1] (1: the fair CRPS; AIFS-CRPS uses 0.95), got {alpha}")


def mean_pairwise_difference(members: Tensor) -> Tensor:
    """1/(M(M − 1)) Σ_{j≠k} |x_j − x_k| over the first dim of ``members`` (M, …) → (…).

    From the order statistics x_(0) ≤ … ≤ x_(M−1): Σ_{j<k} |x_j − x_k| = Σ_i (2i − M + 1)·x_(i),
    O(M log M) instead of M² differences (sorting is differentiable almost everywhere).
    """
    m = members.shape[0]
    ordered = members.sort(dim=0).values
    coefficient = (2 * torch.arange(m, dtype=members.dtype, device=members.device) - m + 1)
    coefficient = coefficient.reshape(m, *([1] * (members.ndim - 1)))
    return 2 * (coefficient * ordered).sum(dim=0) / (m * (m - 1))


def crps(members: Tensor, target: Tensor, alpha: float = 1.0) -> Tensor:
    """The almost-fair CRPS (2) of every element: members (M, …), target (…) → (…).

    ``alpha`` = 1 is the fair CRPS (1); AIFS-CRPS uses 0.95.
    """
    _check_members(members, target)
    _check_alpha(alpha)
    m = members.shape[0]
    skill = (members - target).abs().mean(dim=0)
    spread_share = 1 - (1 - alpha) / m  # 1 − ε
    return skill - 0.5 * spread_share * mean_pairwise_difference(members)


def energy_score(members: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """The fair energy score (3) of each observation: members (M, B, D…), target (B, D…) → (B,).

    The event is every dim after the batch dim; ``weight`` (broadcastable to the target) weighs
    each element inside the norm.
    """
    _check_members(members, target)
    if target.ndim < 2:
        raise ValueError(f"the energy score needs a batch dim and event dims, target (B, D…); "
                         f"got shape {tuple(target.shape)}")
    m, batch = members.shape[0], target.shape[0]
    root = None if weight is None else _broadcast(weight, target).sqrt()
    x = (members if root is None else members * root).reshape(m, batch, -1)
    y = (target if root is None else target * root).reshape(batch, -1)
    skill = _norm(x - y).mean(dim=0)  # (B,)
    pairs = torch.triu_indices(m, m, offset=1, device=members.device)
    spread = _norm(x[pairs[0]] - x[pairs[1]]).mean(dim=0)  # mean over j < k = over j ≠ k
    return skill - 0.5 * spread


def _norm(v: Tensor) -> Tensor:
    """‖v‖ over the last dim, with the gradient 0 (not NaN) at v = 0."""
    squared = (v * v).sum(dim=-1)
    root = squared.clamp_min(torch.finfo(v.dtype).tiny).sqrt()
    return torch.where(squared > 0, root, torch.zeros_like(squared))


def _broadcast(weight: Tensor, target: Tensor) -> Tensor:
    try:
        return torch.broadcast_to(weight.to(target), target.shape)
    except RuntimeError as error:
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to the observation's "
                         f"shape {tuple(target.shape)}; give one weight per element") from error


@dataclass(frozen=True)
class ScoringRule:
    """A scoring rule as a training loss: the mean over observations (and, for the CRPS, over their
    elements, times the weights) of the score of M members.

    rule: ``crps`` (the almost-fair CRPS (2) of every scalar element) or ``energy`` (the fair energy
    score (3) of each whole observation); alpha: afCRPS's α (1: fair; ``energy`` needs 1).
    """

    rule: str = "crps"
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown scoring rule {self.rule!r}; choose one of {list(RULES)}")
        _check_alpha(self.alpha)
        if self.rule == "energy" and self.alpha != 1:
            raise ValueError("the energy score here is the fair one: use alpha=1")

    def __call__(self, members: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """Scalar loss of members (M, B, …) against observations (B, …); weight broadcasts to (B, …)."""
        if self.rule == "energy":
            return energy_score(members, target, weight).mean()
        score = crps(members, target, self.alpha)
        return (score if weight is None else score * _broadcast(weight, target)).mean()


@dataclass(frozen=True)
class PushForwardObjective:
    """Train a push-forward generator ``generate(z, cond)`` by a scoring rule over ``members`` samples
    per observation, z ~ N(0, I) of shape (noise_features,) per sample.

        L = E_{(c, y)} S({G_θ(c, z_m)}_{m=1…M}, y),   z_m i.i.d. N(0, I)
    """

    rule: ScoringRule
    members: int
    noise_features: int

    def __post_init__(self) -> None:
        if self.members < 2:
            raise ValueError(f"a scoring-rule objective needs ≥ 2 members per observation, "
                             f"got {self.members}")
        if self.noise_features < 1:
            raise ValueError(f"noise_features must be ≥ 1, got {self.noise_features}")

    def sample(self, generate: Generator, cond: Tensor | None, batch: int, dtype: torch.dtype,
               device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """(M, B, …) samples: ``generate`` on (M·B) rows, member-major (row = m·B + b), the condition
        (B, …) repeated for each member."""
        where = generator.device if generator is not None else device
        z = torch.randn(self.members * batch, self.noise_features, generator=generator, dtype=dtype,
                        device=where).to(device)
        rows = None if cond is None else cond.repeat(self.members, *([1] * (cond.ndim - 1)))
        out = generate(z, rows)
        if out.shape[0] != self.members * batch:
            raise ValueError(f"the generator returned {out.shape[0]} rows for {self.members * batch} "
                             "noise rows; it must return one sample per row")
        return out.reshape(self.members, batch, *out.shape[1:])

    def loss(self, generate: Generator, target: Tensor, cond: Tensor | None = None,
             weight: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """The scalar loss for observations ``target`` (B, …) with conditions ``cond`` (B, …) or None."""
        if cond is not None and cond.shape[0] != target.shape[0]:
            raise ValueError(f"{cond.shape[0]} conditions for {target.shape[0]} observations")
        samples = self.sample(generate, cond, target.shape[0], target.dtype, target.device, generator)
        return self.rule(samples, target, weight)
