"""Image datasets (bundled 8×8 digits, MNIST IDX files) and scaling to and from [−1, 1]."""

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

__all__ = [
    "DATASETS",
    "ImageDataset",
    "from_signed",
    "load_digits",
    "load_image_dataset",
    "load_mnist",
    "read_idx",
    "to_signed",
]
