"""Image datasets (bundled 8×8 digits, MNIST IDX files, image folders), scaling to and from [−1, 1],
and PNG grids."""

from vecfield.images.datasets import (
    DATASETS,
    ImageDataset,
    from_signed,
    load_digits,
    load_image_dataset,
    load_mnist,
    read_idx,
    to_signed,
)
from vecfield.images.folders import IMAGE_SUFFIXES, load_image_folder
from vecfield.images.grids import grid_array, png_bytes

__all__ = [
    "DATASETS",
    "IMAGE_SUFFIXES",
    "ImageDataset",
    "from_signed",
    "grid_array",
    "load_digits",
    "load_image_dataset",
    "load_image_folder",
    "load_mnist",
    "png_bytes",
    "read_idx",
    "to_signed",
]
