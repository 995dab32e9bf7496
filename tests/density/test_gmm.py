"""Gaussian mixture by EM: recovery of known mixtures, log_prob vs scipy, Pearson's crabs (binned)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from vecfield.density import (
    GaussianMixture,
    kmeans_plus_plus,
    load_checkpoint,
    read_binned_counts,
    save_checkpoint,
)


def two_cluster_data(n: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, 2, generator=generator, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.0], [0.8, 0.5]], dtype=torch.float64) + torch.tensor([-4.0, 0.0], dtype=torch.float64)
    b = torch.randn(n // 2, 2, generator=generator, dtype=torch.float64) * 0.5 + torch.tensor(
        [3.0, 2.0], dtype=torch.float64)
    return torch.cat([a, b])


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_recovers_a_known_mixture_and_matches_scipy(covariance_type: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = two_cluster_data(2000, g)
    gmm = GaussianMixture(2, 2, covariance_type=covariance_type, n_restarts=2, max_iter=100)
    gmm.fit(x, generator=g)
    order = gmm.means[:, 0].argsort()
    f64 = dict(dtype=torch.float64)
    torch.testing.assert_close(gmm.weights[order], torch.tensor([2 / 3, 1 / 3], **f64), atol=0.02, rtol=0)
    torch.testing.assert_close(gmm.means[order], torch.tensor([[-4.0, 0.0], [3.0, 2.0]], dtype=torch.float64),
                               atol=0.1, rtol=0)
    covs = gmm.covariances if covariance_type == "full" else torch.diag_embed(gmm.covariances)
    expected = sum(float(w) * stats.multivariate_normal(m.numpy(), c.numpy()).pdf(x[:20].numpy())
                   for w, m, c in zip(gmm.weights, gmm.means, covs, strict=True))
    torch.testing.assert_close(gmm.log_prob(x[:20]), torch.from_numpy(np.log(expected)), atol=1e-10, rtol=0)
    if covariance_type == "full":  # the first cluster's correlation is found
        torch.testing.assert_close(covs[order][0], torch.tensor([[1.64, 0.4], [0.4, 0.25]], **f64),
                                   atol=0.1, rtol=0)


def test_full_covariance_beats_diagonal_on_correlated_data_and_samples_match() -> None:
    g = torch.Generator().manual_seed(2)
    x = two_cluster_data(1500, g)
    full = GaussianMixture(2, 2, "full", n_restarts=2).fit(x, generator=g)
    diag = GaussianMixture(2, 2, "diag", n_restarts=2).fit(x, generator=g)
    assert full.log_prob(x).mean() > diag.log_prob(x).mean()
    draws = full.sample(20_000, generator=g)
    torch.testing.assert_close(draws.mean(0), (full.weights[:, None] * full.means).sum(0), atol=0.06, rtol=0)


def test_kmeans_plus_plus_picks_distinct_data_points() -> None:
    x = torch.tensor([[0.0], [0.1], [10.0], [10.1], [20.0]], dtype=torch.float64)
    centres = kmeans_plus_plus(x, 3, torch.Generator().manual_seed(0))
    assert sorted(int(c // 10) for c in centres[:, 0]) == [0, 1, 2]


def test_crabs_binned_fit_reproduces_the_reference(shared_data: Path) -> None:
    edges, counts = read_binned_counts(shared_data / "pearson_crabs.csv")
    assert int(counts.sum()) == 1000
    g = torch.Generator().manual_seed(0)
    two = GaussianMixture(1, 2, n_restarts=2, max_iter=100).fit_binned(edges, counts, generator=g)
    one = GaussianMixture(1, 1, n_restarts=1, max_iter=100).fit_binned(edges, counts, generator=g)
    order = two.means[:, 0].argsort()
    means, sds = two.means[order, 0], two.covariances.reshape(2)[order].sqrt()
    assert (means - torch.tensor([0.6326, 0.6547], dtype=torch.float64)).abs().max() <= 1e-3
    assert (two.weights[order] - torch.tensor([0.453, 0.547], dtype=torch.float64)).abs().max() <= 2e-3
    assert (sds - torch.tensor([0.0186, 0.0125], dtype=torch.float64)).abs().max() <= 2e-4
    log_l2, log_l1 = two.binned_log_likelihood(edges, counts), one.binned_log_likelihood(edges, counts)
    assert abs(log_l2 - (-2952.70)) <= 0.01 and abs(log_l1 - (-2979.06)) <= 0.01
    # likelihood-ratio test of 1 vs 2 components: 3 extra parameters, chi² 99.9 % point ≈ 16.3
    statistic = 2 * (log_l2 - log_l1)
    assert statistic > stats.chi2.ppf(0.999, df=3)
    assert abs(statistic - 52.7) < 0.1


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="3 components to 2 distinct"):
        GaussianMixture(1, 3).fit(torch.tensor([[0.0], [1.0], [1.0], [0.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        GaussianMixture(1, 1).fit(torch.tensor([[0.0], [math.inf]]))
    with pytest.raises(ValueError, match="occupied bin"):
        GaussianMixture(1, 3).fit_binned(torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([5.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="choose one of"):
        GaussianMixture(1, 1, covariance_type="spherical")  # type: ignore[arg-type]


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    x = two_cluster_data(300, torch.Generator().manual_seed(3))
    gmm = GaussianMixture(2, 2, "diag", n_restarts=1).fit(x)
    save_checkpoint(gmm, tmp_path / "gmm.pt")
    loaded = load_checkpoint(tmp_path / "gmm.pt", GaussianMixture)
    assert torch.equal(loaded.log_prob(x), gmm.log_prob(x)) and bool(loaded.fitted)
