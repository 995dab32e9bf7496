"""Integer images tiled into one picture and encoded as PNG (for sample grids)."""

import io
import math

import numpy as np
from PIL import Image
from torch import Tensor


def grid_array(images: Tensor, levels: int, columns: int) -> np.ndarray:
    """Integer images (N, C, H, W) in [0, L−1] tiled row-major into one uint8 picture
    (rows·(H+1)+1, columns·(W+1)+1, C) with 1-pixel black borders; levels are stretched to 0–255."""
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    n, c, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    canvas = np.zeros((rows * (h + 1) + 1, columns * (w + 1) + 1, c), dtype=np.uint8)
    pixels = np.round(images.clamp(0, levels - 1).double().numpy() * (255 / (levels - 1))).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + col * (w + 1): 1 + col * (w + 1) + w] = (
            pixels[i].transpose(1, 2, 0))
    return canvas


def png_bytes(picture: np.ndarray, scale: int = 1) -> bytes:
    """A uint8 picture (H, W, 1 | 3) encoded as PNG, each pixel enlarged to scale × scale."""
    if scale > 1:
        picture = picture.repeat(scale, axis=0).repeat(scale, axis=1)
    image = Image.fromarray(picture[:, :, 0] if picture.shape[2] == 1 else picture)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
