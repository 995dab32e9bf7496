"""A seeded, sharded, resumable sampler: the same global batch order for any number of processes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class ShardedEpochSampler(Sampler[int]):
    """Indices of one process's shard of epoch ``epoch``, starting at global batch ``start_batch``.

    Epoch e's order is the permutation ``numpy.random.default_rng([seed, e]).permutation(n)``
    (or ``arange(n)`` without shuffling), a pure function of (seed, e): nothing but the position
    (epoch, batch within epoch) needs saving to resume. Process r of W takes every W-th index
    starting at r, truncated to ⌊n / W⌋, and the loader cuts its shard into per-process batches
    of b = B / W. Global batch k is then the union over processes of their k-th batches,
    ``order[k·B : (k+1)·B]`` — exactly the batch one process with batch size B sees.
    Batches per epoch: ⌊n / B⌋ (the remainder is dropped).

    Unlike ``torch.utils.data.DistributedSampler`` it can start mid-epoch (``set_position``),
    which is what exact resumption needs.
    """

    def __init__(self, num_samples: int, global_batch_size: int, seed: int, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1) -> None:
        if global_batch_size % world_size:
            raise ValueError(f"batch_size {global_batch_size} is the global batch and must be divisible by "
                             f"the number of processes {world_size}; choose a multiple of {world_size}")
        if num_samples < global_batch_size:
            raise ValueError(f"the dataset has {num_samples} samples, fewer than one batch of "
                             f"{global_batch_size}; lower batch_size or use more data")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        self.num_samples = num_samples
        self.global_batch_size = global_batch_size
        self.local_batch_size = global_batch_size // world_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.global_batch_size

    def set_position(self, epoch: int, start_batch: int) -> None:
        """Next iteration yields epoch ``epoch`` from its global batch ``start_batch`` on."""
        if epoch < 0 or not 0 <= start_batch < self.batches_per_epoch:
            raise ValueError(f"position (epoch {epoch}, batch {start_batch}) outside an epoch of "
                             f"{self.batches_per_epoch} batches")
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """Global sample order of ``epoch``: (n,) int64."""
        if not self.shuffle:
            return torch.arange(self.num_samples)
        return torch.from_numpy(np.random.default_rng([self.seed, epoch]).permutation(self.num_samples))

    def _shard(self) -> torch.Tensor:
        usable = self.batches_per_epoch * self.global_batch_size
        shard = self.epoch_order(self.epoch)[:usable][self.rank :: self.world_size]
        return shard[self.start_batch * self.local_batch_size :]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shard().tolist())

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.local_batch_size
