"""Sample-quality metrics on tensors, for generators judged against data.

``point_clouds``: the energy distance between two sets of samples (the 2-D benchmarks and toys).
``images``: a small CNN classifier and scores in its feature space (Fréchet distance, k-NN
precision/recall, guided class accuracy), bits/dim of dequantized images, and FID with a local
Inception checkpoint.

They are kept apart from ``vecfield.evaluate`` (WeatherBench2's xarray metrics), so that importing
the weather metrics does not load the torch learner.
"""

from vecfield.quality.images import (
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
from vecfield.quality.point_clouds import EnergyDistanceToReference, energy_distance

__all__ = [
    "EnergyDistanceToReference",
    "ImageClassifier",
    "ODEDensity",
    "class_accuracy",
    "classifier_features",
    "energy_distance",
    "feature_frechet_distance",
    "frechet_distance",
    "image_bits_per_dim",
    "inception_frechet_distance",
    "load_classifier",
    "load_feature_extractor",
    "precision_recall",
    "train_classifier",
]
