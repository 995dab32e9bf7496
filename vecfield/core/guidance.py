"""Classifier-free guidance (seed eq. 15.12; Ho & Salimans 2022).

Training replaces the condition by the backbone's null token with probability p, so one network
learns both the conditional and the unconditional field. Sampling combines them,

    f_w(x, t | c) = f(x, t | ∅) + w·(f(x, t | c) − f(x, t | ∅)),

so w = 1 is the conditional field, w = 0 the unconditional one and w > 1 extrapolates. Every
target (velocity, ε, x₁, score) is affine in the network output with weights that do not depend
on the condition, so guiding the raw output guides all of them identically, under every solver.
Both passes run as ONE forward call on a batch of size 2B.
"""

from typing import Any

import torch
from torch import Tensor

from vecfield.core.conditions import (
    Condition,
    concat_conditions,
    condition_batch_size,
    condition_device,
    where_condition,
)
from vecfield.core.field import GuidableVectorField


def _require_null(net: Any) -> GuidableVectorField:
    if not isinstance(net, GuidableVectorField):
        raise TypeError(f"{type(net).__name__} has no null_condition(cond); classifier-free guidance needs a "
                        "backbone with a null token (e.g. MLP(..., num_classes=K))")
    return net


def guided_output(net: Any, x_t: Tensor, t: Tensor, cond: Condition, scale: float) -> Tensor:
    """f(x|∅) + w·(f(x|c) − f(x|∅)) for x_t (B, …), t (B,), computed in one call on 2B examples."""
    if cond is None:
        raise ValueError("guidance needs a condition; pass cond= or set guidance=None")
    net = _require_null(net)
    both = net(torch.cat([x_t, x_t]), torch.cat([t, t]), concat_conditions(cond, net.null_condition(cond)))
    conditional, unconditional = both[: x_t.shape[0]], both[x_t.shape[0]:]
    return unconditional + scale * (conditional - unconditional)


def drop_condition(net: Any, cond: Condition, probability: float,
                   generator: torch.Generator | None = None) -> Condition:
    """The condition with each example's entry replaced by the null token with ``probability``."""
    if not 0 <= probability <= 1:
        raise ValueError(f"the condition dropout probability must lie in [0, 1], got {probability}")
    if cond is None or probability == 0:
        return cond
    net = _require_null(net)
    batch = condition_batch_size(cond)
    if batch is None:
        raise ValueError("condition dropout needs at least one condition tensor with a batch dimension; "
                         "the condition holds none")
    where = generator.device if generator is not None else "cpu"
    mask = torch.rand(batch, generator=generator, device=where) < probability
    return where_condition(mask.to(condition_device(cond)), net.null_condition(cond), cond)
