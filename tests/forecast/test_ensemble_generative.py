"""The generative forecaster: sphere noise, the loss of flow matching and EDM, zero noise, bf16, log-score."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.forecast.helpers import TINY_MODEL, tiny_spec, wave_dataset
from vecfield.config.typed import from_dict, to_dict
from vecfield.core.model import VectorFieldModel
from vecfield.forecast import OneStepForecaster, autoregressive
from vecfield.forecast.config import ModelConfig
from vecfield.forecast.generative import (
    EDM_SIGMA_MAX,
    EDM_SIGMA_MIN,
    GenerativeOneStepForecaster,
    SphereNoise,
    generative_field,
)
from vecfield.forecast.weights import loss_weights
from vecfield.geo import relative_cell_areas

LAT = np.arange(-90 + 5.625 / 2, 90, 5.625)  # the default dataset's 32 rows, no poles
N_LON = 64


@pytest.fixture(scope="module")
def world():
    ds = wave_dataset(days=4)
    spec, windows, _ = tiny_spec(ds)
    batch = torch.utils.data.default_collate([windows[i] for i in range(3)])
    return spec, batch


def generative(spec, method: str, steps: int = 4) -> GenerativeOneStepForecaster:
    torch.manual_seed(0)
    return dataclasses.replace(spec, model=dataclasses.replace(TINY_MODEL, method=method,
                                                              sampling_steps=steps)).build()


def row_integral_variance(std: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """Var(Σ_{n∈row} a_n ε_n) / Σ_{n∈row} a_n for each latitude row, from per-node std (nodes,)."""
    per_node = (area * std) ** 2
    return per_node.reshape(LAT.size, N_LON).sum(1) / area.reshape(LAT.size, N_LON).sum(1)


def test_sphere_noise_has_the_same_variance_per_unit_area_at_every_latitude():
    area = torch.from_numpy(relative_cell_areas(LAT, N_LON))
    assert area.mean().item() == pytest.approx(1.0)
    noise = SphereNoise(area)
    # exact: the variance of the area integral over each latitude band equals the band's area
    exact = row_integral_variance(noise.std[:, 0], area)
    np.testing.assert_allclose(exact.numpy(), 1.0, rtol=1e-12)
    # i.i.d. noise instead: per unit area ∝ cell area, ~13 times quieter at the polar rows
    iid = row_integral_variance(torch.ones_like(area), area)
    assert iid.max() / iid.min() > 10
    # sampled: 2000 seeded fields, the band integrals' variance per unit area is 1 within sampling error
    sample = noise((2000, LAT.size * N_LON, 1), torch.Generator().manual_seed(0), torch.float64,
                   torch.device("cpu"))[..., 0]
    band = (sample * area).reshape(2000, LAT.size, N_LON).sum(2)  # (samples, rows)
    per_area = band.var(0) / area.reshape(LAT.size, N_LON).sum(1)
    assert per_area.min() > 0.85 and per_area.max() < 1.15  # 2000 draws: ±3.2% standard error
    # and the same for two equal-area patches, one polar, one equatorial (4 × 1 polar ≈ 1 × 0.29 eq.)
    polar = (area.reshape(LAT.size, N_LON)[0, :] * sample.reshape(2000, LAT.size, N_LON)[:, 0, :]).sum(1)
    assert polar.var().item() / area.reshape(LAT.size, N_LON)[0].sum().item() == pytest.approx(1, abs=0.1)


@pytest.mark.parametrize("method", ["flow_matching", "edm"])
def test_training_loss_is_the_weighted_loss_of_the_normalized_residual(world, method):
    """Eq. (1) by hand at fixed flow times: FM (velocity r − ε) and EDM (preconditioned x₁,
    λ = (σ² + 1)/σ²), with the deterministic forecaster's latitude × level × variable weights."""
    spec, batch = world
    module = generative(spec, method)
    expected_weight = loss_weights(spec.latitude, spec.longitude.size, spec.state_layout.channels,
                                   TINY_MODEL.variable_weights)
    torch.testing.assert_close(module.loss_weight, expected_weight)
    previous, current, target = batch.inputs[:, 0], batch.inputs[:, 1], batch.targets[:, 0]
    cond = module.condition(previous, current, batch.forcings[:, :3], batch.static)
    r = module.normalization.residual(target, current)
    t = torch.tensor([0.1, 0.5, 0.9])
    generator = torch.Generator().manual_seed(3)
    loss = module.field.loss(r, cond, weight=module.loss_weight, t=t, generator=generator)
    eps = module.noise(tuple(r.shape), torch.Generator().manual_seed(3), r.dtype, r.device)
    net = module.field.net
    tt = t[:, None, None]
    with torch.no_grad():
        if method == "flow_matching":
            squared = (net(tt * r + (1 - tt) * eps, t, cond) - (r - eps)) ** 2
        else:
            lo, hi = EDM_SIGMA_MIN ** (1 / 7), EDM_SIGMA_MAX ** (1 / 7)
            sigma = (hi + tt * (lo - hi)) ** 7
            x = r + sigma * eps
            c_skip, c_out, c_in = 1 / (sigma**2 + 1), sigma / (sigma**2 + 1).sqrt(), 1 / (sigma**2 + 1).sqrt()
            squared = (sigma**2 + 1) / sigma**2 * (c_skip * x + c_out * net(c_in * x, t, cond) - r) ** 2
    torch.testing.assert_close(loss.detach(), (squared * module.loss_weight).mean(), rtol=1e-5, atol=1e-6)


def test_edm_noise_levels_are_gencasts():
    schedule = generative_field(torch.nn.Linear(1, 1), "edm", SphereNoise(torch.ones(4)), (4, 1), 20).schedule
    sigma = schedule.coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64)).sigma
    np.testing.assert_allclose(sigma.numpy(), [88.0, 0.02])
    assert schedule.rho == 7


def test_generative_model_with_zero_noise_reduces_to_the_deterministic_rollout(world):
    """Flow matching from y₀ = 0 with a velocity that ignores (y, τ) integrates exactly to one Euler
    step: Heun on 4 steps reproduces the deterministic forecaster's rollout, for any seed."""
    spec, batch = world
    deterministic = spec.build()
    gnn = deterministic.field.net

    class ConditionOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gnn = gnn

        def forward(self, x, t, cond):
            return self.gnn(torch.zeros_like(x), torch.zeros_like(t), cond)

    noise = SphereNoise.on_grid(spec.latitude, spec.longitude.size, scale=0.0)
    field = generative_field(ConditionOnly(), "flow_matching", noise, (512, 5), sampling_steps=4)
    zero_noise = GenerativeOneStepForecaster(field, spec.normalization, deterministic.loss_weight, noise)
    assert isinstance(deterministic, OneStepForecaster) and deterministic.field.method == "deterministic"
    with torch.no_grad():
        expected = [r.state for r in autoregressive(deterministic, batch.inputs, batch.forcings,
                                                    batch.static, 2)]
        for seed in (0, 1):
            torch.manual_seed(seed)
            got = [r.state for r in autoregressive(zero_noise, batch.inputs, batch.forcings,
                                                   batch.static, 2)]
            for a, b in zip(got, expected, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_noise_conditioning_survives_bf16_autocast_on_cpu(world):
    """Under CPU bf16 autocast the noise-level embedding of the 20 sampling levels stays finite and
    distinct, and a sampled step stays finite."""
    spec, batch = world
    module = generative(spec, "edm", steps=20).eval()
    levels = torch.linspace(0, 1, 21)
    with torch.autocast("cpu", dtype=torch.bfloat16), module.sampling(2):
        embedding = module.field.net.time_embedding(levels).float()
        state = module.step(batch.inputs[:, 0], batch.inputs[:, 1], batch.forcings[:, :3],
                            batch.static).state
    assert embedding.dtype == torch.float32 and torch.isfinite(embedding).all()
    distances = torch.cdist(embedding, embedding) + torch.eye(21) * 1e9
    assert distances.min() > 1e-3  # every pair of noise levels is told apart
    assert torch.isfinite(state).all()


def test_log_score_of_a_translation_flow_is_the_shifted_sphere_gaussian(world):
    """A velocity v(cond) independent of (y, τ) moves the source by v, so p(r) = N_sphere(r − v) and
    log p(S) = log p(r) − N·Σ log σ^Δ: the Hutchinson ODE likelihood must give this exactly."""
    spec, batch = world

    class Shift(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(0.3))

        def forward(self, x, t, cond):
            # the normalized current state as a fixed shift (0·x keeps x in the autograd graph)
            return self.scale * cond[..., 5:10] + 0.0 * x

    noise = SphereNoise.on_grid(spec.latitude, spec.longitude.size)
    field = generative_field(Shift(), "flow_matching", noise, (512, 5), sampling_steps=4)
    weight = loss_weights(spec.latitude, spec.longitude.size, spec.state_layout.channels)
    module = GenerativeOneStepForecaster(field, spec.normalization, weight, noise).double()
    inputs, forcings, static = batch.inputs.double(), batch.forcings[:, :3].double(), batch.static
    target = batch.targets[:, 0].double()
    score = module.log_score(inputs[:, 0], inputs[:, 1], forcings, static.double(), target, steps=4,
                             generator=torch.Generator().manual_seed(0))
    cond = module.condition(inputs[:, 0], inputs[:, 1], forcings, static.double())
    r = module.normalization.residual(target, inputs[:, 1])
    jacobian = 512 * torch.log(spec.normalization.diff_std.double()).sum()
    expected = noise.log_prob(r - 0.3 * cond[..., 5:10]) - jacobian
    torch.testing.assert_close(score, expected, rtol=1e-7, atol=1e-6)  # |log p| ≈ 1e4 nats


def test_model_method_is_validated_and_old_configs_load_as_deterministic():
    with pytest.raises(ValueError, match="choose one of"):
        ModelConfig(method="diffusion")
    with pytest.raises(ValueError, match="time_features"):
        ModelConfig(method="edm", time_features=0)
    stored = to_dict(TINY_MODEL)
    del stored["method"], stored["sampling_steps"]  # a checkpoint written before generative models
    assert from_dict(ModelConfig, stored, "model").method == "deterministic"
    with pytest.raises(ValueError, match="deterministic"):
        OneStepForecaster(VectorFieldModel(torch.nn.Linear(1, 1), "flow_matching"), None, torch.ones(1))


def test_sampling_churn_is_validated_and_builds_gencasts_sampler(tmp_path):
    from vecfield.forecast.config import ForecastConfig, RolloutConfig, load_forecast_config
    from vecfield.forecast.forecaster import Forecaster
    from vecfield.pipelines.forecast_evaluation import forecast_split

    for bad in (lambda: ModelConfig(method="edm", sampling_churn=-0.5),
                lambda: ModelConfig(method="edm", sampling_churn_noise=0.0),
                lambda: RolloutConfig(sampling_churn=-1.0), lambda: RolloutConfig(sampling_steps=0),
                lambda: RolloutConfig(sampling_churn_noise=-1.0)):
        with pytest.raises(ValueError, match="sampling_"):
            bad()
    ds = wave_dataset(days=3)
    spec, _, _ = tiny_spec(ds)
    spec = dataclasses.replace(spec, model=dataclasses.replace(TINY_MODEL, method="edm", sampling_churn=2.5))
    options = spec.build().field.options
    assert options.solver == "stochastic_heun" and options.churn.s_churn == 2.5
    assert (options.churn.s_min, options.churn.s_max, options.churn.s_noise) == (0.75, float("inf"), 1.05)
    inflated = dataclasses.replace(spec, model=dataclasses.replace(spec.model, sampling_churn_noise=1.2))
    assert inflated.build().field.options.churn == dataclasses.replace(options.churn, s_noise=1.2)

    deterministic = Forecaster(tiny_spec(ds)[0].build(), tiny_spec(ds)[0])
    base = load_forecast_config(Path(__file__).parents[2] / "configs" / "generative_edm.yaml")
    for rollout in (RolloutConfig(sampling_churn=2.5), RolloutConfig(sampling_churn_noise=1.2)):
        config: ForecastConfig = dataclasses.replace(base, rollout=rollout)
        with pytest.raises(ValueError, match="deterministic"):
            forecast_split(deterministic, config, tmp_path / "never.zarr")
    crps_model = dataclasses.replace(TINY_MODEL, method="crps", noise_features=4, time_features=4)
    crps_spec = dataclasses.replace(tiny_spec(ds)[0], model=crps_model)
    with pytest.raises(ValueError, match="method is 'crps', which has none"):  # not "deterministic"
        forecast_split(Forecaster(crps_spec.build(), crps_spec),
                       dataclasses.replace(base, rollout=RolloutConfig(sampling_steps=4)),
                       tmp_path / "never.zarr")
    assert not (tmp_path / "never.zarr").exists()


@pytest.mark.parametrize(("name", "method"), [("generative_fm", "flow_matching"), ("generative_edm", "edm")])
def test_generative_presets_are_valid_one_step_configs(name, method):
    from pathlib import Path

    from vecfield.forecast.config import load_forecast_config

    config = load_forecast_config(Path(__file__).parents[2] / "configs" / f"{name}.yaml")
    assert config.model.method == method and config.model.sampling_steps == 20
    assert config.train.curriculum == ((0, 1),) and config.rollout.members > 1
    assert config.rollout.steps == 20  # 5 days
