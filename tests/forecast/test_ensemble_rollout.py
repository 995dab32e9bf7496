"""Ensemble rollouts: the realization dim, independent members, seeds, chunking, own-state feeding, zarr."""

import dataclasses

import numpy as np
import pytest
import torch
import xarray as xr

from tests.forecast.helpers import TINY_MODEL, tiny_spec, wave_dataset
from vecfield.data.catalogue import ENSEMBLE_DIM
from vecfield.forecast import Forecaster
from vecfield.forecast.ensemble import member_keys, member_noise

STEPS = 3


@pytest.fixture(scope="module")
def world():
    ds = wave_dataset(days=4)
    spec, _, _ = tiny_spec(ds)
    spec = dataclasses.replace(spec, model=dataclasses.replace(TINY_MODEL, method="flow_matching",
                                                              sampling_steps=2))
    torch.manual_seed(0)
    forecaster = Forecaster(spec.build(), spec)
    inits = ds["time"].values[[2, 5]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests (conftest), so that reruns there are bit-identical
    ensemble = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7)
    torch.set_num_threads(threads)
    return ds, forecaster, inits, ensemble


def test_members_add_the_realization_dim_in_the_forecast_layout(world):
    _, _, inits, ensemble = world
    assert ensemble["geopotential"].dims == (
        "time", "prediction_timedelta", ENSEMBLE_DIM, "level", "latitude", "longitude")
    assert ensemble["2m_temperature"].dims == (
        "time", "prediction_timedelta", ENSEMBLE_DIM, "latitude", "longitude")
    np.testing.assert_array_equal(ensemble[ENSEMBLE_DIM].values, [0, 1, 2])
    np.testing.assert_array_equal(ensemble["time"].values, inits)
    assert all(np.isfinite(v.values).all() for v in ensemble.data_vars.values())


def test_members_are_independent_and_the_seed_fixes_the_ensemble(world):
    ds, forecaster, inits, ensemble = world
    z = ensemble["geopotential"].values  # (time, lead, member, level, lat, lon)
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(z[:, :, a] - z[:, :, b]).max() > 1.0  # different noise → different states
    again = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7)
    xr.testing.assert_equal(again, ensemble)
    other = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=8)
    assert np.abs(other["geopotential"].values - z).max() > 1.0
    noise = member_noise(member_keys(inits, 3), lead=1, seed=7, shape=(512, 5))
    correlation = np.corrcoef(noise.reshape(6, -1).numpy())
    assert np.abs(correlation - np.eye(6)).max() < 0.1  # 2560 values each: |r| ~ 0.02 when independent


def test_an_ensemble_does_not_depend_on_chunking_or_on_the_other_initializations(world):
    ds, forecaster, inits, ensemble = world
    chunked = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7, member_chunk=2)
    xr.testing.assert_allclose(chunked, ensemble, rtol=1e-5, atol=1e-3)
    alone = forecaster.rollout(ds, STEPS, init_times=inits[1:], members=3, seed=7)
    xr.testing.assert_allclose(alone, ensemble.isel(time=[1]), rtol=1e-5, atol=1e-3)


def test_each_member_is_fed_its_own_previous_states(world):
    """Lead 2 of member m is one sampled step from member m's lead 1 (and the initial state), with
    member m's noise at lead 2."""
    ds, forecaster, inits, ensemble = world
    module, spec = forecaster.module, forecaster.spec
    states = forecaster._states(ds, inits[:1])  # (1, 2, N, C)

    def members_at(lead: int) -> np.ndarray:  # (members, N, C)
        one = ensemble.isel(time=0, prediction_timedelta=lead).drop_vars(["time", "prediction_timedelta"])
        return spec.state_layout.stack(one.rename({ENSEMBLE_DIM: "time"}))

    lead1, lead2 = members_at(0), members_at(1)
    forcings = forecaster._forcings(inits[:1] + forecaster.step, 1)[:, :3].expand(3, -1, -1, -1)
    z = member_noise(member_keys(inits[:1], 3), lead=2, seed=7, shape=lead1.shape[1:])
    with torch.no_grad():
        step = module.step_from_noise(states[:, 1].expand(3, -1, -1), torch.from_numpy(lead1), forcings,
                                      spec.static[None], z)
    np.testing.assert_allclose(step.numpy(), lead2, rtol=1e-5, atol=1e-3)


def test_streamed_ensemble_equals_the_in_memory_one_and_resumes_identically(world, tmp_path, monkeypatch):
    ds, forecaster, inits, ensemble = world
    path = forecaster.rollout_to_zarr(ds, STEPS, tmp_path / "ens.zarr", init_times=inits, members=3, seed=7)
    stored = xr.open_zarr(path).load()
    assert stored["geopotential"].dims == ensemble["geopotential"].dims
    xr.testing.assert_allclose(stored.drop_attrs(), ensemble.drop_attrs(), rtol=1e-5, atol=1e-3)

    original = Forecaster._lead_dataset

    def interrupted(self, state, times, lead):
        if lead == 3:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, state, times, lead)

    monkeypatch.setattr(Forecaster, "_lead_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        forecaster.rollout_to_zarr(ds, STEPS, tmp_path / "resumed.zarr", init_times=inits, members=3, seed=7)
    monkeypatch.setattr(Forecaster, "_lead_dataset", original)
    assert xr.open_zarr(tmp_path / "resumed.zarr").attrs["completed_leads"] == 2
    resumed = forecaster.rollout_to_zarr(ds, STEPS, tmp_path / "resumed.zarr", init_times=inits, members=3,
                                         seed=7)
    xr.testing.assert_equal(xr.open_zarr(resumed).load(), stored)
    with pytest.raises(ValueError, match="members"):
        forecaster.rollout_to_zarr(ds, STEPS, path, init_times=inits, members=2, seed=7)
    for other in ({"churn": 2.5}, {"churn_noise": 1.2}):
        with forecaster.module.sampling(**other), pytest.raises(ValueError, match="sampler"):
            forecaster.rollout_to_zarr(ds, STEPS, path, init_times=inits, members=3, seed=7)
    assert stored.attrs["noise_seed"] == 7
    with pytest.raises(ValueError, match="noise seed"):  # another seed would splice two ensembles
        forecaster.rollout_to_zarr(ds, STEPS, tmp_path / "resumed.zarr", init_times=inits, members=3, seed=8)


def test_churned_ensembles_differ_from_the_ode_and_keep_seeds_and_chunking_invariance(world):
    """With churn every row draws its extra noise from its own generator (module docstring), so the
    ensemble is still fixed by the seed and independent of how rows are chunked."""
    ds, forecaster, inits, ensemble = world
    module = forecaster.module
    assert module.sampling_churn == 0 and module.field.options.solver == "heun"
    with module.sampling(churn=2.5):
        assert module.field.options.solver == "stochastic_heun" and module.sampling_churn == 2.5
        churned = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7)
        chunked = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7, member_chunk=2)
        again = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7)
    assert module.sampling_churn == 0 and module.field.options.solver == "heun"
    assert np.abs(churned["geopotential"].values - ensemble["geopotential"].values).max() > 1.0
    xr.testing.assert_equal(again, churned)
    xr.testing.assert_allclose(chunked, churned, rtol=1e-5, atol=1e-3)
    with module.sampling(churn=2.5, churn_noise=1.4):
        inflated = forecaster.rollout(ds, STEPS, init_times=inits, members=3, seed=7)
    spread = {name: float(run["geopotential"].std("realization").mean())
              for name, run in (("churned", churned), ("inflated", inflated))}
    assert spread["inflated"] > spread["churned"], spread
    assert module.sampling_churn_noise == 1.05
    with pytest.raises(ValueError, match="churn"):
        module.sampling(churn=-1.0).__enter__()
    with pytest.raises(ValueError, match="S_noise"):
        module.sampling(churn_noise=0.0).__enter__()


def test_deterministic_forecasters_refuse_members():
    ds = wave_dataset(days=3)
    spec, _, _ = tiny_spec(ds)
    forecaster = Forecaster(spec.build(), spec)
    with pytest.raises(ValueError, match="generative forecaster"):
        forecaster.rollout(ds, 1, members=2)
