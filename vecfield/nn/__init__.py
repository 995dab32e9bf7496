"""Backbones implementing the vector-field call ``(x_t, t, cond) -> Tensor``."""

from vecfield.nn.cnn import ConvNet
from vecfield.nn.embeddings import FourierFeatures, SinusoidalEmbedding
from vecfield.nn.gnn import GridMeshGNN
from vecfield.nn.group_norm_silu import GroupNormSiLU
from vecfield.nn.message_passing import InteractionNetwork, SplitMLP
from vecfield.nn.mlp import MLP
from vecfield.nn.stencil import GridStencil
from vecfield.nn.unet import UNet

__all__ = ["MLP", "ConvNet", "FourierFeatures", "GridMeshGNN", "GridStencil", "GroupNormSiLU",
           "InteractionNetwork", "SinusoidalEmbedding", "SplitMLP", "UNet"]
