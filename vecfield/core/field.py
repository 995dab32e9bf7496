"""The one call every backbone implements.

A vector field maps a point on the probability path, its flow time and an optional condition to
a tensor of the same leading shape (the network's prediction of velocity, noise, data or score):

    net(x_t, t, cond) -> out
    x_t:  (batch, *event_shape)          point on the path x_t = α_t·x₁ + σ_t·x₀
    t:    (batch,)                       flow time in [0, 1]; t = 1 is the data
    cond: backbone-specific or None      class labels (batch,), vectors (batch, c), grid fields …
    out:  (batch, *out_event_shape)

Backbones that support classifier-free guidance also implement ``null_condition(cond)``, which
returns the condition with every entry replaced by the backbone's null token (seed eq. 15.12).
"""

from typing import Protocol, runtime_checkable

from torch import Tensor

from vecfield.core.conditions import Condition


@runtime_checkable
class VectorField(Protocol):
    """Structural type of a backbone: ``(x_t, t, cond) -> Tensor``."""

    def __call__(self, x_t: Tensor, t: Tensor, cond: Condition = None) -> Tensor: ...


@runtime_checkable
class GuidableVectorField(VectorField, Protocol):
    """A backbone with a null condition token, as classifier-free guidance needs."""

    def null_condition(self, cond: Condition) -> Condition: ...
