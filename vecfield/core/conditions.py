"""Batch operations on conditions, which are a tensor (B, …), a mapping of such tensors, or None.

Keeping these in one place lets guidance and the model treat class labels, vectors and grid
fields alike without knowing what the backbone does with them.
"""

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


def condition_batch_size(cond: Any) -> int | None:
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


def check_condition_batch(cond: Any, batch: int) -> None:
    """Raise ValueError when cond's batch size differs from the data's."""
    size = condition_batch_size(cond)
    if size is not None and size != batch:
        raise ValueError(f"the condition has batch size {size} but x has batch size {batch}; "
                         "pass one condition per example (or repeat it to the batch size)")


def concat_conditions(first: Any, second: Any) -> Any:
    """Stack two conditions of the same structure along the batch dimension."""
    if torch.is_tensor(first):
        return torch.cat([first, second], dim=0)
    if isinstance(first, Mapping):
        return {key: concat_conditions(first[key], second[key]) for key in first}
    raise TypeError(f"cannot batch conditions of type {type(first).__name__}; "
                    "use tensors or mappings of tensors")


def where_condition(mask: Tensor, replacement: Any, cond: Any) -> Any:
    """Per example: ``replacement`` where mask (B,) is True, else ``cond``."""
    if torch.is_tensor(cond):
        keep = mask.reshape((-1,) + (1,) * (cond.ndim - 1))
        return torch.where(keep, replacement, cond)
    if isinstance(cond, Mapping):
        return {key: where_condition(mask, replacement[key], cond[key]) for key in cond}
    raise TypeError(f"cannot mask conditions of type {type(cond).__name__}; "
                    "use tensors or mappings of tensors")
