"""Per-channel normalization of states, forcings and static fields, and of the one-step residual.

For a state channel c (one variable at one level) with training-period mean μ_c, standard
deviation σ_c and standard deviation of one-step differences σ^Δ_c (``vecfield.data.statistics``):

    inputs:    x̃ = (x − μ_c) / σ_c                                                        (1)
    residual:  r = (S(t + Δt) − S(t)) / σ^Δ_c,   S(t + Δt) = S(t) + σ^Δ_c · r              (2)

Forcing and static channels use (1) with their own statistics; channels without statistics (the
structural features sin φ, cos λ, sin λ) and channels of zero spread are left as they are
(μ = 0, σ = 1). This is GraphCast's ``normalization.py`` split into plain tensors.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import xarray as xr
from torch import Tensor


def _channel_values(
    statistic: xr.Dataset, channels: Sequence[tuple[str, int | None]], default: float, required: bool
) -> Tensor:
    """(C,) float64 values of ``statistic`` for (variable, level) channels."""
    values = []
    for name, level in channels:
        if name not in statistic:
            if required:
                raise ValueError(
                    f"the normalization statistics have no {name!r}; statistics hold "
                    f"{sorted(map(str, statistic.data_vars))}. "
                    "Rebuild the dataset with pipelines/build_dataset.py"
                )
            values.append(default)
            continue
        var = statistic[name]
        values.append(float(var.sel(level=level)) if level is not None else float(var))
    return torch.tensor(values, dtype=torch.float64)


def _safe_scale(scale: Tensor) -> Tensor:
    return torch.where(scale > 0, scale, torch.ones_like(scale))


@dataclass(frozen=True)
class Normalization:
    """Means and scales (float64 tensors) for the channels of states (C,), forcings (F,) and static (S,)."""

    state_mean: Tensor
    state_std: Tensor
    diff_std: Tensor
    forcing_mean: Tensor
    forcing_std: Tensor
    static_mean: Tensor
    static_std: Tensor

    @classmethod
    def from_statistics(
        cls,
        statistics: Mapping[str, xr.Dataset],
        state_channels: Sequence[tuple[str, int | None]],
        forcing_channels: Sequence[tuple[str, int | None]],
        static_channels: Sequence[tuple[str, int | None]],
    ) -> "Normalization":
        """From ``{"mean", "std", "diff_std"}`` datasets (``load_statistics``) and channel lists."""
        mean, std, diff = statistics["mean"], statistics["std"], statistics["diff_std"]
        return cls(
            state_mean=_channel_values(mean, state_channels, 0.0, True),
            state_std=_safe_scale(_channel_values(std, state_channels, 1.0, True)),
            diff_std=_safe_scale(_channel_values(diff, state_channels, 1.0, True)),
            forcing_mean=_channel_values(mean, forcing_channels, 0.0, False),
            forcing_std=_safe_scale(_channel_values(std, forcing_channels, 1.0, False)),
            static_mean=_channel_values(mean, static_channels, 0.0, False),
            static_std=_safe_scale(_channel_values(std, static_channels, 1.0, False)),
        )

    def to_plain(self) -> dict[str, Tensor]:
        """name → tensor, for checkpoint metadata."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_plain(cls, data: Mapping[str, Tensor]) -> "Normalization":
        """Inverse of :meth:`to_plain`."""
        return cls(
            **{name: torch.as_tensor(data[name], dtype=torch.float64) for name in cls.__dataclass_fields__}
        )

    @staticmethod
    def _apply(x: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
        return (x - mean.to(x)) / scale.to(x)

    def normalize_state(self, state: Tensor) -> Tensor:
        """Eq. (1) on states (..., C)."""
        return self._apply(state, self.state_mean, self.state_std)

    def denormalize_state(self, normalized: Tensor) -> Tensor:
        """Inverse of eq. (1) on states (..., C)."""
        return normalized * self.state_std.to(normalized) + self.state_mean.to(normalized)

    def normalize_forcings(self, forcings: Tensor) -> Tensor:
        """Eq. (1) on forcings (..., F)."""
        return self._apply(forcings, self.forcing_mean, self.forcing_std)

    def normalize_static(self, static: Tensor) -> Tensor:
        """Eq. (1) on static fields (..., S)."""
        return self._apply(static, self.static_mean, self.static_std)

    def residual(self, next_state: Tensor, state: Tensor) -> Tensor:
        """Eq. (2): the normalized residual r (..., C) between two states (..., C)."""
        return (next_state - state) / self.diff_std.to(state)

    def apply_residual(self, state: Tensor, residual: Tensor) -> Tensor:
        """Eq. (2) inverted: S(t + Δt) = S(t) + σ^Δ · r, shapes (..., C)."""
        return state + residual * self.diff_std.to(state)
