"""A tensor's rows as the map-style dataset the Trainer iterates, shuffles and resumes exactly."""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset


class TensorRows(Dataset):
    """The rows of one tensor (N, *event): item i is ``rows[i]`` (*event), so the default collate
    gives batches (B, *event). Unlike ``TensorDataset`` it yields the tensor itself, not a tuple."""

    def __init__(self, rows: Tensor) -> None:
        if not isinstance(rows, Tensor) or rows.ndim < 1:
            got = f"shape {tuple(rows.shape)}" if isinstance(rows, Tensor) else type(rows).__name__
            raise TypeError(f"rows must be a tensor with a leading example dimension, got {got}")
        self.rows = rows

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, index: int) -> Tensor:
        return self.rows[index]
