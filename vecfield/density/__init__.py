"""The seed's chapter-14 density models and the log-likelihood contract every density model meets.

Gaussian mixture (EM, also on binned counts), VAE (ELBO training, IWAE evaluation), the core's
flow-matching model as a continuous normalizing flow (likelihood by ODE), the energy-based
model (likelihood by AIS), one training
function (``fit``), held-out reports in nats and bits/dim with uniform dequantization, checkpoints.
Flows (``vecfield.flows``) meet the same contract.
"""

from vecfield.density.binned import read_binned_counts
from vecfield.density.checkpoint import load_checkpoint, save_checkpoint
from vecfield.density.continuous_flow import ContinuousFlowDensity, FlowMatchingCNF
from vecfield.density.contract import DensityModel, DirectlyFittable, GradientTrainable
from vecfield.density.energy import EnergyDensity, EnergyMLP
from vecfield.density.evaluation import (
    Dequantization,
    HeldOutReport,
    bits_per_dim,
    held_out_report,
    mean_log_likelihood,
)
from vecfield.density.gmm import GaussianMixture, kmeans_plus_plus
from vecfield.density.training import TrainSettings, fit
from vecfield.density.vae import VAE

__all__ = [
    "VAE",
    "ContinuousFlowDensity",
    "DensityModel",
    "Dequantization",
    "DirectlyFittable",
    "EnergyDensity",
    "EnergyMLP",
    "FlowMatchingCNF",
    "GaussianMixture",
    "GradientTrainable",
    "HeldOutReport",
    "TrainSettings",
    "bits_per_dim",
    "fit",
    "held_out_report",
    "kmeans_plus_plus",
    "load_checkpoint",
    "mean_log_likelihood",
    "read_binned_counts",
    "save_checkpoint",
]
