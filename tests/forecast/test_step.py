"""The one-step forecaster: its loss, its single forward pass, normalization, the shared rollout."""

import numpy as np
import pytest
import torch

from tests.forecast.helpers import tiny_spec, wave_dataset
from vecfield.core.model import VectorFieldModel
from vecfield.forecast import Normalization, OneStepForecaster, autoregressive
from vecfield.forecast.weights import loss_weights


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    ds = wave_dataset()
    spec, windows, statistics = tiny_spec(ds, n_leads=3)
    torch.manual_seed(0)
    module = spec.build(str(tmp_path_factory.mktemp("graphs")))
    batch = torch.utils.data.default_collate([windows[i] for i in (0, 5, 9)])
    return ds, spec, windows, statistics, module, batch


def _stat(statistics, kind, name, level):
    var = statistics[kind][name]
    return float(var.sel(level=level)) if level is not None else float(var)


def test_loss_is_latitude_level_variable_weighted_mse_of_normalized_residuals(world) -> None:
    ds, spec, _, statistics, module, batch = world
    module = module.double()
    prev, cur = batch.inputs[:, 0].double(), batch.inputs[:, 1].double()
    target = batch.targets[:, 0].double()
    forcings, static = batch.forcings[:, :3].double(), batch.static.double()
    loss = module.step(prev, cur, forcings, static, target).loss

    # independent computation: statistics straight from xarray, weights from the closed forms
    channels = spec.state_layout.channels
    mean = torch.tensor([_stat(statistics, "mean", n, lv) for n, lv in channels], dtype=torch.float64)
    std = torch.tensor([_stat(statistics, "std", n, lv) for n, lv in channels], dtype=torch.float64)
    dstd = torch.tensor([_stat(statistics, "diff_std", n, lv) for n, lv in channels], dtype=torch.float64)
    f_mean = torch.tensor(
        [_stat(statistics, "mean", n, None) for n, _ in spec.forcing_layout.channels], dtype=torch.float64
    )
    f_std = torch.tensor(
        [_stat(statistics, "std", n, None) for n, _ in spec.forcing_layout.channels], dtype=torch.float64
    )
    s_names = [n for n, _ in spec.static_channels]
    s_mean = torch.tensor(
        [_stat(statistics, "mean", n, None) if n in statistics["mean"] else 0.0 for n in s_names],
        dtype=torch.float64,
    )
    s_std = torch.tensor(
        [_stat(statistics, "std", n, None) if n in statistics["std"] else 1.0 for n in s_names],
        dtype=torch.float64,
    )
    f = (forcings - f_mean) / f_std  # (B, 3, N, F)
    cond = torch.cat(
        [(prev - mean) / std, (cur - mean) / std, f[:, 0], f[:, 1], f[:, 2], ((static - s_mean) / s_std)],
        dim=-1,
    )
    out = module.field.net(torch.zeros_like(cur), torch.zeros(3, dtype=torch.float64), cond)
    residual = (target - cur) / dstd
    lat = np.deg2rad(ds["latitude"].values)
    area = np.cos(lat) * np.sin(np.deg2rad(11.25) / 2)  # GraphCast's cell area, no poles
    w_lat = torch.from_numpy(np.repeat(area / area.mean(), ds.sizes["longitude"]))[:, None]
    w_level = torch.tensor([1.0 if lv is None else lv / 675.0 for _, lv in channels], dtype=torch.float64)
    w_var = torch.tensor([0.5 if n == "2m_temperature" else 1.0 for n, _ in channels], dtype=torch.float64)
    expected = (w_lat * w_level * w_var * (out - residual) ** 2).mean()
    assert torch.allclose(loss, expected, rtol=1e-5, atol=0)  # weights are stored in float32
    module.float()


def test_prediction_is_one_forward_pass_and_equals_the_training_step(world) -> None:
    _, _, _, _, module, batch = world
    calls = []
    handle = module.field.net.register_forward_hook(lambda *args: calls.append(1))
    try:
        args = (batch.inputs[:, 0], batch.inputs[:, 1], batch.forcings[:, :3], batch.static)
        predicted = module.step(*args).state
        assert len(calls) == 1
        trained = module.step(*args, target=batch.targets[:, 0])
        assert len(calls) == 2
    finally:
        handle.remove()
    torch.testing.assert_close(trained.state.detach(), predicted)


def test_training_loss_backpropagates_through_the_rollout(world) -> None:
    _, _, _, _, module, batch = world
    steps = list(
        autoregressive(module, batch.inputs, batch.forcings, batch.static, 3, batch.targets)
    )
    module.zero_grad()
    steps[2].loss.backward()  # the third step's loss depends on the first two predictions
    first_layer = module.field.net.grid_embedding
    grads = [p.grad for p in first_layer.parameters() if p.grad is not None]
    assert grads and any(bool(g.abs().sum() > 0) for g in grads)
    total = module(batch.inputs, batch.forcings, batch.static, batch.targets)
    torch.testing.assert_close(total, torch.stack([s.loss for s in steps]).mean())


def test_normalization_round_trips_in_float64(world) -> None:
    _, spec, _, _, _, batch = world
    norm: Normalization = spec.normalization
    state = batch.inputs[:, 1].double()
    torch.testing.assert_close(
        norm.denormalize_state(norm.normalize_state(state)), state, rtol=1e-12, atol=1e-9
    )
    nxt = batch.targets[:, 0].double()
    torch.testing.assert_close(
        norm.apply_residual(state, norm.residual(nxt, state)), nxt, rtol=1e-12, atol=1e-9
    )
    restored = Normalization.from_plain(norm.to_plain())
    assert all(torch.equal(getattr(restored, k), getattr(norm, k)) for k in norm.__dataclass_fields__)


def test_forty_step_rollout_stays_finite(world) -> None:
    ds, spec, _, _, module, _ = world
    from vecfield.forecast import Forecaster

    forecast = Forecaster(module, spec).rollout(ds.isel(time=slice(0, 3)), steps=40)
    assert forecast.sizes["prediction_timedelta"] == 40
    assert all(bool(np.isfinite(forecast[v]).all()) for v in forecast.data_vars)


def test_level_weights_are_proportional_to_pressure_with_mean_one() -> None:
    channels = (("z", 500), ("z", 850), ("t2m", None))
    w = loss_weights(np.array([-45.0, 45.0]), 4, channels)
    torch.testing.assert_close(w[0], torch.tensor([500 / 675, 850 / 675, 1.0]))
    with pytest.raises(ValueError, match="choose among"):
        loss_weights(np.array([-45.0, 45.0]), 4, channels, {"temperature": 1.0})


def test_only_the_deterministic_learner_is_accepted(world) -> None:
    _, spec, _, _, module, _ = world
    with pytest.raises(ValueError, match="deterministic"):
        OneStepForecaster(
            VectorFieldModel(module.field.net, method="flow_matching"), spec.normalization, module.loss_weight
        )


def test_input_noise_perturbs_the_training_inputs_by_eta_sigma_delta_and_never_inference(
    world, tmp_path
) -> None:
    import dataclasses

    _, spec, _, _, _, batch = world
    noisy_spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, input_noise=0.3))
    torch.manual_seed(0)
    module = noisy_spec.build(str(tmp_path)).double()
    assert module.input_noise == 0.3
    sigma = spec.normalization.diff_std.double()
    # the perturbation: zero mean, per-channel std η σ^Δ (2 × 2000 × N samples per channel)
    torch.manual_seed(1)
    zeros = torch.zeros(2000, 2, *batch.inputs.shape[2:], dtype=torch.float64)
    offsets = module.perturbed(zeros).flatten(0, 2)  # (samples, C)
    torch.testing.assert_close(offsets.std(0) / sigma, torch.full_like(sigma, 0.3), rtol=0.01, atol=0)
    assert bool((offsets.mean(0).abs() / sigma < 0.003).all())
    # the loss is the noiseless loss of a rollout from the perturbed inputs, scored against the truth
    inputs, forcings, static = batch.inputs.double(), batch.forcings.double(), batch.static.double()
    targets = batch.targets.double()
    torch.manual_seed(2)
    noisy_loss = module(inputs, forcings, static, targets)
    torch.manual_seed(2)
    start = inputs + 0.3 * sigma * torch.randn_like(inputs)
    module.input_noise = 0.0
    torch.testing.assert_close(noisy_loss, module(start, forcings, static, targets), rtol=1e-12, atol=0)
    assert not torch.allclose(noisy_loss, module(inputs, forcings, static, targets))
    # inference ignores it: the same weights predict the same state with and without η
    args = (inputs[:, 0], inputs[:, 1], forcings[:, :3], static)
    plain = module.step(*args).state
    module.input_noise = 0.3
    torch.testing.assert_close(module.step(*args).state, plain, rtol=0, atol=0)


def test_negative_input_noise_is_refused() -> None:
    from vecfield.forecast.config import ModelConfig

    with pytest.raises(ValueError, match=r"model.input_noise must be ≥ 0"):
        ModelConfig(input_noise=-0.1)


def test_a_checkpoint_from_before_a_model_key_existed_resumes_with_its_default(world) -> None:
    from pathlib import Path

    from vecfield.config.typed import to_dict
    from vecfield.forecast.training import check_resumable
    from vecfield.train.checkpoint import CheckpointError

    _, spec, _, _, _, _ = world
    older = {k: v for k, v in to_dict(spec.model).items() if k != "input_noise"}
    check_resumable({**spec.to_metadata(), "model": older}, spec, Path("old.pt"))  # no error
    with pytest.raises(CheckpointError, match=r"trained with model.input_noise 0.2 \(this config: 0.0\)"):
        check_resumable({**spec.to_metadata(), "model": {**older, "input_noise": 0.2}}, spec, Path("x.pt"))
