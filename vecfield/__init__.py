"""vecfield: learn a vector field, then integrate it.

Flow matching, diffusion and continuous normalizing flows are one learner with different
Gaussian probability paths; the GraphCast-style forecaster is its degenerate case.
"""

from vecfield._version import __version__

__all__ = ["Forecaster", "VectorFieldModel", "__version__"]


def __getattr__(name: str) -> object:
    """``vecfield.VectorFieldModel`` and ``vecfield.Forecaster`` imported on first use: importing the
    package itself loads no torch (so ``vecfield.cli`` can set OpenMP's wait policy before
    torch loads, and ``import vecfield.evaluate`` stays free of torch), and the learner does not
    load xarray, zarr and the graph code."""
    if name == "VectorFieldModel":
        from vecfield.core.model import VectorFieldModel

        return VectorFieldModel
    if name == "Forecaster":
        from vecfield.forecast.forecaster import Forecaster

        return Forecaster
    raise AttributeError(f"module 'vecfield' has no attribute {name!r}")
