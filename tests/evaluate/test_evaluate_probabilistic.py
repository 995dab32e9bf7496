"""Ensemble scores: hand values, closed-form Gaussian CRPS, unbiasedness, real ERA5 members, calibration."""

import itertools

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evalhelpers import forecast_dataset, hours, truth_dataset
from scipy import stats

from vecfield.evaluate import (
    crps,
    crps_skill,
    crps_spread,
    debiased_ensemble_mean_mse,
    ensemble_mean_mse,
    ensemble_mean_rmse,
    ensemble_variance,
    mae,
    probabilistic_scores,
    rank_histogram,
    spread_skill_ratio,
)

INIT = pd.DatetimeIndex(["2020-01-01"])
LEAD0 = hours(0)
POINT = (np.array([0.0]), np.array([0.0]))  # one grid cell: its latitude weight is 1


def point_case(members: list[float], truth: float) -> tuple[xr.Dataset, xr.Dataset]:
    data = np.asarray(members, dtype=np.float64).reshape(1, 1, -1, 1, 1)
    return (
        forecast_dataset(data, INIT, LEAD0, *POINT),
        truth_dataset(np.full((1, 1, 1), truth), INIT, *POINT),
    )


def spread_points(values: np.ndarray, truths: np.ndarray) -> tuple[xr.Dataset, xr.Dataset]:
    """K ensembles on one equatorial row of K cells (equal weights): values (K, M), truths (K,)."""
    k = values.shape[0]
    lat, lon = np.array([0.0]), np.linspace(0.0, 360.0, k, endpoint=False)
    data = values.T.reshape(1, 1, -1, 1, k)  # (init, lead, member, lat, lon)
    return (
        forecast_dataset(data, INIT, LEAD0, lat, lon),
        truth_dataset(truths.reshape(1, 1, k), INIT, lat, lon),
    )


def gaussian_crps(y: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """Closed form: CRPS(N(μ, σ²), y) = σ[z(2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/σ."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_hand_computed_scores_for_three_members():
    # members 0, 1, 3; truth 2
    # skill = (2 + 1 + 1)/3 = 4/3; pairs |0−1| + |0−3| + |1−3| = 6, ΣΣ_{i≠j} = 12, spread = 12/(3·2) = 2
    # CRPS = 4/3 − 2/2 = 1/3
    # mean 4/3, variance (16/9 + 1/9 + 25/9)/2 = 7/3; ens-mean MSE (4/3 − 2)² = 4/9; debiased 4/9 − 7/9
    # SSR = √(4/3) · √(7/3) / (2/3) = √28 / 2; without the correction √(7/3) · 3/2
    forecast, truth = point_case([0.0, 1.0, 3.0], 2.0)
    assert crps_skill(forecast, truth)["x"].item() == pytest.approx(4 / 3)
    assert crps_spread(forecast, truth)["x"].item() == pytest.approx(2.0)
    assert crps(forecast, truth)["x"].item() == pytest.approx(1 / 3)
    assert ensemble_variance(forecast, truth)["x"].item() == pytest.approx(7 / 3)
    assert ensemble_mean_mse(forecast, truth)["x"].item() == pytest.approx(4 / 9)
    assert ensemble_mean_rmse(forecast, truth)["x"].item() == pytest.approx(2 / 3)
    assert debiased_ensemble_mean_mse(forecast, truth)["x"].item() == pytest.approx(4 / 9 - 7 / 9)
    assert spread_skill_ratio(forecast, truth)["x"].item() == pytest.approx(np.sqrt(28) / 2)
    uncorrected = spread_skill_ratio(forecast, truth, finite_ensemble_correction=False)
    assert uncorrected["x"].item() == pytest.approx(np.sqrt(7 / 3) * 1.5)
    np.testing.assert_array_equal(rank_histogram(forecast, truth)["x"].values.ravel(), [0, 0, 1, 0])


def test_fair_crps_relates_to_the_integral_crps_of_the_empirical_cdf():
    # ∫(F(x) − 1{x ≥ 2})² dx for members 0, 1, 3: on [0,1) (1/3)², [1,2) (2/3)², [2,3) (1/3)² → 6/9
    # = skill − ½ ΣΣ|Xi − Xj| / M² = 4/3 − 12/18; the fair CRPS replaces M² by M(M − 1)
    forecast, truth = point_case([0.0, 1.0, 3.0], 2.0)
    skill, spread = crps_skill(forecast, truth)["x"].item(), crps_spread(forecast, truth)["x"].item()
    m = 3
    assert skill - 0.5 * spread * (m - 1) / m == pytest.approx(6 / 9)


def test_single_member_crps_is_the_absolute_error():
    forecast, truth = point_case([1.5], -0.5)
    assert crps(forecast, truth)["x"].item() == pytest.approx(2.0)
    deterministic = forecast.isel(realization=0, drop=True)
    assert crps(forecast, truth)["x"].item() == pytest.approx(mae(deterministic, truth)["x"].item())
    with pytest.raises(ValueError, match="at least 2 members"):
        spread_skill_ratio(forecast, truth)


def test_large_gaussian_ensemble_matches_the_closed_form_crps():
    mu, sigma, m = 0.5, 2.0, 20_000
    truths = mu + sigma * np.array([-2.5, -1.5, -0.7, 0.0, 0.3, 0.8, 1.2, 2.0])
    values = mu + sigma * np.random.default_rng(11).normal(size=(truths.size, m))
    forecast, truth = spread_points(values, truths)
    expected = gaussian_crps(truths, mu, sigma).mean()
    # standard error of the 8-point mean, measured over 30 seeds: 0.004 (= 0.002σ); tolerance 4 SE
    assert crps(forecast, truth)["x"].item() == pytest.approx(expected, abs=0.016)
    # spread → E|X − X'| = 2σ/√π
    assert crps_spread(forecast, truth)["x"].item() == pytest.approx(2 * sigma / np.sqrt(np.pi), rel=0.01)


def test_fair_crps_of_small_ensembles_is_unbiased_and_the_plain_one_is_not():
    k, m = 10_000, 3
    rng = np.random.default_rng(12)
    values, truths = rng.normal(size=(k, m)), rng.normal(size=k)
    forecast, truth = spread_points(values, truths)
    # direct O(M²) per-ensemble fair CRPS, its mean and standard error
    skill = np.abs(values - truths[:, None]).mean(axis=1)
    pair_sum = sum(np.abs(values[:, i] - values[:, j]) for i, j in itertools.permutations(range(m), 2))
    fair = skill - 0.5 * pair_sum / (m * (m - 1))
    plain = skill - 0.5 * pair_sum / m**2
    standard_error = fair.std(ddof=1) / np.sqrt(k)
    target = gaussian_crps(truths, 0.0, 1.0).mean()  # the CRPS of the distribution the members come from
    score = crps(forecast, truth)["x"].item()
    assert score == pytest.approx(fair.mean(), rel=1e-12)
    assert abs(score - target) < 4 * standard_error
    assert abs(plain.mean() - target) > 10 * standard_error  # biased by E|X − X'|/(2M) ≈ 0.19


@pytest.fixture(scope="module")
def era5_members(shared_data) -> xr.Dataset:
    path = shared_data / "era5" / "era5-levels-members.grib"
    opened = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    members = opened.load().astype(np.float64).isel(latitude=slice(None, None, -1))
    opened.close()
    return members.rename(isobaricInhPa="level").drop_vars(["step", "valid_time"])


def test_real_era5_members_match_a_direct_quadratic_computation(era5_members):
    # members 1–9 as an ensemble "forecast" at lead 0, member 0 as the truth
    truth = era5_members.sel(number=0, drop=True)
    forecast = (
        era5_members.sel(number=slice(1, 9))
        .rename(number="realization")
        .expand_dims(prediction_timedelta=hours(0))
        .transpose("time", "prediction_timedelta", "realization", ...)
    )
    # independent weights: GraphCast's cell areas on the 3° grid with poles
    lat = np.deg2rad(truth["latitude"].values)
    weights = np.cos(lat) * np.sin(np.deg2rad(3.0) / 2)
    weights[[0, -1]] = np.sin(np.deg2rad(3.0) / 4) ** 2

    def area_time_mean(field: np.ndarray) -> np.ndarray:  # (time, level, lat, lon) → (level,)
        return (field.mean(axis=-1) * weights).sum(axis=-1).mean(axis=0) / weights.sum()

    scores = {"crps": crps(forecast, truth), "spread": crps_spread(forecast, truth)}
    scores["variance"] = ensemble_variance(forecast, truth)
    for name in ("z", "t"):
        x = (
            forecast[name].isel(prediction_timedelta=0).transpose("realization", ...).values
        )  # (9, T, L, lat, lon)
        y = truth[name].values
        m = x.shape[0]
        pair_sum = sum(np.abs(x[i] - x[j]) for i in range(m) for j in range(m) if i != j)
        spread = area_time_mean(pair_sum / (m * (m - 1)))
        skill = area_time_mean(np.abs(x - y).mean(axis=0))
        variance = area_time_mean(((x - x.mean(axis=0)) ** 2).sum(axis=0) / (m - 1))
        np.testing.assert_allclose(scores["spread"][name].values.ravel(), spread, rtol=1e-10)
        np.testing.assert_allclose(scores["crps"][name].values.ravel(), skill - spread / 2, rtol=1e-10)
        np.testing.assert_allclose(scores["variance"][name].values.ravel(), variance, rtol=1e-10)
        assert np.all(spread > 0)


def calibrated_ensemble(m: int, seed: int, shift: float = 0.0) -> tuple[xr.Dataset, xr.Dataset]:
    """Truth and members drawn from the same N(μ, 1) at each point, μ varying in space and time."""
    rng = np.random.default_rng(seed)
    inits, lat, lon = (
        pd.date_range("2020-01-01", periods=8, freq="D"),
        np.linspace(-80, 80, 16),
        np.arange(64.0),
    )
    mu = 3.0 * rng.normal(size=(8, 1, 1, 16, 64))
    members = mu + rng.normal(size=(8, 1, m, 16, 64)) + shift
    observed = mu[:, 0, 0] + rng.normal(size=(8, 16, 64))
    return forecast_dataset(members, inits, LEAD0, lat, lon), truth_dataset(observed, inits, lat, lon)


def test_spread_skill_ratio_is_one_for_a_calibrated_ensemble_only_with_the_correction():
    m = 5
    forecast, truth = calibrated_ensemble(m, seed=21)
    corrected = spread_skill_ratio(forecast, truth)["x"].item()
    uncorrected = spread_skill_ratio(forecast, truth, finite_ensemble_correction=False)["x"].item()
    # 8192 points: relative standard error of the ratio about 1/√(2·8192) ≈ 0.8%
    assert corrected == pytest.approx(1.0, abs=0.03)
    assert uncorrected == pytest.approx(np.sqrt(m / (m + 1)), abs=0.03)  # 0.913: biased low
    assert uncorrected < 0.95


def test_rank_histogram_of_a_calibrated_ensemble_is_flat_and_of_a_biased_one_is_not():
    forecast, truth = calibrated_ensemble(7, seed=22)
    counts = rank_histogram(forecast, truth)["x"].values.ravel()
    assert counts.size == 8 and counts.sum() == 8 * 16 * 64
    assert stats.chisquare(counts).pvalue > 0.01
    shifted, truth = calibrated_ensemble(7, seed=22, shift=0.5)
    assert stats.chisquare(rank_histogram(shifted, truth)["x"].values.ravel()).pvalue < 1e-6
    weighted = rank_histogram(forecast, truth, latitude_weighted=True)["x"].values.ravel()
    assert weighted.sum() == pytest.approx(counts.sum())


def test_rank_histogram_breaks_ties_at_random():
    # every member equals the truth: the rank is uniform on 0…M
    values = np.zeros((4000, 4))
    forecast, truth = spread_points(values, np.zeros(4000))
    counts = rank_histogram(forecast, truth, seed=3)["x"].values.ravel()
    assert counts.size == 5 and stats.chisquare(counts).pvalue > 0.01


def test_scores_stay_lazy_on_dask_input_and_equal_the_eager_ones():
    forecast, truth = calibrated_ensemble(4, seed=23)
    lazy_forecast = forecast.chunk({"time": 2, "realization": 2})
    for score in (crps, crps_spread, spread_skill_ratio, rank_histogram):
        lazy = score(lazy_forecast, truth.chunk({"time": 3}))
        assert lazy["x"].chunks is not None, score.__name__
        xr.testing.assert_allclose(lazy.compute(), score(forecast, truth))


def test_forecasts_without_the_ensemble_dim_are_refused_with_a_hint():
    forecast, truth = point_case([0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match=r"rename\(number='realization'\)"):
        crps(forecast.rename(realization="number"), truth)


def test_scores_from_one_alignment_match_the_single_functions():
    forecast, truth = calibrated_ensemble(3, seed=24)
    scores = probabilistic_scores(forecast, truth)
    singles = {
        "crps": crps,
        "crps_skill": crps_skill,
        "crps_spread": crps_spread,
        "ensemble_mean_mse": ensemble_mean_mse,
        "ensemble_mean_rmse": ensemble_mean_rmse,
        "ensemble_variance": ensemble_variance,
        "debiased_ensemble_mean_mse": debiased_ensemble_mean_mse,
        "spread_skill_ratio": spread_skill_ratio,
    }
    assert set(scores) == set(singles)
    for name, function in singles.items():
        xr.testing.assert_allclose(scores[name], function(forecast, truth))
    one_member = probabilistic_scores(forecast.isel(realization=[0]), truth)
    assert "spread_skill_ratio" not in one_member
    xr.testing.assert_allclose(one_member["crps"], one_member["crps_skill"])


@pytest.mark.parametrize("m", [2, 5, 16])
def test_sorted_fair_spread_equals_the_pair_sum_with_ties(m):
    # integer members make ties common; the identity ΣΣ|Xi − Xj| = 2Σ_k (2k − M − 1) X_(k) still holds
    values = np.random.default_rng(m).integers(0, 4, size=(200, m)).astype(np.float64)
    forecast, truth = spread_points(values, np.zeros(200))
    pair_sum = sum(np.abs(values[:, i] - values[:, j]) for i, j in itertools.permutations(range(m), 2))
    expected = (pair_sum / (m * (m - 1))).mean()
    assert crps_spread(forecast, truth)["x"].item() == pytest.approx(expected, rel=1e-12)


def test_cells_where_the_truth_is_nan_are_left_out_of_every_term():
    # 3 × 2 grid, weights 0.75, 1.5, 0.75 by row; the truth is NaN on row 0, so the means run over
    # rows 1 and 2 with weights 1.5 and 0.75 (global weights, not re-derived from a cut grid)
    from evalhelpers import THREE_LATITUDES, TWO_LONGITUDES

    rng = np.random.default_rng(31)
    members = rng.normal(size=(4, 3, 2))  # (member, lat, lon)
    observed = rng.normal(size=(3, 2))
    observed[0] = np.nan
    forecast = forecast_dataset(members[None, None], INIT, LEAD0, THREE_LATITUDES, TWO_LONGITUDES)
    truth = truth_dataset(observed[None], INIT, THREE_LATITUDES, TWO_LONGITUDES)
    pair_sum = sum(np.abs(members[i] - members[j]) for i, j in itertools.permutations(range(4), 2))
    pointwise = np.abs(members - observed).mean(axis=0) - 0.5 * pair_sum / 12  # (lat, lon)
    expected = (1.5 * pointwise[1].mean() + 0.75 * pointwise[2].mean()) / 2.25
    assert crps(forecast, truth)["x"].item() == pytest.approx(expected, rel=1e-12)
    spread = pair_sum / 12
    expected_spread = (1.5 * spread[1].mean() + 0.75 * spread[2].mean()) / 2.25
    assert crps_spread(forecast, truth)["x"].item() == pytest.approx(expected_spread, rel=1e-12)
    assert rank_histogram(forecast, truth)["x"].values.sum() == 4
