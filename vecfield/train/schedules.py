"""Step schedules: the learning-rate factor (warm-up then cosine) and the integer curriculum."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosineSchedule:
    """Multiplicative learning-rate factor f(i) for the update with index i = 0, 1, …, N−1.

    With W = ``warmup_steps``, N = ``total_steps`` and r = ``min_ratio``::

        f(i) = (i + 1) / W                                     for i < W   (linear warm-up)
        f(i) = r + (1 − r) · ½ · (1 + cos(π · (i − W) / (N − W)))   for i ≥ W   (cosine decay)

    so the first update already has a non-zero rate, the peak 1 is reached at i = W − 1 (or at
    i = 0 without warm-up) and f reaches the floor r at i = N (clamped there afterwards).

    ``restarts`` (update indices 0 < s₁ < s₂ < … < N) makes it a warm-restart schedule (SGDR,
    Loshchilov & Hutter 2017): each cycle [s_k, s_(k+1)) (s₀ = 0, the last ending at N) runs the
    formula above on its own, i ↦ i − s_k and N ↦ s_(k+1) − s_k, warm-up included (shortened to the
    cycle when longer). With the rollout curriculum's phase starts as restarts, every phase gets its
    own peak-to-floor decay instead of the tail of one decay over all of training.
    Used as the ``lr_lambda`` of ``torch.optim.lr_scheduler.LambdaLR``; its fields travel in the
    scheduler's state dict as plain numbers.
    """

    warmup_steps: int
    total_steps: int
    min_ratio: float
    restarts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"need 0 ≤ warmup_steps ≤ total_steps, "
                             f"got {self.warmup_steps} and {self.total_steps}")
        if not 0.0 <= self.min_ratio <= 1.0:
            raise ValueError(f"min_ratio must lie in [0, 1], got {self.min_ratio}")
        bounds = (0, *self.restarts, self.total_steps)
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"restarts must increase strictly inside (0, total_steps = {self.total_steps}), "
                             f"got {list(self.restarts)}")

    def __call__(self, i: int) -> float:
        start = max((s for s in self.restarts if s <= i), default=0)
        end = min((s for s in self.restarts if s > i), default=self.total_steps)
        i, warmup = i - start, min(self.warmup_steps, end - start)
        if i < warmup:
            return (i + 1) / warmup
        decay_steps = max(1, end - start - warmup)
        progress = min(1.0, (i - warmup) / decay_steps)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Curriculum:
    """Piecewise-constant integer schedule from (start_step, value) pairs.

    ``value_at(i)`` is the value of the last pair whose start_step ≤ i, where i counts the
    updates completed before the current one (the first update has i = 0). GraphCast's
    autoregressive curriculum is ``((0, 1), (s₂, 2), …, (s_k, k))``.
    """

    pairs: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        for pair in self.pairs:
            if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair):
                raise ValueError(f"curriculum entries must be [start_step, value] integer pairs, "
                                 f"got {list(pair)}")
        starts = [start for start, _ in self.pairs]
        if not self.pairs or starts[0] != 0:
            raise ValueError(f"a curriculum needs pairs whose first start_step is 0 (it sets the initial "
                             f"value), got {[list(p) for p in self.pairs]}")
        if any(b <= a for a, b in itertools.pairwise(starts)):
            raise ValueError(f"curriculum start steps must increase strictly, got {starts}")

    @classmethod
    def from_pairs(cls, pairs: object) -> Curriculum:
        """From any sequence of 2-sequences (e.g. YAML lists), validated."""
        not_pairs = ValueError(f"curriculum must be a list of [start_step, value] pairs, got {pairs!r}")
        if not isinstance(pairs, Iterable):
            raise not_pairs
        try:
            normalized = tuple(tuple(pair) for pair in pairs)
        except TypeError:
            raise not_pairs from None
        return cls(normalized)  # __post_init__ checks that each entry is a pair of integers

    def value_at(self, i: int) -> int:
        if i < 0:
            raise ValueError(f"step index must be ≥ 0, got {i}")
        value = self.pairs[0][1]
        for start, pair_value in self.pairs:
            if start > i:
                break
            value = pair_value
        return value
