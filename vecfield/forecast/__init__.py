"""The GraphCast-style forecaster as the degenerate case of the vector-field learner.

Autoregressive(NormalizedResidual(OneStep(field))): ``step`` (one step on VectorFieldModel),
``normalization`` (inputs and residuals), ``rollout`` (the one autoregressive loop, shared by
training and inference), ``task`` (the training task for vecfield.train), ``build`` (assembly and
checkpoint metadata), ``forecaster`` (``Forecaster.load(path).rollout(initial, steps)``).
"""

from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.forecaster import Forecaster
from vecfield.forecast.normalization import Normalization
from vecfield.forecast.rollout import StepResult, autoregressive
from vecfield.forecast.step import OneStepForecaster
from vecfield.forecast.task import ForecastTask
from vecfield.forecast.weights import level_weights, loss_weights

__all__ = [
    "ForecastTask",
    "Forecaster",
    "ForecasterSpec",
    "Normalization",
    "OneStepForecaster",
    "StepResult",
    "autoregressive",
    "level_weights",
    "loss_weights",
]
