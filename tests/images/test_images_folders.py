"""Folders of PNG/JPEG images: labels from sub-folders, resizing, [−1, 1] scaling and its inverse,
and PNG grids that read back to the images they were made of."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vecfield.images import from_signed, grid_array, load_image_folder, png_bytes
from vecfield.images.config import load_image_config
from vecfield.images.generator import load_images

ROOT = Path(__file__).resolve().parents[2]


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_class_folders_round_trip_through_signed_scaling(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pictures = {("cat", "a.png"): rng.integers(0, 256, (6, 5), dtype=np.uint8),
                ("cat", "b.PNG"): rng.integers(0, 256, (6, 5), dtype=np.uint8),
                ("dog", "c.png"): rng.integers(0, 256, (6, 5), dtype=np.uint8)}
    for (label, name), array in pictures.items():
        write_png(tmp_path / label / name, array)
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    dataset, classes = load_image_folder(tmp_path, size=(6, 5))
    assert classes == ["cat", "dog"]
    assert dataset.images.shape == (3, 1, 6, 5) and dataset.levels == 256
    assert dataset.labels.tolist() == [0, 0, 1]
    expected = torch.from_numpy(np.stack(list(pictures.values()))[:, None].astype(np.int64))
    assert torch.equal(dataset.images, expected)  # same size: no resampling, exact levels
    signed = dataset.signed()
    assert float(signed.min()) >= -1 and float(signed.max()) <= 1
    assert torch.equal(from_signed(signed, 256), expected)


def test_resizing_to_the_requested_size_keeps_the_content(tmp_path: Path) -> None:
    # a 32×16 image: left half black, right half white; resized to 8×4 (H, W)
    array = np.zeros((32, 16), dtype=np.uint8)
    array[:, 8:] = 255
    write_png(tmp_path / "wide.png", array)
    Image.fromarray(np.stack([array] * 3, axis=-1)).save(tmp_path / "colour.jpg", quality=100)
    dataset, classes = load_image_folder(tmp_path, size=(8, 4), channels=1)
    assert classes == [] and dataset.labels.tolist() == [-1, -1]
    assert dataset.images.shape == (2, 1, 8, 4)
    for image in dataset.images:
        assert int(image[0, :, 0].max()) <= 8 and int(image[0, :, -1].min()) >= 247
    rgb, _ = load_image_folder(tmp_path, size=(8, 4), channels=3)
    assert rgb.images.shape == (2, 3, 8, 4)


def test_folder_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "missing", size=(8, 8))
    with pytest.raises(ValueError, match="holds no"):
        load_image_folder(tmp_path, size=(8, 8))
    write_png(tmp_path / "x.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="channels must be 1"):
        load_image_folder(tmp_path, size=(8, 8), channels=2)


def test_folder_dataset_through_the_config(tmp_path: Path) -> None:
    for label in ("a", "b"):
        write_png(tmp_path / "images" / label / "0.png", np.full((10, 10), 200, dtype=np.uint8))
    config = load_image_config(ROOT / "configs" / "digits_fm.yaml",
                               ["data.dataset=folder", f"data.path={tmp_path / 'images'}",
                                "data.image_size=[8, 8]", "data.train_range=null", "data.val_range=null"])
    dataset, classes = load_images(config.data)
    assert classes == ["a", "b"] and dataset.images.shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"needs data\.image_size"):
        load_image_config(ROOT / "configs" / "digits_fm.yaml",
                          ["data.dataset=folder", f"data.path={tmp_path}"])


def test_png_grid_reads_back_to_the_images() -> None:
    images = torch.randint(0, 17, (5, 1, 3, 4))
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(grid_array(images, 17, columns=2), scale=2))))
    assert decoded.shape == ((3 * 4 + 1) * 2, (2 * 5 + 1) * 2)
    cells = decoded[::2, ::2]  # undo the 2× enlargement
    for i in range(5):
        r, c = divmod(i, 2)
        cell = cells[1 + r * 4: 1 + r * 4 + 3, 1 + c * 5: 1 + c * 5 + 4]
        assert np.array_equal(cell, np.round(images[i, 0].numpy() * 255 / 16).astype(np.uint8))
    assert cells[1 + 2 * 4:, 1 + 5:].max() == 0  # the sixth cell of the 3×2 grid is empty
