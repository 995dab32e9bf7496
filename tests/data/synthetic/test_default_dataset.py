"""The embedded default dataset: canonical layout, independent runs, determinism, caching, the
Held–Suarez forcing against its formulas, and bad input."""

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch
import xarray as xr

from vecfield.data.forcings import add_forcings
from vecfield.data.synthetic import default_dataset as dd
from vecfield.data.synthetic.default_dataset import (
    WB2_LATITUDES,
    DefaultDatasetConfig,
    build_atmosphere,
    climate_at,
    load_climate,
    load_default_dataset,
    make_geography,
    simulate_default_dataset,
)
from vecfield.data.synthetic.held_suarez import HeldSuarezForcing, HeldSuarezParameters, model_grid
from vecfield.data.trajectories import TRAJECTORY_COORD

# 16 six-hourly states in two independent runs of 8, each spun up for one day from the climate
SHORT = DefaultDatasetConfig(years=4 / 365.25, segments=2, segment_spinup_days=1.0)


@pytest.fixture(scope="module")
def short_dataset() -> xr.Dataset:
    return simulate_default_dataset(SHORT, progress=False)


def test_short_run_is_in_the_canonical_layout(short_dataset: xr.Dataset) -> None:
    ds = short_dataset
    for name in ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind"):
        assert ds[name].dims == ("time", "level", "latitude", "longitude")
        assert ds[name].dtype == np.float32
        assert np.isfinite(ds[name].values).all()
    for name in ("geopotential_at_surface", "land_sea_mask"):
        assert ds[name].dims == ("latitude", "longitude")
    assert ds.geopotential.attrs["units"] == "m**2 s**-2" and ds.temperature.attrs["units"] == "K"
    assert ds.u_component_of_wind.attrs["units"] == "m s**-1"
    np.testing.assert_array_equal(ds.latitude.values, WB2_LATITUDES)
    np.testing.assert_allclose(ds.longitude.values, np.arange(64) * 5.625)
    np.testing.assert_array_equal(ds.level.values, [500, 850])
    assert ds.time.values[0] == np.datetime64("2000-01-01T00:00")
    assert (np.diff(ds.time.values) == np.timedelta64(6, "h")).all()
    np.testing.assert_array_equal(ds[TRAJECTORY_COORD].values, [0] * 8 + [1] * 8)
    assert ds.attrs["config"] == json.dumps(dataclasses.asdict(SHORT), sort_keys=True)
    # an Earth-like column: z in m² s⁻² near the standard heights, a troposphere that cools upward
    z500, z850 = ds.geopotential.mean(("time", "latitude", "longitude")).values / 9.80665
    assert 5000 < z500 < 6200 and 1000 < z850 < 1900
    t500, t850 = ds.temperature.mean(("time", "latitude", "longitude")).values
    assert 230 < t500 < 270 < t850 < 295
    # winter: the northern mid-latitudes are colder than the southern ones at 850 hPa
    t = ds.temperature.sel(level=850).mean(("time", "longitude"))
    assert float(t.sel(latitude=slice(30, 60)).mean()) < float(t.sel(latitude=slice(-60, -30)).mean())


def test_same_seed_gives_identical_values_and_another_seed_differs(short_dataset: xr.Dataset) -> None:
    again = simulate_default_dataset(SHORT, progress=False)
    xr.testing.assert_identical(again, short_dataset)
    other = simulate_default_dataset(dataclasses.replace(SHORT, seed=1), progress=False)
    assert not np.array_equal(other.geopotential.values, short_dataset.geopotential.values)
    assert not np.array_equal(other.land_sea_mask.values, short_dataset.land_sea_mask.values)


def test_runs_side_by_side_equal_runs_made_alone(short_dataset: xr.Dataset) -> None:
    """Batching the runs couples nothing: the second run equals the same dates simulated alone
    (its noise is drawn from its own start date), up to float32 round-off."""
    alone = dataclasses.replace(SHORT, start="2000-01-03", years=2 / 365.25, segments=1)
    second = simulate_default_dataset(alone, progress=False)
    batched = short_dataset.isel(time=slice(8, None))
    np.testing.assert_array_equal(second.time.values, batched.time.values)
    for name in ("geopotential", "temperature", "u_component_of_wind", "v_component_of_wind"):
        np.testing.assert_allclose(second[name].values, batched[name].values, rtol=1e-4, atol=1e-3)


def test_batches_in_worker_processes_give_the_same_values() -> None:
    """Five runs: a batch of four and a batch of one, in one process or in two: identical values."""
    config = dataclasses.replace(SHORT, years=5 / 365.25, segments=5)
    serial = simulate_default_dataset(config, progress=False, workers=1)
    parallel = simulate_default_dataset(config, progress=False, workers=2)
    xr.testing.assert_identical(serial, parallel)
    np.testing.assert_array_equal(serial[TRAJECTORY_COORD].values, np.repeat(np.arange(5), 4))


def test_geography_has_the_requested_land_fraction_and_mountains_on_land() -> None:
    config = DefaultDatasetConfig(land_fraction=0.3, mountain_height_m=1000.0)
    grid = model_grid(config.atmosphere)
    geography = make_geography(config, grid)
    land = geography.land_sea_mask(grid)
    weights = np.broadcast_to(grid.spec.quadrature_weights, land.shape)
    assert (land * weights).sum() / weights.sum() == pytest.approx(0.3, abs=0.05)
    height = geography.height(grid)
    assert height.max() == pytest.approx(1000.0, rel=0.35)  # the spectral taper smooths the peak
    assert height[land < 0.01].mean() < 0.05 * height[land > 0.99].mean()


def _forcing(times: np.ndarray, parameters: HeldSuarezParameters | None = None) -> HeldSuarezForcing:
    config = SHORT if parameters is None else dataclasses.replace(SHORT, atmosphere=parameters)
    atmosphere, _ = build_atmosphere(config)
    return HeldSuarezForcing(atmosphere, times, atmosphere.land)


@pytest.mark.parametrize("amplification", [0.0, 1.0])
def test_equilibrium_temperature_is_held_suarez_at_the_equinox(amplification: float) -> None:
    """At an equinox (declination 0: no seasonal term) with HS94's ΔT_y = 60 K, T_eq is HS94's
    formula, 315 − 60 sin²φ − 10 ln(p/p₀) cos²φ times (p/p₀)^κ and never below 200 K, or with the
    polar amplification a = 1 the same with sin⁴φ."""
    equinox = np.array(["2000-03-20T07:35"], dtype="datetime64[ns]")  # the March 2000 equinox
    forcing = _forcing(equinox, HeldSuarezParameters(equator_pole_k=60.0, polar_amplification=amplification))
    kelvin = forcing.kelvin
    sin_lat = forcing.sin_lat.double()
    for p in (1.0, 0.5, 0.1):
        pressure = torch.full((1, 1, 1, sin_lat.numel()), p * forcing.p0)
        t_eq = forcing.equilibrium_temperature(pressure, equinox)[0, 0, 0].double() / kelvin
        meridional = (1 - amplification) * sin_lat**2 + amplification * sin_lat**4
        expected = (315 - 60 * meridional - 10 * math.log(p) * (1 - sin_lat**2)) * p ** (2 / 7)
        np.testing.assert_allclose(t_eq.numpy(), np.maximum(expected.numpy(), 200.0), atol=0.05)


def test_seasons_and_days_follow_the_sun() -> None:
    """January: the northern hemisphere's equilibrium is colder than the southern one (ε > 0); the
    diurnal heating anomaly peaks under the Sun."""
    times = np.array(["2000-01-15T00", "2000-07-15T00", "2000-01-15T12"], dtype="datetime64[ns]")
    forcing = _forcing(times)
    pressure = torch.full((3, 1, 1, forcing.sin_lat.numel()), 0.8 * forcing.p0)
    t_eq = forcing.equilibrium_temperature(pressure, times)[:, 0, 0]  # (3, latitude)
    north, south = forcing.sin_lat > 0.5, forcing.sin_lat < -0.5
    assert t_eq[0, north].mean() < t_eq[0, south].mean()
    assert t_eq[1, north].mean() > t_eq[1, south].mean()
    anomaly = forcing.diurnal_anomaly(times)[:, 0]  # (3, longitude, latitude)
    equator = int(torch.argmin(forcing.sin_lat.abs()))
    noon_longitudes = np.rad2deg(np.array([np.pi, np.pi, 0.0]))  # 00 UTC: noon at 180°; 12 UTC: at 0°
    for k, noon in enumerate(noon_longitudes):
        peak = forcing.longitudes[int(torch.argmax(anomaly[k, :, equator]))]
        assert min(abs(peak - noon), 360 - abs(peak - noon)) <= 10.0
    assert torch.allclose(anomaly.mean(dim=1), torch.zeros(()), atol=1e-6)  # a daily-mean-free cycle


def test_drag_and_radiation_rates_are_held_suarez() -> None:
    forcing = _forcing(np.array(["2000-01-01"], dtype="datetime64[ns]"))
    day = forcing.physics.nondimensionalize(1 * dd.U.day)
    sigma = forcing.sigma[:, 0, 0]
    k_v = forcing.k_v[:, 0, 0] * day
    np.testing.assert_allclose(k_v.numpy(), np.clip((sigma.numpy() - 0.7) / 0.3, 0, None), rtol=1e-5)
    k_t = forcing.k_t[:, 0] * day  # (level, latitude)
    assert torch.allclose(k_t[sigma < 0.7], torch.full_like(k_t[sigma < 0.7], 1 / 40))
    assert float(k_t.max()) < 1 / 4 and float(k_t[-1].max()) > 0.2


def test_climate_interpolates_between_mid_month_means() -> None:
    climate = load_climate()
    layers = HeldSuarezParameters().layers
    assert climate.shape[:2] == (12, 3 * layers + 1) and np.isfinite(climate).all()
    mid_january, mid_february = np.datetime64("2001-01-16", "ns"), np.datetime64("2001-02-15", "ns")
    halfway = mid_january + (mid_february - mid_january) / 2
    at = climate_at(climate, np.array([mid_january, halfway]))
    np.testing.assert_allclose(at[0], climate[0], atol=0.02 * np.abs(climate).max())
    np.testing.assert_allclose(at[1], (climate[0] + climate[1]) / 2, atol=0.02 * np.abs(climate).max())


def test_cache_generates_once_then_opens_lazily(tmp_path, monkeypatch) -> None:
    first = load_default_dataset(tmp_path, config=SHORT)
    stores = sorted(p.name for p in tmp_path.iterdir())
    assert stores == [f"default-dataset-{SHORT.cache_key()}.zarr"]  # no temporary left behind
    assert first.geopotential.chunks is not None  # dask-backed, i.e. lazily opened

    def must_not_run(config: DefaultDatasetConfig, progress: bool = True) -> xr.Dataset:
        raise AssertionError("the cached store should have been reused")

    monkeypatch.setattr(dd, "simulate_default_dataset", must_not_run)
    second = load_default_dataset(tmp_path, config=SHORT)
    xr.testing.assert_identical(first.load(), second.load())
    with pytest.raises(AssertionError, match="reused"):
        load_default_dataset(tmp_path, config=SHORT, seed=5)  # another key: must generate


def test_cached_values_equal_a_fresh_simulation(tmp_path, short_dataset: xr.Dataset) -> None:
    cached = load_default_dataset(tmp_path, config=SHORT).load()
    xr.testing.assert_identical(cached, short_dataset)


def test_cache_key_changes_with_any_parameter() -> None:
    base = DefaultDatasetConfig()
    keys = {
        base.cache_key(),
        dataclasses.replace(base, seed=1).cache_key(),
        dataclasses.replace(base, years=2).cache_key(),
        dataclasses.replace(base, atmosphere=HeldSuarezParameters(equator_pole_k=50.0)).cache_key(),
    }
    assert len(keys) == 4
    assert base.cache_key() == DefaultDatasetConfig().cache_key()


def test_bad_input_is_rejected_with_a_hint(tmp_path) -> None:
    with pytest.raises(ValueError, match="years"):
        DefaultDatasetConfig(years=0)
    with pytest.raises(ValueError, match="time step"):
        DefaultDatasetConfig(atmosphere=HeldSuarezParameters(time_step_minutes=25.0))
    with pytest.raises(ValueError, match="increasing"):
        DefaultDatasetConfig(levels_hpa=(850, 500))
    with pytest.raises(ValueError, match="land_fraction"):
        DefaultDatasetConfig(land_fraction=1.5)
    with pytest.raises(ValueError, match="truncation"):
        HeldSuarezParameters(truncation=30)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cache"):
        load_default_dataset(blocker / "cache", config=SHORT)
    if os.geteuid() != 0:  # root can write anywhere
        read_only = tmp_path / "read-only"
        read_only.mkdir()
        read_only.chmod(0o500)
        with pytest.raises(ValueError, match="not writable"):
            load_default_dataset(read_only, config=SHORT)


def test_forcing_features_attach_to_the_dataset(short_dataset: xr.Dataset) -> None:
    """add_forcings computes TOA radiation and progress features on the dataset's own grid and times."""
    with_forcings = add_forcings(short_dataset)
    tisr = with_forcings.toa_incident_solar_radiation
    assert tisr.dims == ("time", "latitude", "longitude")
    assert tisr.shape == (16, 32, 64)
    assert float(tisr.max()) > 3.0e6  # J m⁻² accumulated over an hour near the subsolar point
    assert with_forcings.day_progress_sin.dims == ("time", "longitude")
