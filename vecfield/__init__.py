"""vecfield: learn a vector field, then integrate it.

Flow matching, diffusion and continuous normalizing flows are one learner with different
Gaussian probability paths; the GraphCast-style forecaster is its degenerate case.
"""

from vecfield.core.model import VectorFieldModel

__version__ = "0.1.0"

__all__ = ["Forecaster", "VectorFieldModel", "__version__"]


def __getattr__(name: str) -> object:
    """``vecfield.Forecaster`` imported on first use (it pulls in xarray, zarr and the graph code)."""
    if name == "Forecaster":
        from vecfield.forecast.forecaster import Forecaster

        return Forecaster
    raise AttributeError(f"module 'vecfield' has no attribute {name!r}")
