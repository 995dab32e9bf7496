"""The forecaster's training task for :class:`vecfield.train.Trainer`.

Batches are those of :class:`vecfield.data.streaming.WindowedDataset` with 2 inputs and K leads:
inputs (B, 2, N, C), targets (B, K, N, C), forcings (B, 2 + K, N, F), static (B, N, S). The
curriculum value k ≤ K (1, then 2 … K) is the number of unrolled steps the loss back-propagates
through. Validation rolls out all K leads with the weights being validated and reports, per state
channel and lead, the latitude-weighted RMSE (√ of the mean MSE over the validation set) and
``score``: the mean over channels and leads of RMSE / σ_c (dimensionless, for ``best_metric``).
"""

import math
from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from vecfield.data.streaming import Window
from vecfield.forecast.rollout import autoregressive
from vecfield.forecast.step import OneStepForecaster


def channel_name(name: str, level: int | None) -> str:
    """``geopotential500`` style name of a channel."""
    return name if level is None else f"{name}{level}"


class ForecastTask:
    """Loss, validation and curriculum of the autoregressive forecaster.

    channels: (variable, level) of the state channels; step_hours: Δt, for metric names;
    state_std: (C,) σ_c of each channel, for ``score``; rollout_steps: the initial number of
    unrolled steps (the curriculum overrides it).
    """

    def __init__(
        self,
        channels: Sequence[tuple[str, int | None]],
        step_hours: int,
        state_std: Tensor,
        rollout_steps: int = 1,
    ) -> None:
        if rollout_steps < 1:
            raise ValueError(f"rollout_steps must be ≥ 1, got {rollout_steps}")
        self.names = [channel_name(n, level) for n, level in channels]
        self.std = dict(zip(self.names, state_std.tolist(), strict=True))
        self.step_hours = step_hours
        self.rollout_steps = rollout_steps

    def set_curriculum(self, value: int) -> None:
        """The number of unrolled training steps from now on."""
        if value < 1:
            raise ValueError(f"the rollout curriculum must give ≥ 1 step, got {value}")
        self.rollout_steps = value

    def loss(self, model: nn.Module, batch: Window) -> Tensor:
        """Mean over the k unrolled steps of the weighted MSE of normalized residuals (a scalar)."""
        k = self.rollout_steps
        if batch.targets.shape[1] < k:
            raise ValueError(
                f"the curriculum asks for {k} rollout steps but the data has "
                f"{batch.targets.shape[1]} leads; build the dataset with n_leads ≥ {k}"
            )
        return model(batch.inputs, batch.forcings[:, : 2 + k], batch.static, batch.targets[:, :k])

    def validate(self, model: OneStepForecaster, batch: Window) -> dict[str, float]:
        """Per channel and lead: the batch mean of the latitude-weighted spatial MSE (physical units);
        a forecaster with boundary forcing is scored on the interior (its loss weights are 0 on the rim)."""
        targets = batch.targets
        lat_weight = model.loss_weight[:, :1] / model.loss_weight[:, :1].mean()  # latitude part, mean 1
        metrics = {}
        steps = autoregressive(model, batch.inputs, batch.forcings, batch.static, targets.shape[1],
                               boundary=model.boundary(targets))
        for j, result in enumerate(steps):
            error = (result.state.float() - targets[:, j].float()) ** 2  # (B, N, C)
            mse = (error * lat_weight.float()).mean(dim=(0, 1))  # (C,)
            for name, value in zip(self.names, mse.tolist(), strict=True):
                metrics[f"mse_{name}_{(j + 1) * self.step_hours}h"] = value
        return metrics

    def summarize_validation(self, means: Mapping[str, float]) -> dict[str, float]:
        """RMSE = √(mean MSE) per channel and lead, and ``score`` = mean of RMSE / σ_c over all of them."""
        rmse, scaled = {}, []
        for key, value in means.items():
            name = key.removeprefix("mse_").rpartition("_")[0]
            rmse["r" + key] = math.sqrt(value)
            scaled.append(math.sqrt(value) / self.std[name])
        return {**rmse, "score": sum(scaled) / len(scaled)}
