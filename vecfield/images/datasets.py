"""Image datasets as integer grey levels (N, C, H, W), and the scaling to and from [−1, 1].

- ``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 17 grey levels 0–16,
  no download), the default;
- ``mnist``: MNIST read from IDX files (``*-idx3-ubyte`` or ``.gz``) at a given path, 28×28,
  256 levels.

Models see floats in [−1, 1]: ``to_signed`` maps level k to 2k/(L−1) − 1 and ``from_signed`` is
its inverse (rounding to the nearest level), used to save generated images. Density models use
``vecfield.density.Dequantization`` on the integer levels instead (uniform noise inside each
level's cell).
"""

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

#: IDX type codes (third magic byte) → numpy big-endian dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class ImageDataset:
    """Integer images (N, C, H, W) with values in [0, levels − 1], labels (N,) (−1 when unknown)."""

    images: Tensor
    labels: Tensor
    levels: int
    name: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},), "
                             f"got {tuple(self.labels.shape)}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.images.shape[1:]
        return (int(c), int(h), int(w))

    def signed(self) -> Tensor:
        """The images as floats in [−1, 1] (N, C, H, W)."""
        return to_signed(self.images, self.levels)


def to_signed(images: Tensor, levels: int) -> Tensor:
    """Integer levels k ∈ [0, L−1] -> floats 2k/(L−1) − 1 ∈ [−1, 1] (same shape, default dtype)."""
    return images.to(torch.get_default_dtype()) * (2.0 / (levels - 1)) - 1.0


def from_signed(x: Tensor, levels: int) -> Tensor:
    """Inverse of ``to_signed``: floats in [−1, 1] -> nearest integer level (int64), clamped to [0, L−1]."""
    return torch.round((x.clamp(-1, 1) + 1) * ((levels - 1) / 2)).to(torch.int64)


def load_digits() -> ImageDataset:
    """scikit-learn's bundled 8×8 digits: images (1797, 1, 8, 8) with 17 levels, labels 0–9."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.int64)).unsqueeze(1)
    return ImageDataset(images, torch.from_numpy(bunch.target.astype(np.int64)), levels=17, name="digits")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format; gzip-compressed when the name ends in .gz) into an array."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"IDX file {path} does not exist; give the path of e.g. t10k-images-idx3-ubyte.gz")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def load_mnist(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str] | None = None,
               limit: int | None = None) -> ImageDataset:
    """MNIST from IDX files: images (N, 1, 28, 28) with 256 levels; labels (N,) or −1 without a file."""
    array = read_idx(images_path)
    if array.ndim != 3:
        raise ValueError(f"{images_path} holds an array of shape {array.shape}, not images (N, H, W)")
    images = torch.from_numpy(array.astype(np.int64)).unsqueeze(1)
    if labels_path is not None:
        labels = torch.from_numpy(read_idx(labels_path).astype(np.int64))
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{labels_path} has {labels.shape[0]} labels for {images.shape[0]} images")
    else:
        labels = torch.full((images.shape[0],), -1, dtype=torch.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return ImageDataset(images, labels, levels=256, name="mnist")


DATASETS = ("digits", "mnist")


def load_image_dataset(name: str, path: str | os.PathLike[str] | None = None,
                       labels_path: str | os.PathLike[str] | None = None,
                       limit: int | None = None) -> ImageDataset:
    """Load a dataset by name: "digits" (bundled, no path) or "mnist" (``path`` to the IDX images)."""
    if name == "digits":
        dataset = load_digits()
        if limit is not None:
            dataset = ImageDataset(dataset.images[:limit], dataset.labels[:limit], dataset.levels,
                                   dataset.name)
        return dataset
    if name == "mnist":
        if path is None:
            raise ValueError("the mnist dataset needs `path`: the IDX images file, e.g. "
                             "../shared/data/mnist/t10k-images-idx3-ubyte.gz")
        return load_mnist(path, labels_path, limit)
    raise ValueError(f"unknown image dataset {name!r}; choose one of {list(DATASETS)}")
