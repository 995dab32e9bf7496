"""WeatherBench2-compatible evaluation: metrics, baselines, scorecards and plots, as xarray functions.

Forecasts are in WB2's forecast layout (time = init, prediction_timedelta, [level], latitude,
longitude, [realization]); truth in the canonical layout (time = valid, [level], latitude,
longitude). Every score looks the truth up at valid time = init + lead.

Image-generation metrics (classifier FD, k-NN precision/recall, guided class accuracy, bits/dim,
optional Inception FID) work on tensors and live in ``vecfield.evaluate.images``.
"""

from vecfield.evaluate.align import align_truth, make_latitude_increasing, valid_time
from vecfield.evaluate.baselines import climatology_forecast, persistence_forecast
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
from vecfield.evaluate.images import (
    ImageClassifier,
    ODEDensity,
    class_accuracy,
    classifier_features,
    feature_frechet_distance,
    frechet_distance,
    image_bits_per_dim,
    inception_frechet_distance,
    load_classifier,
    load_feature_extractor,
    precision_recall,
    train_classifier,
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
    "ImageClassifier",
    "ODEDensity",
    "Region",
    "acc",
    "align_truth",
    "bias",
    "class_accuracy",
    "classifier_features",
    "climatology_at",
    "climatology_forecast",
    "compute_climatology",
    "crps",
    "crps_skill",
    "crps_spread",
    "debiased_ensemble_mean_mse",
    "deterministic_scores",
    "ensemble_mean_mse",
    "ensemble_mean_rmse",
    "ensemble_variance",
    "feature_frechet_distance",
    "frechet_distance",
    "image_bits_per_dim",
    "inception_frechet_distance",
    "latitude_weights",
    "load_classifier",
    "load_feature_extractor",
    "mae",
    "make_latitude_increasing",
    "mse",
    "persistence_forecast",
    "precision_recall",
    "probabilistic_scores",
    "rank_histogram",
    "restrict_to_region",
    "rmse",
    "rmse_sqrt_before_time_mean",
    "spatial_mean",
    "spread_skill_ratio",
    "train_classifier",
    "valid_time",
    "wind_vector_rmse",
]
