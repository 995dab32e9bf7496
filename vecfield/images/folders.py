"""Folders of PNG/JPEG images as an :class:`ImageDataset`.

Layout of a folder (like torchvision's ImageFolder): either one sub-folder per class

    root/cat/001.png, root/cat/002.jpg, root/dog/a.png …   → labels 0 (cat), 1 (dog) by sorted name

or the images directly under ``root`` (labels −1, unknown). Every image is converted to grey
("L") or RGB, resized to (H, W) with Pillow's antialiasing bicubic filter and kept as 8-bit
levels (256 levels); ``ImageDataset.signed()`` scales them to [−1, 1] and ``from_signed``
inverts that for saving.
"""

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vecfield.images.datasets import ImageDataset

#: file suffixes read as images (compared in lower case)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image as uint8 (C, H, W)."""
    with Image.open(path) as image:
        converted = image.convert("L" if channels == 1 else "RGB")
        if converted.size != (size[1], size[0]):  # Pillow sizes are (W, H)
            converted = converted.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        array = np.asarray(converted, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_image_folder(root: str | os.PathLike[str], size: tuple[int, int], channels: int = 1,
                      limit: int | None = None) -> tuple[ImageDataset, list[str]]:
    """Images under ``root`` resized to ``size`` = (H, W): an ImageDataset (N, C, H, W) with 256
    levels, and the class names (sub-folder names, sorted; empty when the images sit in ``root``)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist; give a folder of PNG/JPEG files "
                         "(or one sub-folder of them per class)")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive sides, got {size}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and _image_files(p))
    if classes:
        files = [(path, label) for label, name in enumerate(classes) for path in _image_files(root / name)]
    else:
        files = [(path, -1) for path in _image_files(root)]
    if not files:
        raise ValueError(f"{root} holds no {'/'.join(IMAGE_SUFFIXES)} files, "
                         "neither directly nor in sub-folders")
    files = files[:limit] if limit is not None else files
    images = np.stack([_read(path, size, channels) for path, _ in files])  # (N, C, H, W)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    dataset = ImageDataset(torch.from_numpy(images.astype(np.int64)), labels, levels=256, name=root.name)
    return dataset, classes
