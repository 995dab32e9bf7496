"""vecfield: learn a vector field, then integrate it.

Flow matching, diffusion and continuous normalizing flows are one learner with different
Gaussian probability paths; the GraphCast-style forecaster is its degenerate case.
"""

__version__ = "0.1.0"

__all__ = ["Forecaster", "VectorFieldModel", "__version__"]


def __getattr__(name: str) -> object:
    """``vecfield.Forecaster`` and ``vecfield.VectorFieldModel`` imported on first use: importing the
    package itself loads no torch, so ``vecfield.cli`` can set OpenMP's wait policy before torch loads."""
    if name == "Forecaster":
        from vecfield.forecast.forecaster import Forecaster

        return Forecaster
    if name == "VectorFieldModel":
        from vecfield.core.model import VectorFieldModel

        return VectorFieldModel
    raise AttributeError(f"module 'vecfield' has no attribute {name!r}")
