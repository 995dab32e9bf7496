"""Backbones implementing the vector-field call ``(x_t, t, cond) -> Tensor``."""

from vecfield.nn.cnn import ConvNet
from vecfield.nn.embeddings import SinusoidalEmbedding
from vecfield.nn.mlp import MLP

__all__ = ["MLP", "ConvNet", "SinusoidalEmbedding"]
