"""vecfield: learn a vector field, then integrate it.

Flow matching, diffusion and continuous normalizing flows are one learner with different
Gaussian probability paths; the GraphCast-style forecaster is its degenerate case.
"""

from vecfield.core.model import VectorFieldModel

__version__ = "0.1.0"

__all__ = ["VectorFieldModel", "__version__"]
