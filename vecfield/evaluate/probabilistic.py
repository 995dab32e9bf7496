"""Ensemble scores with WeatherBench2's and GenCast's definitions; the ensemble dim is ``realization``.

Notation: members X_1…X_M at each (init, lead, [level], lat, lon), truth Y at the valid time,
X̄ = mean_m X_m, ⟨·⟩ the area-weighted spatial mean, mean_t the mean over init times. Every
function returns a Dataset with dims (prediction_timedelta, [level]) per variable (except the rank
histogram) and stays lazy on dask input.

    skill  = mean_t ⟨ mean_m |X_m − Y| ⟩                                                (1)
    spread = mean_t ⟨ ΣΣ_{i≠j} |X_i − X_j| / (M(M−1)) ⟩        (unbiased "fair" E|X − X'|)  (2)
    CRPS   = skill − ½ · spread                                                          (3)

(2) is computed in O(M log M) from the sorted members X_(1) ≤ … ≤ X_(M) through the identity
ΣΣ_{i≠j}|X_i − X_j| = 2 Σ_k (2k − M − 1) X_(k), i.e. spread = 2/(M−1) · mean_k[(2k − M − 1) X_(k)]
(the probability-weighted-moment estimator, Zamo & Naveau 2018, as in WeatherBench2). With M = 1
the spread is 0 and CRPS = MAE. Because (2) is unbiased for E|X − X'| at every M, so is (3) for
the CRPS of the distribution the members are drawn from.

    ensemble variance    s² = mean_t ⟨ Σ_m (X_m − X̄)² / (M − 1) ⟩                       (4)
    ensemble-mean MSE       = mean_t ⟨ (X̄ − Y)² ⟩,   RMSE = sqrt(MSE)                   (5)
    debiased ens-mean MSE   = mean_t ⟨ (X̄ − Y)² − s²_point / M ⟩                        (6)
    spread–skill ratio SSR  = sqrt((M + 1)/M) · sqrt(s²) / sqrt(ens-mean MSE)             (7)

(7) is GenCast's (Price et al. 2024, App. A, eq. A.9): spread and skill are each the square
root of the time-mean of the area-weighted mean, and the factor sqrt((M+1)/M) corrects for the
finite ensemble: if Y and the X_m are exchangeable, E[(X̄ − Y)²] = σ²(M+1)/M while E[s²] = σ², so
the corrected ratio is 1 and the uncorrected one sqrt(M/(M+1)).

Cells where the truth is NaN (missing data, or outside a region set to NaN) are left out of every
term, so spread and skill always average over the same cells.
"""

from collections.abc import Callable
from typing import Protocol

import dask.array
import numpy as np
import xarray as xr

from vecfield.evaluate.align import ENSEMBLE_DIM, INIT_DIM, MissingPolicy, align_truth
from vecfield.evaluate.weights import latitude_weights, spatial_mean, sqrt

RANK_DIM = "rank"


def _ensemble_pair(
    forecast: xr.Dataset, truth: xr.Dataset, ensemble_dim: str, missing: MissingPolicy
) -> tuple[xr.Dataset, xr.Dataset]:
    if not isinstance(forecast, xr.Dataset) or ensemble_dim not in forecast.dims:
        dims = tuple(forecast.dims) if isinstance(forecast, xr.Dataset) else type(forecast).__name__
        raise ValueError(
            f"ensemble forecast must have the ensemble dim {ensemble_dim!r} (got {dims}); "
            "rename it (IFS ENS files use 'number': forecast.rename(number='realization')) "
            "or pass ensemble_dim="
        )
    for name, variable in forecast.data_vars.items():
        if ensemble_dim not in variable.dims:
            raise ValueError(
                f"variable {name!r} lacks the ensemble dim {ensemble_dim!r}; every variable needs members"
            )
    return align_truth(forecast, truth, missing=missing)


def _ensemble_size(forecast: xr.Dataset, ensemble_dim: str) -> int:
    return int(forecast.sizes[ensemble_dim])


def _single_chunk(data: xr.Dataset, dim: str) -> xr.Dataset:
    return data.chunk({dim: -1}) if data.chunks else data


def _fair_spread_sorted(members: np.ndarray) -> np.ndarray:
    """E|X − X'| estimated by ΣΣ_{i≠j}|X_i − X_j|/(M(M−1)) from the sorted members; members (..., M)."""
    m = members.shape[-1]
    if m < 2:
        return np.zeros(members.shape[:-1], dtype=members.dtype)
    ordered = np.sort(members, axis=-1)
    coefficient = 2.0 * np.arange(1, m + 1) - m - 1  # (2k − M − 1), k = 1…M
    return 2.0 / (m * (m - 1)) * (ordered * coefficient).sum(axis=-1)


def pointwise_fair_spread(forecast: xr.Dataset, ensemble_dim: str = ENSEMBLE_DIM) -> xr.Dataset:
    """Eq. (2) before the spatial and time means: the unbiased E|X − X'| at every point, O(M log M).

    forecast: any dims including ``ensemble_dim``, which is reduced.
    """
    return xr.apply_ufunc(
        _fair_spread_sorted,
        _single_chunk(forecast, ensemble_dim),
        input_core_dims=[[ensemble_dim]],
        dask="parallelized",
        output_dtypes=[float],
    )


class EnsembleScore(Protocol):
    """``score(forecast, truth, ensemble_dim="realization", missing="raise") -> Dataset`` with dims
    (prediction_timedelta, [level]); ``missing`` as in :func:`vecfield.evaluate.align.align_truth`."""

    def __call__(self, forecast: xr.Dataset, truth: xr.Dataset, ensemble_dim: str = ENSEMBLE_DIM,
                 missing: MissingPolicy = "raise") -> xr.Dataset: ...


PerInit = Callable[[xr.Dataset, xr.Dataset, str], xr.Dataset]


def _ensemble_score(name: str, per_init: PerInit, doc: str, min_members: int = 1) -> EnsembleScore:
    """The public score ``name``: align members and truth, then mean_t of ``per_init``."""

    def score(forecast: xr.Dataset, truth: xr.Dataset, ensemble_dim: str = ENSEMBLE_DIM,
              missing: MissingPolicy = "raise") -> xr.Dataset:
        members, observed = _ensemble_pair(forecast, truth, ensemble_dim, missing)
        _require_members(members, ensemble_dim, min_members, name)
        return per_init(members, observed, ensemble_dim).mean(INIT_DIM)

    score.__name__ = score.__qualname__ = name
    score.__doc__ = doc
    return score


def _skill_per_init(members: xr.Dataset, observed: xr.Dataset, ensemble_dim: str) -> xr.Dataset:
    return spatial_mean(abs(members - observed).mean(ensemble_dim))


def _spread_per_init(members: xr.Dataset, observed: xr.Dataset, ensemble_dim: str) -> xr.Dataset:
    # only where the truth exists, so that spread, skill and CRPS average over the same cells
    return spatial_mean(pointwise_fair_spread(members, ensemble_dim).where(observed.notnull()))


def _crps_per_init(members: xr.Dataset, observed: xr.Dataset, ensemble_dim: str) -> xr.Dataset:
    skill = _skill_per_init(members, observed, ensemble_dim)
    return skill - 0.5 * _spread_per_init(members, observed, ensemble_dim)


def _ensemble_variance_per_init(members: xr.Dataset, observed: xr.Dataset, ensemble_dim: str) -> xr.Dataset:
    return spatial_mean(members.var(ensemble_dim, ddof=1).where(observed.notnull()))


def _ensemble_mean_mse_per_init(members: xr.Dataset, observed: xr.Dataset, ensemble_dim: str) -> xr.Dataset:
    return spatial_mean((members.mean(ensemble_dim) - observed) ** 2)


def _debiased_mse_per_init(members: xr.Dataset, observed: xr.Dataset, ensemble_dim: str) -> xr.Dataset:
    m = _ensemble_size(members, ensemble_dim)
    mse = _ensemble_mean_mse_per_init(members, observed, ensemble_dim)
    return mse - _ensemble_variance_per_init(members, observed, ensemble_dim) / m


crps_skill = _ensemble_score("crps_skill", _skill_per_init, "Eq. (1): mean_t ⟨mean_m |X_m − Y|⟩.")
crps_spread = _ensemble_score(
    "crps_spread", _spread_per_init,
    "Eq. (2): mean_t ⟨fair E|X − X'|⟩ (the full E|X − X'|; CRPS subtracts half of it); ``truth`` "
    "selects the same (init, lead) pairs and cells (where it is not NaN) as the other scores.")
crps = _ensemble_score("crps", _crps_per_init,
                       "Continuous ranked probability score with the fair spread, eq. (3): skill − ½·spread.")
ensemble_variance = _ensemble_score("ensemble_variance", _ensemble_variance_per_init,
                                    "Eq. (4): mean_t ⟨unbiased (ddof=1) variance over members⟩; needs M ≥ 2.",
                                    min_members=2)
ensemble_mean_mse = _ensemble_score(
    "ensemble_mean_mse", _ensemble_mean_mse_per_init,
    "Eq. (5): mean_t ⟨(X̄ − Y)²⟩ (biased high by the sampling variance of X̄, σ²/M).")
debiased_ensemble_mean_mse = _ensemble_score(
    "debiased_ensemble_mean_mse", _debiased_mse_per_init,
    "Eq. (6): mean_t ⟨(X̄ − Y)² − s²/M⟩, an estimate of the infinite-ensemble mean's MSE; M ≥ 2.",
    min_members=2)


def ensemble_mean_rmse(forecast: xr.Dataset, truth: xr.Dataset, ensemble_dim: str = ENSEMBLE_DIM,
                       missing: MissingPolicy = "raise") -> xr.Dataset:
    """Eq. (5): sqrt(mean_t ⟨(X̄ − Y)²⟩), the WB2 RMSE of the ensemble mean."""
    return sqrt(ensemble_mean_mse(forecast, truth, ensemble_dim, missing))


def spread_skill_ratio(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    finite_ensemble_correction: bool = True,
    ensemble_dim: str = ENSEMBLE_DIM,
    missing: MissingPolicy = "raise",
) -> xr.Dataset:
    """Eq. (7): sqrt((M+1)/M) · sqrt(mean_t⟨s²⟩) / sqrt(mean_t⟨(X̄ − Y)²⟩); 1 for a calibrated ensemble.

    finite_ensemble_correction=False drops the factor sqrt((M+1)/M) (WB2's plotted ratio), which
    reads sqrt(M/(M+1)) < 1 for a calibrated M-member ensemble.
    """
    members, observed = _ensemble_pair(forecast, truth, ensemble_dim, missing)
    m = _require_members(members, ensemble_dim, 2, "spread_skill_ratio")
    variance = _ensemble_variance_per_init(members, observed, ensemble_dim).mean(INIT_DIM)
    mean_mse = _ensemble_mean_mse_per_init(members, observed, ensemble_dim).mean(INIT_DIM)
    return _spread_skill(variance, mean_mse, m, finite_ensemble_correction)


def _spread_skill(variance: xr.Dataset, mean_mse: xr.Dataset, m: int, corrected: bool) -> xr.Dataset:
    factor = np.sqrt((m + 1) / m) if corrected else 1.0
    return factor * sqrt(variance) / sqrt(mean_mse)


def probabilistic_scores(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    ensemble_dim: str = ENSEMBLE_DIM,
    missing: MissingPolicy = "raise",
) -> dict[str, xr.Dataset]:
    """All ensemble scores from one alignment, each (prediction_timedelta, [level]).

    Keys: "crps", "crps_skill", "crps_spread", "ensemble_mean_mse", "ensemble_mean_rmse", and for
    M ≥ 2 also "ensemble_variance", "debiased_ensemble_mean_mse" and "spread_skill_ratio"
    (finite-ensemble corrected, eq. 7).
    """
    members, observed = _ensemble_pair(forecast, truth, ensemble_dim, missing)
    m = _ensemble_size(members, ensemble_dim)
    skill = _skill_per_init(members, observed, ensemble_dim).mean(INIT_DIM)
    spread = _spread_per_init(members, observed, ensemble_dim).mean(INIT_DIM)
    mean_mse = _ensemble_mean_mse_per_init(members, observed, ensemble_dim).mean(INIT_DIM)
    scores = {
        "crps": skill - 0.5 * spread,
        "crps_skill": skill,
        "crps_spread": spread,
        "ensemble_mean_mse": mean_mse,
        "ensemble_mean_rmse": sqrt(mean_mse),
    }
    if m >= 2:
        variance = _ensemble_variance_per_init(members, observed, ensemble_dim).mean(INIT_DIM)
        scores["ensemble_variance"] = variance
        scores["debiased_ensemble_mean_mse"] = mean_mse - variance / m
        scores["spread_skill_ratio"] = _spread_skill(variance, mean_mse, m, corrected=True)
    return scores


def rank_histogram(
    forecast: xr.Dataset,
    truth: xr.Dataset,
    seed: int = 0,
    latitude_weighted: bool = False,
    ensemble_dim: str = ENSEMBLE_DIM,
    missing: MissingPolicy = "raise",
) -> xr.Dataset:
    """Rank (Talagrand) histogram: how often the truth falls in each of the M + 1 member intervals.

    rank = #{m : X_m < Y} + U, with U uniform on {0…#{m : X_m = Y}} (ties broken at random with
    ``seed``, which matters for fields with many equal values such as zero precipitation; the
    draws depend on the dask chunking, so tied ranks may differ between chunkings).
    Returns counts with dims (rank = 0…M, prediction_timedelta, [level]), summed over init times,
    latitude and longitude. latitude_weighted=True weights each point by its mean-1 latitude weight
    (so totals are unchanged); the default counts points, which keeps chi-square tests exact.
    A calibrated ensemble has a flat histogram.
    """
    members, observed = _ensemble_pair(forecast, truth, ensemble_dim, missing)
    m = _ensemble_size(members, ensemble_dim)
    below = (members < observed).sum(ensemble_dim)
    ties = (members == observed).sum(ensemble_dim)
    ranks = (below + np.floor(_uniform_like(below, seed) * (ties + 1))).where(observed.notnull())
    weights = latitude_weights(observed["latitude"]) if latitude_weighted else 1.0
    counts = [(ranks == r) * weights for r in range(m + 1)]
    histogram = xr.concat(counts, dim=xr.DataArray(np.arange(m + 1), dims=RANK_DIM, name=RANK_DIM))
    return histogram.sum([INIT_DIM, "latitude", "longitude"])


def _uniform_like(data: xr.Dataset, seed: int) -> xr.Dataset:
    """Independent U[0, 1) draws with the shape (and dask chunks) of each variable of ``data``."""
    rng_numpy = np.random.default_rng(seed)
    rng_dask = dask.array.random.default_rng(seed)
    draws = {}
    for name, variable in data.data_vars.items():
        if variable.chunks:
            values = rng_dask.random(variable.shape, chunks=variable.chunks)
        else:
            values = rng_numpy.random(variable.shape)
        draws[name] = variable.copy(data=values)
    return xr.Dataset(draws)


def _require_members(members: xr.Dataset, ensemble_dim: str, at_least: int, score: str) -> int:
    m = _ensemble_size(members, ensemble_dim)
    if m < at_least:
        raise ValueError(f"{score} needs at least {at_least} members along {ensemble_dim!r}, got {m}")
    return m
