"""WeatherBench2-compatible evaluation: metrics, baselines, scorecards and plots, as xarray functions.

Forecasts are in WB2's forecast layout (time = init, prediction_timedelta, [level], latitude,
longitude, [realization]); truth in the canonical layout (time = valid, [level], latitude,
longitude). Every score looks the truth up at valid time = init + lead.

Sample-quality metrics for generators (classifier FD, k-NN precision/recall, guided class accuracy,
bits/dim, optional Inception FID, energy distance) work on tensors and live in ``vecfield.quality``;
importing this package does not load torch.
"""

from vecfield.evaluate.align import align_truth, make_latitude_increasing, valid_time
from vecfield.evaluate.baselines import (
    anomaly_persistence_coefficients,
    best_baseline,
    climatology_forecast,
    damped_anomaly_persistence_forecast,
    persistence_forecast,
    simple_baselines,
)
from vecfield.evaluate.climatology import climatology_at, compute_climatology
from vecfield.evaluate.deterministic import (
    acc,
    bias,
    deterministic_scores,
    mae,
    mse,
    rmse,
    rmse_sqrt_before_time_mean,
    wind_vector_rmse,
)
from vecfield.evaluate.probabilistic import (
    crps,
    crps_skill,
    crps_spread,
    debiased_ensemble_mean_mse,
    ensemble_mean_mse,
    ensemble_mean_rmse,
    ensemble_variance,
    probabilistic_scores,
    rank_histogram,
    spread_skill_ratio,
)
from vecfield.evaluate.regions import REGIONS, Region, restrict_to_region
from vecfield.evaluate.weights import latitude_weights, spatial_mean

__all__ = [
    "REGIONS",
    "Region",
    "acc",
    "align_truth",
    "anomaly_persistence_coefficients",
    "best_baseline",
    "bias",
    "climatology_at",
    "climatology_forecast",
    "compute_climatology",
    "crps",
    "crps_skill",
    "crps_spread",
    "damped_anomaly_persistence_forecast",
    "debiased_ensemble_mean_mse",
    "deterministic_scores",
    "ensemble_mean_mse",
    "ensemble_mean_rmse",
    "ensemble_variance",
    "latitude_weights",
    "mae",
    "make_latitude_increasing",
    "mse",
    "persistence_forecast",
    "probabilistic_scores",
    "rank_histogram",
    "restrict_to_region",
    "rmse",
    "rmse_sqrt_before_time_mean",
    "simple_baselines",
    "spatial_mean",
    "spread_skill_ratio",
    "valid_time",
    "wind_vector_rmse",
]
