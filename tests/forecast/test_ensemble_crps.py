"""The CRPS-trained stochastic forecaster: its lead-aware loss recomputed by hand, its members
reproducible from (seed, initialization, member, lead) and independent of chunking, fed their own
states, streamed and resumed like the generative ensembles."""

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from tests.forecast.helpers import TINY_MODEL, tiny_spec, wave_dataset
from vecfield.data.catalogue import ENSEMBLE_DIM
from vecfield.forecast import Forecaster
from vecfield.forecast.config import ModelConfig
from vecfield.forecast.ensemble import member_keys, member_noise
from vecfield.forecast.stochastic import StochasticOneStepForecaster

STEPS = 3
NOISE = 6


@pytest.fixture(scope="module")
def world():
    ds = wave_dataset(days=4)
    spec, windows, _ = tiny_spec(ds, n_leads=2)
    model = dataclasses.replace(TINY_MODEL, method="crps", noise_features=NOISE, crps_members=3,
                                crps_alpha=0.95)
    spec = dataclasses.replace(spec, model=model)
    torch.manual_seed(0)
    module = spec.build()
    assert isinstance(module, StochasticOneStepForecaster)
    forecaster = Forecaster(module, spec)
    inits = ds["time"].values[[2, 5]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests (conftest), so that reruns there are bit-identical
    ensemble = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7)
    torch.set_num_threads(threads)
    return ds, forecaster, inits, ensemble, windows


def pairwise_afcrps(members: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """Lang et al.'s pair form, 1/(2M(M−1)) Σ_{j≠k} (|x_j − y| + |x_k − y| − (1 − ε)|x_j − x_k|),
    ε = (1 − α)/M."""
    m = members.shape[0]
    eps = (1 - alpha) / m
    total = torch.zeros_like(target)
    for j in range(m):
        for k in range(m):
            if j != k:
                total = total + ((members[j] - target).abs() + (members[k] - target).abs()
                                 - (1 - eps) * (members[j] - members[k]).abs())
    return total / (2 * m * (m - 1))


def test_the_training_loss_is_the_weighted_afcrps_of_each_members_own_rollout_averaged_over_steps(world):
    _, forecaster, _, _, windows = world
    module = forecaster.module.train()
    batch = [windows[i] for i in (0, 3)]
    inputs = torch.stack([w.inputs for w in batch])
    forcings = torch.stack([w.forcings for w in batch])
    static = batch[0].static[None]
    targets = torch.stack([w.targets for w in batch])
    torch.manual_seed(11)
    loss = module(inputs, forcings, static, targets)

    torch.manual_seed(11)  # the same noise, drawn as the rollout draws it: (B·M, K) per step, row = b·M + m
    m, sigma = 3, module.normalization.diff_std
    previous = inputs[:, 0].repeat_interleave(m, 0)
    current = inputs[:, 1].repeat_interleave(m, 0)
    per_step = []
    for j in range(2):
        z = torch.randn(current.shape[0], NOISE)
        cond = module.condition(previous, current, forcings[:, j: j + 3].repeat_interleave(m, 0), static)
        zero_time = torch.zeros(current.shape[0])
        residual = module.field.net(torch.zeros_like(current), zero_time, cond, noise=z)
        nxt = current + sigma.float() * residual
        members = torch.stack([nxt[b * m:(b + 1) * m] for b in range(2)], dim=1)  # (M, B, N, C)
        origin = inputs[:, 1].double()  # the CRPS is translation equivariant; this keeps float32's digits
        truth = (targets[:, j].double() - origin) / sigma
        score = pairwise_afcrps((members.double() - origin) / sigma, truth, 0.95)
        per_step.append((score * module.loss_weight.double()).mean())
        previous, current = current, nxt
    torch.testing.assert_close(loss.double(), torch.stack(per_step).mean(), rtol=1e-4, atol=1e-6)
    loss.backward()
    embedding = module.field.net.noise_embedding
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in embedding.parameters())
    module.zero_grad()
    module.eval()
    with pytest.raises(ValueError, match="forward"):
        module.step(inputs[:, 0], inputs[:, 1], forcings[:, :3], static, targets[:, 0])


def test_members_differ_and_the_seed_fixes_the_ensemble(world):
    ds, forecaster, inits, ensemble, _ = world
    assert ensemble["geopotential"].dims == (
        "time", "prediction_timedelta", ENSEMBLE_DIM, "level", "latitude", "longitude")
    z = ensemble["geopotential"].values
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(z[:, :, a] - z[:, :, b]).max() > 1e-2
    xr.testing.assert_equal(forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7), ensemble)
    other = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=8)
    assert np.abs(other["geopotential"].values - z).max() > 1e-2
    assert ensemble.attrs["noise_seed"] == 7 and "sampling_steps" not in ensemble.attrs


def test_an_ensemble_does_not_depend_on_chunking_or_on_the_other_initializations(world):
    ds, forecaster, inits, ensemble, _ = world
    chunked = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7, member_chunk=2)
    xr.testing.assert_allclose(chunked, ensemble, rtol=1e-5, atol=1e-3)
    alone = forecaster.rollout(ds, STEPS, init_times=inits[1:], members=3, seed=7)
    xr.testing.assert_allclose(alone, ensemble.isel(time=[1]), rtol=1e-5, atol=1e-3)


def test_lead_two_of_each_member_is_one_step_from_its_own_lead_one_with_its_own_noise(world):
    ds, forecaster, inits, ensemble, _ = world
    module, spec = forecaster.module, forecaster.spec
    states = forecaster._states(ds, inits[:1])

    def members_at(lead: int) -> np.ndarray:  # (members, N, C)
        one = ensemble.isel(time=0, prediction_timedelta=lead).drop_vars(["time", "prediction_timedelta"])
        return spec.state_layout.stack(one.rename({ENSEMBLE_DIM: "time"}))

    lead1, lead2 = members_at(0), members_at(1)
    forcings = forecaster._forcings(inits[:1] + forecaster.step, 1)[:, :3].expand(3, -1, -1, -1)
    z = member_noise(member_keys(inits[:1], 3), lead=2, seed=7, shape=(NOISE,))
    with torch.no_grad():
        step = module.step_from_noise(states[:, 1].expand(3, -1, -1), torch.from_numpy(lead1), forcings,
                                      spec.static[None], z)
    np.testing.assert_allclose(step.numpy(), lead2, rtol=1e-5, atol=1e-3)


def test_streamed_crps_ensemble_equals_the_in_memory_one_and_refuses_another_seed(world, tmp_path):
    ds, forecaster, inits, ensemble, _ = world
    path = forecaster.rollout_to_zarr(ds, STEPS, tmp_path / "ens.zarr", init_times=inits, members=3, seed=7)
    stored = xr.open_zarr(path).load()
    xr.testing.assert_allclose(stored.drop_attrs(), ensemble.drop_attrs(), rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="noise seed"):
        forecaster.rollout_to_zarr(ds, STEPS, path, init_times=inits, members=3, seed=8)


def test_crps_config_mistakes_are_refused():
    with pytest.raises(ValueError, match="crps_members"):
        ModelConfig(method="crps", crps_members=1)
    with pytest.raises(ValueError, match="noise_features"):
        ModelConfig(method="crps", noise_features=0)
    with pytest.raises(ValueError, match="mesh_noise_features"):
        ModelConfig(method="crps", mesh_noise_features=-1)
    ModelConfig(method="crps", noise_features=0, mesh_noise_features=4)  # ζ alone is a noise input
    with pytest.raises(ValueError, match="crps_alpha"):
        ModelConfig(method="crps", crps_alpha=1.2)
    with pytest.raises(ValueError, match="time_features"):
        ModelConfig(method="crps", time_features=0)


def test_the_crps_preset_fine_tunes_the_quickstart_network_on_its_data_to_eight_steps():
    from pathlib import Path

    from vecfield.forecast.config import load_forecast_config

    configs = Path(__file__).parents[2] / "configs"
    config = load_forecast_config(configs / "ensemble_crps.yaml")
    quickstart = load_forecast_config(configs / "quickstart.yaml")
    assert config.model.method == "crps" and config.model.crps_members >= 2 and config.rollout.members >= 8
    assert config.model.noise_features > 0 and config.model.mesh_noise_features > 0  # both noises
    assert config.dataset == quickstart.dataset and config.train.curriculum[-1][1] == 8
    network = ("latent", "processor_layers", "time_features", "mesh_min_level", "mesh_max_level")
    assert [getattr(config.model, k) for k in network] == [getattr(quickstart.model, k) for k in network]
    assert config.train.init_from == str(Path(quickstart.train.run_dir) / "checkpoints" / "best.pt")


@pytest.mark.slow  # ~40 s on 2 shared cores: a dataset build, training, rollout and evaluation
def test_crps_train_ensemble_rollout_and_probabilistic_evaluation(tmp_path) -> None:
    import json

    import yaml

    from pipelines.build_dataset import main as build
    from pipelines.evaluate import main as evaluate
    from pipelines.rollout import main as rollout
    from pipelines.train_forecaster import main as train
    from tests.forecast.helpers import tiny_pipeline_config

    source = tmp_path / "source.zarr"
    wave_dataset(days=16).drop_attrs().to_zarr(source, zarr_format=2)
    config = tiny_pipeline_config(tmp_path, source)
    config["model"].update({"method": "crps", "noise_features": 4, "crps_members": 2})
    config["rollout"].update({"steps": 3, "max_inits": 2, "member_chunk": 4})
    path = tmp_path / "tiny_crps.yaml"
    path.write_text(yaml.safe_dump(config))

    build(["--config", str(path)])
    checkpoint = train(["--config", str(path)])  # the curriculum reaches 2 steps: members rolled out
    stored = rollout(["--config", str(path), "--checkpoint", str(checkpoint), "--members", "3"])
    forecast = xr.open_zarr(stored)
    assert forecast.sizes["realization"] == 3 and forecast.attrs["noise_seed"] == 0
    written = evaluate(["--config", str(path)])
    record = json.loads(written["scores"].read_text())["ensemble"]
    assert record["members"] == 3 and written["spread_skill_plot"].exists()


def test_init_from_a_deterministic_checkpoint_loads_all_but_the_noise_embeddings(tmp_path):
    from vecfield.forecast import ForecastTask
    from vecfield.train import Trainer, TrainerConfig
    from vecfield.train.checkpoint import CheckpointError, load_initial_weights

    ds = wave_dataset(days=4)
    spec, windows, _ = tiny_spec(ds, n_leads=1)
    torch.manual_seed(0)
    deterministic = spec.build()
    task = ForecastTask(spec.state_layout.channels, 6, spec.normalization.state_std)
    config = TrainerConfig(run_dir=str(tmp_path / "det"), max_steps=1, batch_size=2, progress_bar=False,
                           ema_decay=None)
    with Trainer(task, deterministic, windows, config, metadata=spec.to_metadata()) as trainer:
        trainer.fit()
        checkpoint = trainer.store.latest()
    crps_model = dataclasses.replace(TINY_MODEL, method="crps", noise_features=4, mesh_noise_features=2)
    crps_spec = dataclasses.replace(spec, model=crps_model)
    torch.manual_seed(1)
    stochastic = crps_spec.build()
    assert stochastic.noise_shape(torch.zeros(1)) == (4 + 2 * stochastic.field.net.num_mesh,)
    before = {k: v.clone() for k, v in stochastic.state_dict().items()}
    load_initial_weights(checkpoint, stochastic)
    loaded, source = stochastic.state_dict(), deterministic.state_dict()
    for name, value in loaded.items():
        if name.startswith(("field.net.noise_embedding.", "field.net.mesh_noise_embedding.")):
            torch.testing.assert_close(value, before[name])  # fresh: not in the deterministic checkpoint
        else:
            torch.testing.assert_close(value, source[name])
    wider = dataclasses.replace(spec, model=dataclasses.replace(crps_model, latent=8))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_initial_weights(checkpoint, wider.build())
