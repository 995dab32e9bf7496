"""The shared vector-field learner: tensors only (no xarray, no graphs)."""

from vecfield.core.couplings import (
    Coupling,
    IndependentCoupling,
    MinibatchOTCoupling,
    ZeroCoupling,
    standard_normal,
)
from vecfield.core.field import GuidableVectorField, VectorField
from vecfield.core.likelihood import bits_per_dim, gaussian_log_prob, ode_log_prob
from vecfield.core.model import METHODS, OPTIONS, VectorFieldModel, network_calls
from vecfield.core.objective import (
    DiscreteStepTime,
    EDMWeighting,
    FixedTime,
    LogitNormalTime,
    LogNormalSigmaTime,
    LossOutput,
    Objective,
    UniformTime,
)
from vecfield.core.schedules import (
    CondOTSchedule,
    CosineSchedule,
    DDPMSchedule,
    EDMSchedule,
    GaussianPath,
    PathCoefficients,
    Schedule,
    VPSchedule,
)
from vecfield.core.solvers import (
    SOLVERS,
    Churn,
    check_time_grid,
    solve_diffusion,
    solve_dopri5,
    solve_ode,
    solve_stochastic_heun,
    time_grid,
)
from vecfield.core.targets import TARGETS, convert

__all__ = [
    "METHODS",
    "OPTIONS",
    "SOLVERS",
    "TARGETS",
    "Churn",
    "CondOTSchedule",
    "CosineSchedule",
    "Coupling",
    "DDPMSchedule",
    "DiscreteStepTime",
    "EDMSchedule",
    "EDMWeighting",
    "FixedTime",
    "GaussianPath",
    "GuidableVectorField",
    "IndependentCoupling",
    "LogNormalSigmaTime",
    "LogitNormalTime",
    "LossOutput",
    "MinibatchOTCoupling",
    "Objective",
    "PathCoefficients",
    "Schedule",
    "UniformTime",
    "VPSchedule",
    "VectorField",
    "VectorFieldModel",
    "ZeroCoupling",
    "bits_per_dim",
    "check_time_grid",
    "convert",
    "gaussian_log_prob",
    "network_calls",
    "ode_log_prob",
    "solve_diffusion",
    "solve_dopri5",
    "solve_ode",
    "solve_stochastic_heun",
    "standard_normal",
    "time_grid",
]
