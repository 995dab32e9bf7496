"""The CRPS-trained stochastic forecaster (AIFS-CRPS, FGN): one forward pass per ensemble member.

The deterministic forecaster's network (:mod:`vecfield.forecast.step`) gets a noise vector
z ~ N(0, I_K) per member, which enters every adaptive LayerNorm with the time embedding
(``GridMeshGNN(noise_features=K)``), and optionally k values per mesh node added to the mesh
embedding (``mesh_noise_features=k``; z then stands for both, K + N_mesh·k values). One member's
step is the deterministic learner's one Euler step from the origin of the residual coordinates with
that noise:

    S_m(t + Δt) = S_m(t) + σ^Δ ⊙ F_θ(0, 0, cond_m, z_m),   z_m ~ N(0, I_K)                        (1)

with cond_m the condition of eq. (2) in ``step`` built from member m's own two previous states. There
is no path and no ODE: the ensemble is a push-forward of the noise.

Training (lead-aware): each initialization b of a batch becomes M = ``members`` rows, each rolled
out k steps by (1) on its own noise (fresh at every step) with gradients through the whole rollout,
and the loss is the mean over the k steps of the weighted almost-fair CRPS
(:func:`vecfield.core.scoring.crps`) of the members' states in units of σ^Δ:

    L = (1/k) Σ_j mean_{b,n,c} w[n, c] · afCRPS_α({S_m(t + jΔt)[n, c]/σ^Δ_c}_m, S(t + jΔt)[n, c]/σ^Δ_c)  (2)

w: the deterministic forecaster's latitude × level × variable weights. The CRPS is translation
equivariant, so at j = 1 (where every member starts from the true state) (2) is the CRPS of the
normalized residuals, the units of the deterministic loss; later steps score the members' own
accumulated errors, which is what a one-step model cannot learn.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from vecfield.core.model import VectorFieldModel
from vecfield.core.scoring import ScoringRule
from vecfield.forecast.normalization import Normalization
from vecfield.forecast.rollout import StepResult, autoregressive
from vecfield.forecast.step import OneStepForecaster


class StochasticOneStepForecaster(OneStepForecaster):
    """Eq. (1) and its training loss (2).

    field: ``VectorFieldModel(net, method="deterministic")`` with a ``GridMeshGNN`` built with
    a noise input (``noise_size`` = K + N_mesh·k > 0), net(x, t, cond, noise (B, noise_size)) -> (B, N, C).
    members: M, members per initialization in training; alpha: afCRPS's α (1: fair CRPS).
    ``train.init_from`` a deterministic checkpoint of the same network loads every weight but the
    noise embeddings (of z and of the per-node noise), which keep their initial values
    (``fresh_on_init_from``).
    """

    fresh_on_init_from = ("field.net.noise_embedding.", "field.net.mesh_noise_embedding.")

    def __init__(self, field: VectorFieldModel, normalization: Normalization, loss_weight: Tensor,
                 members: int, alpha: float, rim: Tensor | None = None, input_noise: float = 0.0) -> None:
        super().__init__(field, normalization, loss_weight, rim, input_noise)
        features = getattr(field.net, "noise_size", 0)
        if not isinstance(features, int) or features < 1:
            raise ValueError("the CRPS forecaster needs a network with a noise input: "
                             "GridMeshGNN(..., noise_features=K) with K ≥ 1, or mesh_noise_features ≥ 1")
        if members < 2:
            raise ValueError(f"CRPS training compares members: members must be ≥ 2, got {members}")
        self.noise_size = features
        self.members = members
        self.rule = ScoringRule("crps", alpha)

    def noise_shape(self, current: Tensor) -> tuple[int, ...]:
        """The shape of one member's standard normal noise per step: (the network's noise_size,),
        whatever the state."""
        return (self.noise_size,)

    def step_from_noise(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor,
                        z: Tensor, draw_normal: Callable[[], Tensor] | None = None) -> Tensor:
        """Eq. (1): the next state (B, N, C) of each row from its noise z (B, K). One network call;
        ``draw_normal`` is accepted for the ensemble stepper's signature and unused (no further noise)."""
        cond = self.condition(previous, current, forcings, static)
        origin = torch.zeros_like(current)
        time = torch.zeros(current.shape[0], dtype=current.dtype, device=current.device)
        residual = self.field.net(origin, time, cond, noise=z.to(current))
        return self.normalization.apply_residual(current, residual)

    def step(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor,
             target: Tensor | None = None) -> StepResult:
        """One member per row (B, N, C), its noise from torch's global generator; gradients flow when
        enabled. The CRPS needs the members together: a ``target`` is refused (train with ``forward``)."""
        if target is not None:
            raise ValueError("the CRPS forecaster scores members together: train it through forward(...) "
                             "(ForecastTask.loss), not step by step")
        z = torch.randn(current.shape[0], self.noise_size, dtype=current.dtype, device=current.device)
        return StepResult(self.step_from_noise(previous, current, forcings, static, z))

    def forward(self, inputs: Tensor, forcings: Tensor, static: Tensor, targets: Tensor) -> Tensor:
        """Loss (2) of a k-step rollout of M members per initialization, gradients through it.

        inputs: (B, 2, N, C); forcings: (B, 2 + k, N, F); static: (B or 1, N, S); targets: (B, k, N, C).
        Rows are initialization-major (row = b·M + m), as in ensemble rollouts.
        """
        batch, m = inputs.shape[0], self.members
        rows = self.perturbed(inputs.repeat_interleave(m, dim=0))  # each member from its own perturbation
        row_forcings = forcings.repeat_interleave(m, dim=0)
        row_static = static if static.shape[0] == 1 else static.repeat_interleave(m, dim=0)
        scale = 1 / self.normalization.diff_std.to(targets)  # (C,): states in units of σ^Δ
        origin = inputs[:, 1]  # S(t): subtracted from members and truth alike (the CRPS is translation
        losses = []            # equivariant) to keep float32 precision on large fields like geopotential
        boundary = self.boundary(targets.repeat_interleave(m, dim=0))  # the truth in the rim, if any
        steps = autoregressive(self, rows, row_forcings, row_static, targets.shape[1], boundary=boundary)
        for j, result in enumerate(steps):
            state = result.state.reshape(batch, m, *result.state.shape[1:])  # (B, M, N, C)
            members = ((state - origin[:, None]) * scale).transpose(0, 1)  # (M, B, N, C)
            losses.append(self.rule(members, (targets[:, j] - origin) * scale, self.loss_weight))
        return torch.stack(losses).mean()
