"""Discrete normalizing flows with exact log-likelihood: NICE, RealNVP, Glow, neural spline flows."""

from vecfield.flows.architectures import NICE, AutoregressiveSplineFlow, Glow, NeuralSplineFlow, RealNVP
from vecfield.flows.autoregressive import MADE, AutoregressiveSpline, MaskedLinear
from vecfield.flows.bijection import Bijection, Chain
from vecfield.flows.coupling import Coupling, ElementwiseScaling, channel_mask, checkerboard_mask
from vecfield.flows.flow import Flow, check_batch
from vecfield.flows.glow_layers import ActNorm, InvertibleLinearLU
from vecfield.flows.reshape import FactorOut, Squeeze, Unsqueeze, check_squeezable
from vecfield.flows.spline import SplineCoupling, rational_quadratic_spline

__all__ = [
    "MADE",
    "NICE",
    "ActNorm",
    "AutoregressiveSpline",
    "AutoregressiveSplineFlow",
    "Bijection",
    "Chain",
    "Coupling",
    "ElementwiseScaling",
    "FactorOut",
    "Flow",
    "Glow",
    "InvertibleLinearLU",
    "MaskedLinear",
    "NeuralSplineFlow",
    "RealNVP",
    "SplineCoupling",
    "Squeeze",
    "Unsqueeze",
    "channel_mask",
    "check_batch",
    "check_squeezable",
    "checkerboard_mask",
    "rational_quadratic_spline",
]
