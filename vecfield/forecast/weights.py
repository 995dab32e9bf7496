"""Per-element loss weights of the forecaster: latitude × pressure level × variable (GraphCast).

For grid node n at latitude φ_n and state channel c (variable v_c at level p_c):

    w[n, c] = w_lat(φ_n) · w_level(c) · w_var(v_c)                                          (1)

w_lat: cell area normalized to mean 1 over the latitude rows (``vecfield.geo.latitude_weights``,
sin φ⁺ − sin φ⁻, the weights evaluation uses); w_level: p_c / mean(p) over the dataset's pressure
levels for pressure-level variables, 1 for single-level ones; w_var: from the config (default 1).
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from vecfield.geo import relative_cell_areas


def level_weights(channels: Sequence[tuple[str, int | None]]) -> np.ndarray:
    """(C,) pressure weights: p / mean of the distinct levels present, 1 for single-level channels."""
    levels = sorted({level for _, level in channels if level is not None})
    mean = float(np.mean(levels)) if levels else 1.0
    return np.array([1.0 if level is None else level / mean for _, level in channels])


def loss_weights(
    latitude: np.ndarray,
    n_longitude: int,
    channels: Sequence[tuple[str, int | None]],
    variable_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Eq. (1) as a float32 tensor (nodes, C), nodes latitude-major (node = i_lat · n_lon + i_lon).

    variable_weights: weight per variable name; names that are not state variables are an error.
    """
    variable_weights = dict(variable_weights or {})
    names = {name for name, _ in channels}
    unknown = sorted(set(variable_weights) - names)
    if unknown:
        raise ValueError(
            f"variable_weights names {unknown}, which are not predicted variables; "
            f"choose among {sorted(names)}"
        )
    lat = relative_cell_areas(latitude, n_longitude)  # (nodes,)
    per_channel = level_weights(channels) * np.array([variable_weights.get(n, 1.0) for n, _ in channels])
    return torch.from_numpy(np.outer(lat, per_channel)).float()
