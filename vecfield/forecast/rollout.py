"""The one autoregressive rollout, shared by training (with targets, gradients through it) and
inference (without).

    S(t + (j+1)Δt) = step(S(t + (j−1)Δt), S(t + jΔt), F(t + (j−1)Δt … t + (j+1)Δt), static),  j = 0 … k−1

Each step's output becomes the next step's current state, so training on k steps back-propagates
through the whole chain (GraphCast's autoregressive fine-tuning) and inference sees exactly the
same computation. A limited-area forecaster with boundary forcing has the rim of each output
replaced by boundary data before it is yielded and fed back (``vecfield.forecast.boundary``).
A generator: the caller decides what to keep, so long rollouts need memory for two states only.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from vecfield.forecast.boundary import Boundary


@dataclass
class StepResult:
    """One autoregressive step: the next state (B, nodes, C) and, when a target was given, its loss."""

    state: Tensor
    loss: Tensor | None = None


class Stepper(Protocol):
    """Anything with the one-step signature of :class:`vecfield.forecast.step.OneStepForecaster`."""

    def step(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor,
             target: Tensor | None = None) -> StepResult: ...


def autoregressive(
    stepper: Stepper,
    inputs: Tensor,
    forcings: Tensor,
    static: Tensor,
    steps: int,
    targets: Tensor | None = None,
    boundary: Boundary | None = None,
) -> Iterator[StepResult]:
    """Yield ``steps`` results, each (B, N, C) state (and loss when ``targets`` is given).

    inputs: (B, 2, N, C) states at t − Δt and t; forcings: (B, ≥ 2 + steps, N, F) at t − Δt, t, …,
    t + steps·Δt; static: (B or 1, N, S); targets: (B, ≥ steps, N, C) or None; boundary: rim mask
    and (B, ≥ steps, N, C) boundary states imposed on each output, or None (a free boundary).
    """
    if inputs.ndim != 4 or inputs.shape[1] != 2:
        raise ValueError(
            f"inputs must be (batch, 2, nodes, channels): the states at t − Δt and t; "
            f"got {tuple(inputs.shape)}"
        )
    if forcings.shape[1] < steps + 2:
        raise ValueError(f"{steps} steps need forcings at {steps + 2} times, got {forcings.shape[1]}")
    if targets is not None and targets.shape[1] < steps:
        raise ValueError(f"{steps} steps need {steps} targets, got {targets.shape[1]}")
    if boundary is not None and boundary.values.shape[1] < steps:
        raise ValueError(f"{steps} steps need boundary states at {steps} times, "
                         f"got {boundary.values.shape[1]}")
    previous, current = inputs[:, 0], inputs[:, 1]
    for j in range(steps):
        target = None if targets is None else targets[:, j]
        result = stepper.step(previous, current, forcings[:, j : j + 3], static, target)
        if boundary is not None:
            result = StepResult(boundary.impose(result.state, j), result.loss)
        yield result
        previous, current = current, result.state
