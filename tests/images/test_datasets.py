"""Image datasets: bundled digits, MNIST IDX parsing on the real file, [−1, 1] scaling round trip."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from vecfield.images import from_signed, load_digits, load_image_dataset, load_mnist, read_idx, to_signed


def test_digits_are_17_level_8x8_images() -> None:
    data = load_digits()
    assert data.images.shape == (1797, 1, 8, 8) and data.image_shape == (1, 8, 8)
    assert data.levels == 17 and int(data.images.min()) == 0 and int(data.images.max()) == 16
    assert sorted(set(data.labels.tolist())) == list(range(10))
    signed = data.signed()
    assert float(signed.min()) == -1.0 and float(signed.max()) == 1.0


@pytest.mark.parametrize("levels", [17, 256])
def test_signed_scaling_round_trips_every_level(levels: int) -> None:
    k = torch.arange(levels).reshape(1, 1, 1, -1)
    assert torch.equal(from_signed(to_signed(k, levels), levels), k)
    assert torch.equal(from_signed(torch.tensor([-3.0, 3.0]), levels), torch.tensor([0, levels - 1]))


def test_real_mnist_idx_file(shared_data: Path) -> None:
    folder = shared_data / "mnist"
    data = load_mnist(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz", limit=100)
    assert data.images.shape == (100, 1, 28, 28) and data.levels == 256
    assert data.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    assert int(data.images.max()) == 255


def test_idx_reader_round_trip_and_errors(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + np.array([2, 3, 4], dtype=">i4").tobytes()
    (tmp_path / "a.idx").write_bytes(header + array.tobytes())
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(header + array.tobytes()))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), array)
    assert np.array_equal(read_idx(tmp_path / "a.idx.gz"), array)
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes(header + array.tobytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short.idx")
    with pytest.raises(ValueError, match="does not exist"):
        read_idx(tmp_path / "missing.idx")
    with pytest.raises(ValueError, match=r"choose one of \['digits', 'mnist'\]"):
        load_image_dataset("cifar")
    with pytest.raises(ValueError, match="needs `path`"):
        load_image_dataset("mnist")
