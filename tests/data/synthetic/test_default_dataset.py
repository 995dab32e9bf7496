"""The embedded default dataset: canonical layout, determinism, caching, forcing and liveliness."""

import dataclasses
import json
import os

import numpy as np
import pytest
import xarray as xr

from vecfield.data.forcings import add_forcings, instantaneous_solar_flux
from vecfield.data.synthetic import default_dataset as dd
from vecfield.data.synthetic.default_dataset import (
    WB2_LATITUDES,
    DefaultDatasetConfig,
    EquilibriumForcing,
    load_default_dataset,
    make_geography,
    simulate_default_dataset,
)
from vecfield.data.synthetic.shallow_water import SphericalHarmonicTransform

SHORT = DefaultDatasetConfig(years=4 / 365.25, spinup_days=2.0)  # 16 states after 2 days


@pytest.fixture(scope="module")
def short_dataset() -> xr.Dataset:
    return simulate_default_dataset(SHORT)


def _area_weights(latitude: np.ndarray) -> np.ndarray:
    weights = np.cos(np.deg2rad(latitude))
    return weights / weights.mean()


def test_short_run_is_in_the_canonical_layout(short_dataset: xr.Dataset) -> None:
    ds = short_dataset
    for name in ("geopotential", "u_component_of_wind", "v_component_of_wind"):
        assert ds[name].dims == ("time", "level", "latitude", "longitude")
        assert ds[name].dtype == np.float32
        assert np.isfinite(ds[name].values).all()
    for name in ("geopotential_at_surface", "land_sea_mask"):
        assert ds[name].dims == ("latitude", "longitude")
    assert ds.geopotential.attrs["units"] == "m**2 s**-2"
    assert ds.u_component_of_wind.attrs["units"] == "m s**-1"
    np.testing.assert_array_equal(ds.latitude.values, WB2_LATITUDES)
    np.testing.assert_allclose(np.diff(ds.latitude.values), 5.625)
    np.testing.assert_allclose(ds.longitude.values, np.arange(64) * 5.625)
    np.testing.assert_array_equal(ds.level.values, [500, 850])
    assert ds.time.values[0] == np.datetime64("2000-01-01T00:00")
    assert (np.diff(ds.time.values) == np.timedelta64(6, "h")).all()
    assert ds.sizes["time"] == 16
    assert ds.attrs["config"] == json.dumps(dataclasses.asdict(SHORT), sort_keys=True)
    assert ds.attrs["seed"] == 0
    # geopotential in m² s⁻², near the standard-atmosphere values of its levels (not metres)
    z500, z850 = ds.geopotential.mean(("time", "latitude", "longitude")).values / 9.80665
    assert 4500 < z500 < 6500
    assert 500 < z850 < 2500
    assert z500 > z850


def test_same_seed_gives_identical_values_and_another_seed_differs(short_dataset: xr.Dataset) -> None:
    again = simulate_default_dataset(SHORT)
    xr.testing.assert_identical(again, short_dataset)
    other = simulate_default_dataset(dataclasses.replace(SHORT, seed=1))
    assert not np.array_equal(other.geopotential.values, short_dataset.geopotential.values)
    assert not np.array_equal(other.land_sea_mask.values, short_dataset.land_sea_mask.values)


def test_geography_has_the_requested_land_fraction_and_mountains_on_land() -> None:
    sht = SphericalHarmonicTransform(21)
    config = DefaultDatasetConfig(land_fraction=0.3, mountain_height_m=1000.0)
    geography = make_geography(config, sht)
    land = geography.land_sea_mask(sht)
    area = np.broadcast_to(sht.weights[:, None], land.shape)
    fraction = (land * area).sum() / area.sum()
    assert fraction == pytest.approx(0.3, abs=0.05)
    orography = geography.surface_geopotential(sht) / 9.80616
    assert orography.max() == pytest.approx(1000.0, rel=0.35)  # spectral truncation smooths the peak
    assert orography[land < 0.01].mean() < 0.05 * orography[land > 0.99].mean()


def test_equilibrium_follows_the_sun_and_the_seasons() -> None:
    """The forcing is driven by the same astronomy as the forecaster's TOA-radiation feature."""
    sht = SphericalHarmonicTransform(21)
    ocean = np.zeros((sht.nlat, sht.nlon))
    forcing = EquilibriumForcing(DefaultDatasetConfig(), sht.latitudes, sht.longitudes, ocean)
    times = np.array(["2000-01-01T00", "2000-01-01T09", "2000-07-01T15"], dtype="datetime64[ns]")
    equilibrium = forcing(times)
    flux = instantaneous_solar_flux(times, sht.latitudes, sht.longitudes)
    equator = np.argmin(np.abs(sht.latitudes))
    # diurnal part: the equilibrium bulge sits under the Sun
    for k in range(len(times)):
        sun = np.argmax(flux[k, equator])
        assert abs(np.argmax(equilibrium[k, equator]) - sun) <= 1
    # seasons: in January the south (summer) high latitudes are thicker than the north, in July vice versa
    south, north = sht.latitudes < -60, sht.latitudes > 60
    january, july = equilibrium[0].mean(axis=-1), equilibrium[2].mean(axis=-1)
    assert january[south].mean() > january[north].mean()
    assert july[north].mean() > july[south].mean()


def test_cache_generates_once_then_opens_lazily(tmp_path, monkeypatch) -> None:
    first = load_default_dataset(tmp_path, config=SHORT)
    stores = sorted(p.name for p in tmp_path.iterdir())
    assert stores == [f"default-dataset-{SHORT.cache_key()}.zarr"]  # no temporary left behind
    assert first.geopotential.chunks is not None  # dask-backed, i.e. lazily opened

    def must_not_run(config: DefaultDatasetConfig) -> xr.Dataset:
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
    }
    assert len(keys) == 3
    assert base.cache_key() == DefaultDatasetConfig().cache_key()


def test_bad_input_is_rejected_with_a_hint(tmp_path) -> None:
    with pytest.raises(ValueError, match="years"):
        DefaultDatasetConfig(years=0)
    with pytest.raises(ValueError, match="time step"):
        DefaultDatasetConfig(time_step_seconds=7000.0)
    with pytest.raises(ValueError, match="top layer first"):
        DefaultDatasetConfig(levels_hpa=(850, 500))
    with pytest.raises(ValueError, match="land_fraction"):
        DefaultDatasetConfig(land_fraction=1.5)
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


def _persistence_over_std(values: np.ndarray, anomaly: np.ndarray, latitude: np.ndarray, lag: int) -> float:
    weights = _area_weights(latitude)[:, None]
    std = np.sqrt((anomaly**2 * weights).mean())
    return float(np.sqrt(((values[lag:] - values[:-lag]) ** 2 * weights).mean()) / std)


def test_flow_is_lively_after_spin_up() -> None:
    """30 days after 75 days of spin-up: the flow keeps changing (eddies), it is neither at rest
    nor a steady pattern. Persistence error relative to the standard deviation about the
    30-day mean: measured 0.64 / 1.62 (z500) and 0.33 / 0.65 (z850) at 24 h / 120 h."""
    ds = simulate_default_dataset(DefaultDatasetConfig(years=30 / 365.25, spinup_days=75.0))
    for level in (500, 850):
        z = ds.geopotential.sel(level=level).values.astype(np.float64)
        anomaly = z - z.mean(axis=0)
        day = _persistence_over_std(z, anomaly, ds.latitude.values, lag=4)
        five_days = _persistence_over_std(z, anomaly, ds.latitude.values, lag=20)
        assert day > 0.25
        assert five_days > day
    speed = np.hypot(ds.u_component_of_wind, ds.v_component_of_wind).sel(level=500)
    assert 20.0 < float(speed.max()) < 150.0  # jets of tens of m/s, no blow-up


@pytest.mark.slow
def test_default_year_has_weather_like_predictability() -> None:
    """One simulated year with the default parameters: persistence beats climatology at 6 h, is
    clearly worse than perfect at 24 h and no better than climatology at 5 days (z500, z850)."""
    ds = simulate_default_dataset(DefaultDatasetConfig(years=1.0))
    days = (ds.time.values - ds.time.values[0]) / np.timedelta64(1, "D")
    columns = [np.ones_like(days)]
    for k in (1, 2, 3):
        columns += [np.sin(2 * np.pi * k * days / 365.25), np.cos(2 * np.pi * k * days / 365.25)]
    for k in (1, 2):
        columns += [np.sin(2 * np.pi * k * days), np.cos(2 * np.pi * k * days)]
    design = np.stack(columns, axis=1)
    for level in (500, 850):
        z = ds.geopotential.sel(level=level).values.astype(np.float64)
        flat = z.reshape(len(days), -1)
        coefficients, *_ = np.linalg.lstsq(design, flat, rcond=None)
        anomaly = (flat - design @ coefficients).reshape(z.shape)
        ratios = [_persistence_over_std(z, anomaly, ds.latitude.values, lag) for lag in (1, 4, 20)]
        assert ratios[0] < 0.5
        assert 0.3 < ratios[1] < 0.9
        assert ratios[2] > 1.0


def test_forcing_features_attach_to_the_dataset(short_dataset: xr.Dataset) -> None:
    """add_forcings computes TOA radiation and progress features on the dataset's own grid and times."""
    with_forcings = add_forcings(short_dataset)
    tisr = with_forcings.toa_incident_solar_radiation
    assert tisr.dims == ("time", "latitude", "longitude")
    assert tisr.shape == (16, 32, 64)
    assert float(tisr.max()) > 3.0e6  # J m⁻² accumulated over an hour near the subsolar point
    assert with_forcings.day_progress_sin.dims == ("time", "longitude")
