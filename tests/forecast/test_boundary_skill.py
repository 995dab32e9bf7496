"""Boundary forcing gives far-lead skill that a free boundary cannot have: a known answer.

A field is advected eastward across an 8 × 12 box at exactly one grid cell per 6-hour step, and
new, random structure enters at the western edge. The exact forecast is the shift
S(t + Δt)[i, j] = S(t)[i, j − 1], so with the truth in the rim (width 1) a model that learned the
shift is exact at every lead; with a free boundary the inflow is unknown and after one box-crossing
(12 steps) the whole interior is new air: the error can only be about the field's own spread.

The tiny regional model is the package's one-step forecaster (normalized residual, the loss and
rollouts of ``OneStepForecaster``, the rim and its zero loss weight from ``ForecasterSpec.build``,
``Forecaster.rollout`` with ``boundary=``) around a 3 × 3 convolution as the network: a stencil can
represent the shift exactly and learns it in a fraction of a second, so the first test measures the
boundary forcing and not the optimiser. The second trains the package's own GraphCast-style GNN with
``model.grid_stencil: 1`` (each grid node embeds its 3 × 3 neighbourhood): it learns the transport
too, where the plain GNN learnt local time extrapolation and ignored the rim (docs/forecast.md,
"Regional use").
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.ndimage import gaussian_filter
from torch import Tensor, nn

from vecfield.core.model import VectorFieldModel
from vecfield.data.forcings import add_forcings
from vecfield.data.statistics import compute_statistics
from vecfield.data.streaming import WindowedDataset
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.config import ModelConfig
from vecfield.forecast.forecaster import Forecaster
from vecfield.forecast.step import OneStepForecaster

H, W, RESOLUTION = 8, 12, 5.625


class Stencil(nn.Module):
    """net(x (B, N, C), t, cond (B, N, K)) → (B, N, C): one 3 × 3 convolution of the condition on the box."""

    def __init__(self, cond_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cond_channels, channels, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor | None, cond: Tensor) -> Tensor:
        batch = cond.shape[0]
        image = cond.reshape(batch, H, W, -1).permute(0, 3, 1, 2)
        return self.conv(image).permute(0, 2, 3, 1).reshape(batch, H * W, -1)


def advected_box(n_times: int, seed: int = 0) -> xr.Dataset:
    """2m_temperature moving east one cell per step; the strip it comes from is seeded noise."""
    rng = np.random.default_rng(seed)
    strip = gaussian_filter(rng.standard_normal((H, W + n_times)), sigma=1.0, mode="wrap")
    strip /= strip.std()
    values = np.stack([strip[:, n_times - t: n_times - t + W] for t in range(n_times)])
    time = np.datetime64("2020-01-01T00", "ns") + np.arange(n_times) * np.timedelta64(6, "h")
    ds = xr.Dataset(
        {"2m_temperature": (("time", "latitude", "longitude"), (280 + 3 * values).astype(np.float32))},
        coords={"time": time, "latitude": -19.6875 + RESOLUTION * np.arange(H),
                "longitude": RESOLUTION * np.arange(W)},
        attrs={"state_variables": ["2m_temperature"], "static_variables": []},
    )
    return add_forcings(ds)


def convolution(spec: ForecasterSpec) -> OneStepForecaster:
    """``spec``'s one-step forecaster (loss weights, rim) around a 3 × 3 convolution."""
    built = spec.build()
    cond = 2 * len(spec.state_layout) + 3 * len(spec.forcing_layout) + len(spec.static_channels)
    return OneStepForecaster(VectorFieldModel(Stencil(cond, len(spec.state_layout)), "deterministic"),
                             spec.normalization, built.loss_weight, built.rim)


def trained(module: OneStepForecaster, windows: WindowedDataset, steps: int, lr: float) -> OneStepForecaster:
    """``module`` trained on 2-step rollouts (Adam, cosine decay, batches of 16)."""
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    loader = torch.utils.data.DataLoader(windows, batch_size=16, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    done = 0
    while done < steps:
        for batch in loader:
            loss = module(batch.inputs, batch.forcings, batch.static, batch.targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            done += 1
            if done == steps:
                break
    return module.eval()


def interior_rmse(forecast: xr.Dataset, truth: xr.Dataset) -> np.ndarray:
    """(leads,) RMSE over the initializations and the interior (the rim of width 1 left out)."""
    valid = forecast["time"] + forecast["prediction_timedelta"]
    expected = truth["2m_temperature"].sel(time=valid.values.reshape(-1)).values.reshape(
        *valid.shape, H, W)
    error = (forecast["2m_temperature"].values - expected)[..., 1:-1, 1:-1]
    return np.sqrt((error ** 2).mean(axis=(0, 2, 3)))


def free_and_forced_errors(model: ModelConfig, network: str, steps: int, lr: float
                           ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Interior RMSE per lead (16 leads, 20 test initializations) of the free and the forced (1-cell rim
    of truth) forecaster, the field's spread and the one-step persistence error."""
    data = advected_box(700)
    train, test = data.isel(time=slice(0, 600)), data.isel(time=slice(600, None))
    windows = WindowedDataset(train, n_inputs=2, n_leads=2, in_memory=True)
    free_spec = ForecasterSpec.from_dataset(windows, compute_statistics(train), model, 6)
    forced_spec = replace(free_spec, model=replace(model, boundary_rim=1))
    inits, leads = test["time"].values[1:60:3], 16
    errors = []
    for spec in (free_spec, forced_spec):
        torch.manual_seed(0)
        module = trained(convolution(spec) if network == "convolution" else spec.build(), windows, steps, lr)
        boundary = test if spec.model.boundary_rim else None
        errors.append(interior_rmse(Forecaster(module, spec).rollout(test, leads, init_times=inits,
                                                                     boundary=boundary), test))
    persistence = float(np.sqrt((test["2m_temperature"].diff("time") ** 2).mean()))
    return errors[0], errors[1], float(test["2m_temperature"].std()), persistence


@pytest.mark.usefixtures("one_thread")
def test_boundary_forcing_keeps_the_far_leads_that_a_free_boundary_loses() -> None:
    free_error, forced_error, spread, persistence = free_and_forced_errors(
        ModelConfig(mesh_max_level=3), "convolution", steps=600, lr=0.03)
    # both learned the shift: one step ahead each is far better than persistence
    assert free_error[0] < 0.25 * persistence and forced_error[0] < 0.25 * persistence
    # after a box-crossing the free boundary has lost the box's air; the forced one has not
    far = slice(W, None)
    assert (free_error[far] > 0.6 * spread).all(), free_error
    assert (forced_error[far] < 0.25 * spread).all(), forced_error
    assert forced_error[far].max() < 0.3 * free_error[far].min()


@pytest.mark.usefixtures("one_thread")
def test_gnn_with_grid_stencil_learns_the_transport_and_uses_the_rim() -> None:
    model = ModelConfig(mesh_max_level=2, latent=32, processor_layers=1, time_features=8, grid_stencil=1)
    free_error, forced_error, spread, persistence = free_and_forced_errors(model, "gnn", steps=400, lr=5e-3)
    assert free_error[0] < 0.3 * persistence and forced_error[0] < 0.3 * persistence
    far = slice(W, None)
    assert (free_error[far] > 0.6 * spread).all(), free_error
    assert (forced_error[far] < 0.5 * spread).all(), forced_error
    assert forced_error[far].max() < 0.4 * free_error[far].min()
