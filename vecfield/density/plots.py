"""Figures of fitted density models: binned histogram + mixture, 2-D samples + density, image grids.

Each function returns a matplotlib Figure; ``save_figure`` writes it atomically
(``vecfield.files``).
"""

import math
import os

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats
from torch import Tensor

from vecfield.density.contract import DensityModel
from vecfield.density.gmm import GaussianMixture
from vecfield.files import save_figure_atomic


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Save ``fig`` to ``path`` (format from the suffix) atomically and close it."""
    try:
        save_figure_atomic(fig, path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)


def binned_mixture_figure(edges: Tensor, counts: Tensor, mixture: GaussianMixture,
                          xlabel: str = "forehead breadth / body length") -> Figure:
    """Histogram of binned counts as a density, with the fitted 1-D mixture and its components.

    Open-ended first/last bins are drawn one median bin width wide.
    """
    edges_np, counts_np = edges.double().numpy(), counts.double().numpy()
    finite = edges_np[np.isfinite(edges_np)]
    width = float(np.median(np.diff(finite)))
    lo = np.where(np.isfinite(edges_np[:-1]), edges_np[:-1], edges_np[1:] - width)
    hi = np.where(np.isfinite(edges_np[1:]), edges_np[1:], edges_np[:-1] + width)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(lo, counts_np / counts_np.sum() / (hi - lo), width=hi - lo, align="edge", color="0.8",
           edgecolor="0.5", label="data")
    grid = np.linspace(lo[0], hi[-1], 400)
    total = np.zeros_like(grid)
    weights, means = mixture.weights.numpy(), mixture.means[:, 0].numpy()
    sds = np.sqrt(mixture.covariances.reshape(mixture.n_components, -1)[:, 0].numpy())
    for k, (w, m, s) in enumerate(zip(weights, means, sds, strict=True)):
        component = w * stats.norm.pdf(grid, m, s)
        total += component
        ax.plot(grid, component, "--", lw=1, label=f"component {k + 1}: π={w:.3f}, μ={m:.4f}, σ={s:.4f}")
    ax.plot(grid, total, "k", lw=2, label="mixture")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return fig


@torch.no_grad()
def density_2d_figure(model: DensityModel, data: Tensor, extent: float = 4.5, resolution: int = 200,
                      samples: int = 2000, generator: torch.Generator | None = None) -> Figure:
    """Three panels on [−extent, extent]²: data, model samples, model density exp(log p) on a grid."""
    grid = torch.linspace(-extent, extent, resolution, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    dtype = next((p.dtype for p in getattr(model, "parameters", list)()), torch.get_default_dtype())
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1).to(dtype)
    density = torch.exp(torch.cat([model.log_prob(c) for c in points.split(8192)])).reshape(resolution, -1)
    drawn = model.sample(samples, generator=generator)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.5))
    axes[0].scatter(*data[:samples].T.numpy(), s=1, alpha=0.5)
    axes[0].set_title("data")
    axes[1].scatter(*drawn.double().T.numpy(), s=1, alpha=0.5, color="C1")
    axes[1].set_title(f"{type(model).__name__} samples")
    axes[2].imshow(density.double().numpy(), origin="lower", extent=(-extent, extent, -extent, extent),
                   cmap="viridis")
    axes[2].set_title(f"{type(model).__name__} density")
    for ax in axes:
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
    return fig


def image_grid_figure(images: Tensor, title: str = "", columns: int | None = None) -> Figure:
    """Grid of grey images (N, 1, H, W) or colour images (N, 3, H, W) with values in [−1, 1]."""
    n = images.shape[0]
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 0.8), squeeze=False)
    pixels = ((images.double().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()  # (N, H, W, C) in [0, 1]
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(pixels[i, :, :, 0] if pixels.shape[-1] == 1 else pixels[i], cmap="gray", vmin=0, vmax=1)
    if title:
        fig.suptitle(title)
    return fig
