"""The one-step forecaster: GraphCast's predictor as the degenerate case of the vector-field learner.

In the coordinates of the normalized residual relative to the current state S(t),

    y = (S − S(t)) / σ^Δ,        source y₀ = 0 (the current state),  data y₁ = r(t) = (S(t+Δt) − S(t)) / σ^Δ,

``VectorFieldModel(net, method="deterministic")`` has the zero coupling, the fixed time t = 0 and
the velocity target y₁ − y₀ = r, so its loss is the weighted MSE of normalized residuals

    L = mean_{b,n,c} w[n, c] · (F(0, 0, cond)[b, n, c] − r[b, n, c])²                          (1)

(w: latitude × level × variable, ``vecfield.forecast.weights``) and sampling is one Euler step
y = y₀ + F(y₀, 0, cond) = F(0, 0, cond): a single forward pass. The condition is GraphCast's input:

    cond = [S̃(t − Δt), S̃(t), F̃(t − Δt), F̃(t), F̃(t + Δt), static̃]   (B, nodes, 2C + 3F + S)       (2)

with ˜ the per-channel normalization of ``vecfield.forecast.normalization``. A generative
forecaster keeps (2) and the residual coordinates and changes only the path (noise source, t ∈ [0, 1]).
"""

import torch
from torch import Tensor, nn

from vecfield.core.model import VectorFieldModel
from vecfield.forecast.boundary import Boundary
from vecfield.forecast.normalization import Normalization
from vecfield.forecast.rollout import StepResult, autoregressive


class OneStepForecaster(nn.Module):
    """S(t + Δt) from S(t − Δt), S(t), forcings at t − Δt, t, t + Δt and static fields.

    field:         the learner, ``VectorFieldModel(net, method="deterministic")`` with
                   net(x (B, N, C), t (B,), cond (B, N, 2C + 3F + S)) -> (B, N, C)
    normalization: statistics of eq. (2) and of the residual
    loss_weight:   (N, C) per-element weights of eq. (1)
    rim:           (N,) bool, the rim of a limited-area box forced by boundary data after every step
                   (``vecfield.forecast.boundary``; in training the targets are the boundary data),
                   or None for a free boundary
    input_noise:   η ≥ 0: training rollouts start from S + η σ^Δ ε, ε ~ N(0, I), for both input states
                   (the targets stay the truth, so the network learns to correct an error of the size
                   of its own); 0: the truth, as GraphCast. Inference never adds it.
    """

    loss_weight: Tensor  # (N, C) buffer
    rim: Tensor | None  # (N,) bool buffer or None

    def __init__(self, field: VectorFieldModel, normalization: Normalization, loss_weight: Tensor,
                 rim: Tensor | None = None, input_noise: float = 0.0) -> None:
        super().__init__()
        if not input_noise >= 0:
            raise ValueError(f"input_noise must be ≥ 0 (in units of σ^Δ), got {input_noise}")
        self._check_field(field)
        self.input_noise = input_noise
        self.field = field
        self.normalization = normalization
        self.register_buffer("loss_weight", loss_weight.float(), persistent=False)
        self.register_buffer("rim", None if rim is None else rim.bool(), persistent=False)

    def boundary(self, values: Tensor) -> Boundary | None:
        """The rim forced to ``values`` (B, k, N, C), or None when this forecaster has a free boundary."""
        return None if self.rim is None else Boundary(self.rim, values)

    def _check_field(self, field: VectorFieldModel) -> None:
        """Refuse a learner this forecaster cannot drive (the generative subclass accepts others)."""
        if field.method != "deterministic" or field.options.target != "velocity":
            raise ValueError(
                "the one-step forecaster needs VectorFieldModel(net, method='deterministic') "
                f"(velocity target); got method={field.method!r}, target={field.options.target!r}"
            )

    def perturbed(self, inputs: Tensor) -> Tensor:
        """The training rollout's initial states (B, 2, N, C): ``inputs`` + η σ^Δ ε (``input_noise``)."""
        if self.input_noise == 0:
            return inputs
        return inputs + self.input_noise * self.normalization.diff_std.to(inputs) * torch.randn_like(inputs)

    def condition(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor) -> Tensor:
        """Eq. (2). previous, current: (B, N, C); forcings: (B, 3, N, F); static: (B or 1, N, S)."""
        norm = self.normalization
        batch, steps, nodes, channels = forcings.shape
        if steps != 3:
            raise ValueError(f"forcings must hold the 3 times t − Δt, t, t + Δt, got {steps}")
        forcing = norm.normalize_forcings(forcings).permute(0, 2, 1, 3).reshape(batch, nodes, 3 * channels)
        fixed = norm.normalize_static(static).to(current).expand(batch, -1, -1)
        return torch.cat(
            [norm.normalize_state(previous), norm.normalize_state(current), forcing.to(current), fixed],
            dim=-1,
        )

    def step(
        self,
        previous: Tensor,
        current: Tensor,
        forcings: Tensor,
        static: Tensor,
        target: Tensor | None = None,
    ) -> StepResult:
        """One step, in physical units (B, N, C). With ``target`` (B, N, C) the learner's loss (1) is
        computed from the same single forward pass that gives the next state (gradients flow through
        both); without it the learner samples (one Euler step, no gradients)."""
        cond = self.condition(previous, current, forcings, static)
        source = torch.zeros_like(current)
        if target is None:
            residual = self.field.sample(source, cond)
            return StepResult(self.normalization.apply_residual(current, residual))
        data = self.normalization.residual(target, current)
        output = self.field.training_loss(data, cond, x0=source, weight=self.loss_weight)
        residual = self.field.predicted_data(output)  # = the sampler's one Euler step, same forward pass
        return StepResult(self.normalization.apply_residual(current, residual), output.loss)

    def forward(self, inputs: Tensor, forcings: Tensor, static: Tensor, targets: Tensor) -> Tensor:
        """Training loss of a k-step rollout with gradients through it: mean over steps of loss (1);
        with a ``rim`` the targets force it after every step; it starts from ``perturbed(inputs)``.

        inputs: (B, 2, N, C) states at t − Δt, t; forcings: (B, 2 + k, N, F); static: (B, N, S);
        targets: (B, k, N, C) the states at t + Δt … t + kΔt.
        """
        losses = []
        boundary = self.boundary(targets)
        start = self.perturbed(inputs)
        for result in autoregressive(self, start, forcings, static, targets.shape[1], targets, boundary):
            assert result.loss is not None, "a step given its target returns its loss"
            losses.append(result.loss)
        return torch.stack(losses).mean()
