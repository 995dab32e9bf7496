"""The shared vector-field learner: tensors only (no xarray, no graphs)."""

from vecfield.core.field import GuidableVectorField, VectorField

__all__ = ["GuidableVectorField", "VectorField"]
