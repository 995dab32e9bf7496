"""Batch operations on conditions, which are a tensor (B, …), a mapping of such tensors, or None.

Keeping these in one place lets guidance and the model treat class labels, vectors and grid
fields alike without knowing what the backbone does with them.
"""

from collections.abc import Mapping
from typing import TypeAlias

import torch
from torch import Tensor

#: What a backbone is conditioned on: a tensor (B, …) (class labels (B,), vectors (B, c), grid
#: fields …), a mapping of such (nested) conditions, or None (unconditional).
Condition: TypeAlias = "Tensor | Mapping[str, Condition] | None"


def condition_batch_size(cond: Condition) -> int | None:
    """The leading (batch) size shared by every tensor in ``cond``; None when cond is None."""
    if cond is None:
        return None
    if torch.is_tensor(cond):
        if cond.ndim == 0:
            raise ValueError("a condition tensor needs a leading batch dimension, got a scalar; "
                             "use shape (batch, …)")
        return cond.shape[0]
    if isinstance(cond, Mapping):
        sizes = {key: condition_batch_size(value) for key, value in cond.items()}
        distinct = {size for size in sizes.values() if size is not None}
        if len(distinct) > 1:
            raise ValueError(f"condition entries disagree on the batch size: {sizes}; give every entry the "
                             "same leading dimension")
        return distinct.pop() if distinct else None
    raise TypeError(f"a condition must be a tensor, a mapping of tensors or None, got {type(cond).__name__}")


def check_condition_batch(cond: Condition, batch: int) -> None:
    """Raise ValueError when cond's batch size differs from the data's."""
    size = condition_batch_size(cond)
    if size is not None and size != batch:
        raise ValueError(f"the condition has batch size {size} but x has batch size {batch}; "
                         "pass one condition per example (or repeat it to the batch size)")


def condition_device(cond: Condition) -> torch.device | None:
    """The device of the first tensor in ``cond`` (depth first); None when it holds no tensor."""
    if isinstance(cond, Tensor):
        return cond.device
    for value in (cond or {}).values():
        device = condition_device(value)
        if device is not None:
            return device
    return None


def concat_conditions(first: Condition, second: Condition) -> Condition:
    """Stack two conditions of the same structure along the batch dimension."""
    if isinstance(first, Tensor) and isinstance(second, Tensor):
        return torch.cat([first, second], dim=0)
    if isinstance(first, Mapping) and isinstance(second, Mapping):
        return {key: concat_conditions(first[key], second[key]) for key in first}
    raise TypeError(f"cannot batch conditions of types {type(first).__name__} and {type(second).__name__}; "
                    "use tensors or mappings of tensors of the same structure")


def where_condition(mask: Tensor, replacement: Condition, cond: Condition) -> Condition:
    """Per example: ``replacement`` where mask (B,) is True, else ``cond``; None entries stay None."""
    if cond is None and replacement is None:
        return None
    if isinstance(cond, Tensor) and isinstance(replacement, Tensor):
        keep = mask.reshape((-1,) + (1,) * (cond.ndim - 1))
        return torch.where(keep, replacement, cond)
    if isinstance(cond, Mapping) and isinstance(replacement, Mapping):
        return {key: where_condition(mask, replacement[key], cond[key]) for key in cond}
    raise TypeError(f"cannot mask conditions of type {type(cond).__name__} with a "
                    f"{type(replacement).__name__}; "
                    "use tensors or mappings of tensors of the same structure")
