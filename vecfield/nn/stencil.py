"""GridStencil: every grid node's inputs together with those of its lat-lon neighbours.

    stencil(x: (B, H·W, F)) -> (B, H·W, F·(2r + 1)²)

For each node (i, j) of an H × W latitude-major grid the output holds x at (i + a, j + b) for
a, b ∈ {−r … r}, in ``torch.nn.functional.unfold``'s order (feature-major, then a, then b). Along
longitude a global grid wraps around (circular padding); elsewhere (the rows next to the poles, the
edges of a limited-area box) the edge node's value is repeated (replicate padding), so a one-sided
difference is what the edge sees.

Why: GraphCast's grid nodes embed only their own inputs. Neighbouring values reach a node only
through grid → mesh → processor → mesh → grid, which an untrained network passes 10^-1.6 … 10^-4 as
strongly as the node's own path (``benchmarks/gnn_reach.py``); the network then learns local time
extrapolation instead of transport. With the neighbourhood in the embedding, the first layer sees
linear combinations of it, i.e. the centred differences ∂/∂x, ∂/∂y and the Laplacian of every input
to second order, the ingredients of advection (u·∇S) and diffusion. The mesh still carries
everything beyond r cells.
"""

import torch.nn.functional as F
from torch import Tensor, nn


class GridStencil(nn.Module):
    """The (2r + 1) × (2r + 1) neighbourhood of every node of an (H, W) latitude-major grid.

    shape:    (H, W), the grid's (n_lat, n_lon); nodes are numbered i_lat · W + i_lon
    radius:   r ≥ 1 cells
    periodic: longitude wraps around (a global grid); False for a limited-area box
    """

    def __init__(self, shape: tuple[int, int], radius: int, periodic: bool) -> None:
        super().__init__()
        height, width = shape
        if radius < 1:
            raise ValueError(f"a stencil's radius must be ≥ 1 cell, got {radius}")
        if height < 1 or width < 1:
            raise ValueError(f"grid shape must be positive, got {shape}")
        if periodic and width <= radius:
            raise ValueError(f"a periodic stencil of radius {radius} needs more than {radius} longitudes, "
                             f"got {width}")
        self.shape, self.radius, self.periodic = (height, width), radius, periodic

    @property
    def size(self) -> int:
        """Nodes in the neighbourhood, (2r + 1)²: the factor by which the features grow."""
        return (2 * self.radius + 1) ** 2

    def padded(self, x: Tensor) -> Tensor:
        """x (B, H·W, F) → the padded image (B, F, H + 2r, W + 2r)."""
        height, width = self.shape
        if x.ndim != 3 or x.shape[1] != height * width:
            raise ValueError(f"expected x of shape (batch, {height * width}, features) on the "
                             f"{height} × {width} grid, got {tuple(x.shape)}")
        r = self.radius
        image = x.transpose(1, 2).reshape(x.shape[0], x.shape[2], height, width)
        image = F.pad(image, (r, r, 0, 0), mode="circular" if self.periodic else "replicate")
        return F.pad(image, (0, 0, r, r), mode="replicate")

    def forward(self, x: Tensor) -> Tensor:
        """x (B, H·W, F) → (B, H·W, F·(2r + 1)²)."""
        return F.unfold(self.padded(x), 2 * self.radius + 1).transpose(1, 2)

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """W · stencil(x) + b without forming stencil(x): x (B, H·W, F), weight (out, F·(2r + 1)²) in
        :meth:`forward`'s feature order → (B, H·W, out). It is the convolution with kernel
        weight.reshape(out, F, 2r + 1, 2r + 1) of the padded image, about 2.4× faster on a CPU than
        the unfold and the matrix product (forward and backward); ``tests/nn/test_stencil.py`` checks
        that they agree."""
        k = 2 * self.radius + 1
        kernel = weight.reshape(weight.shape[0], x.shape[2], k, k)
        return F.conv2d(self.padded(x), kernel, bias).flatten(2).transpose(1, 2)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, radius={self.radius}, periodic={self.periodic}"
