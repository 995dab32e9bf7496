"""Process-group setup for torchrun (DDP): rank, world size, device and the few collectives we use."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return default if value is None else int(value)


class DistributedContext:
    """Rank/world of this process; initializes the default process group when launched by torchrun.

    torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; with WORLD_SIZE > 1
    the group is created here (backend ``gloo`` on CPU, ``nccl`` on CUDA, or as configured) unless
    the caller already created one. A plain ``python script.py`` is a world of one and needs no group.
    """

    def __init__(self, device: str = "auto", backend: str = "auto") -> None:
        world_size = _env_int("WORLD_SIZE", 1)
        self.owns_group = False
        if dist.is_available() and dist.is_initialized():
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        else:
            self.rank, self.world_size = _env_int("RANK", 0), world_size
        self.local_rank = _env_int("LOCAL_RANK", 0)
        self.device = self._pick_device(device)
        if self.world_size > 1 and not dist.is_initialized():
            if backend == "auto":
                backend = "nccl" if self.device.type == "cuda" else "gloo"
            if backend == "nccl" and self.device.type != "cuda":
                raise ValueError("backend 'nccl' needs CUDA devices; use backend 'gloo' (or 'auto') on CPU")
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend=backend)
            self.owns_group = True

    def _pick_device(self, device: str) -> torch.device:
        if device == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda", self.local_rank % torch.cuda.device_count())
            return torch.device("cpu")
        try:
            chosen = torch.device(device)
        except RuntimeError:
            raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
        if chosen.type == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device {device!r} requested but CUDA is not available; "
                                 "use 'cpu' or 'auto'")
            if chosen.index is None:
                chosen = torch.device("cuda", self.local_rank % torch.cuda.device_count())
        return chosen

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs and writes checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """Mean over processes of a tensor (identity in a world of one)."""
        if not self.distributed:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` from every process, in rank order (a list of one in a world of one)."""
        if not self.distributed:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self) -> None:
        """Destroy the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False
