"""Exponential moving average of weights, on torch's AveragedModel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

_Tensors = tuple[Tensor, ...] | list[Tensor]  # the tensor groups AveragedModel passes to multi_avg_fn


def build_ema(model: nn.Module, decay: float) -> AveragedModel:
    """EMA copy of ``model`` (parameters and buffers) updated by ``ema.update_parameters(model)``.

    The first update copies the weights, e₁ = θ₁; afterwards e_k = d·e_{k−1} + (1 − d)·θ_k, so
    e_n = dⁿ⁻¹·θ₁ + (1 − d)·Σ_{k=2..n} dⁿ⁻ᵏ·θ_k. Floating-point buffers (e.g. normalization
    statistics) are averaged the same way; integer and boolean buffers (graph indices, counts)
    are copied, since averaging them would round indices to wrong values.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
    return AveragedModel(model, multi_avg_fn=_ema_or_copy(decay), use_buffers=True)


def _ema_or_copy(decay: float) -> Callable[[_Tensors, _Tensors, Tensor | int], None]:
    """AveragedModel's multi_avg_fn: EMA for floating tensors, a plain copy for the rest.

    AveragedModel groups the tensors by device and dtype, so each call sees one dtype.
    """
    average = get_ema_multi_avg_fn(decay)

    def update(ema_tensors: _Tensors, model_tensors: _Tensors, num_averaged: Tensor | int) -> None:
        if ema_tensors[0].is_floating_point() or ema_tensors[0].is_complex():
            average(ema_tensors, model_tensors, num_averaged)
        else:
            for ema_tensor, model_tensor in zip(ema_tensors, model_tensors, strict=True):
                ema_tensor.copy_(model_tensor)

    return update


def ema_state(ema: AveragedModel) -> dict[str, Any]:
    """Plain state: the averaged module's own state dict (loadable into a bare model) and the count."""
    return {"weights": ema.module.state_dict(), "n_averaged": int(ema.n_averaged.item())}


def load_ema_state(ema: AveragedModel, state: dict[str, Any]) -> None:
    """Inverse of :func:`ema_state`."""
    ema.module.load_state_dict(state["weights"])
    with torch.no_grad():
        ema.n_averaged.fill_(int(state["n_averaged"]))
