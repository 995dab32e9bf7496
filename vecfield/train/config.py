"""TrainerConfig: every option of the training engine, validated on construction."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vecfield.train.allocator import check_mmap_threshold
from vecfield.train.schedules import Curriculum

MIXED_PRECISION_CHOICES = ("auto", "bf16", "off")
BEST_MODE_CHOICES = ("min", "max")
BACKEND_CHOICES = ("auto", "gloo", "nccl")

# Fields that only change how a run is executed or reported, not what it computes: they may
# differ between a checkpoint and the config that resumes it. Every other field must match.
RUNTIME_FIELDS = frozenset({
    "run_dir", "device", "compile", "num_workers", "progress_bar", "tensorboard", "log_every",
    "checkpoint_every", "in_memory", "keep_last", "validate_every", "val_batch_size", "resume", "backend",
    "cpu_mmap_threshold",
})


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _optional_positive_int(name: str, value: object) -> None:
    if value is not None:
        _positive_int(name, value)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")


@dataclass(frozen=True)
class TrainerConfig:
    """Options of :class:`vecfield.train.Trainer` (see docs/train.md for the table).

    Steps count optimizer updates. ``batch_size`` is the GLOBAL batch: under torchrun with N
    processes each process draws ``batch_size / N`` samples, so a config trains the same model
    whatever the number of processes. Sequences given as lists (from YAML) are stored as tuples.
    """

    run_dir: str
    max_steps: int
    batch_size: int = 32
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    grad_clip_norm: float | None = 1.0
    ema_decay: float | None = 0.999
    curriculum: tuple[tuple[int, int], ...] = ()
    lr_restart_per_phase: bool = False
    mixed_precision: str = "auto"
    compile: bool = False
    device: str = "auto"
    backend: str = "auto"
    seed: int = 0
    shuffle: bool = True
    num_workers: int = 0
    in_memory: bool | Literal["auto"] = "auto"
    validate_every: int | None = None
    val_batch_size: int | None = None
    validate_with_ema: bool = True
    best_metric: str | None = None
    best_mode: str = "min"
    log_every: int = 1
    checkpoint_every: int = 1000
    keep_last: int = 3
    tensorboard: bool = False
    progress_bar: bool = True
    resume: bool = True
    cpu_mmap_threshold: int | None = None
    init_from: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.run_dir, str) or not self.run_dir:
            raise ValueError(f"run_dir must be a non-empty path string, got {self.run_dir!r}")
        for name in ("max_steps", "batch_size", "log_every", "checkpoint_every", "keep_last"):
            _positive_int(name, getattr(self, name))
        _optional_positive_int("validate_every", self.validate_every)
        _optional_positive_int("val_batch_size", self.val_batch_size)
        for name in ("warmup_steps", "seed", "num_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) exceeds max_steps ({self.max_steps}); "
                             "shorten the warm-up or train longer")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        if not self.eps > 0:
            raise ValueError(f"eps must be positive, got {self.eps!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be ≥ 0, got {self.weight_decay!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio (the cosine floor as a fraction of lr) must lie in [0, 1], "
                             f"got {self.min_lr_ratio!r}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise ValueError(f"grad_clip_norm must be positive, or null to disable clipping, "
                             f"got {self.grad_clip_norm!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), or null to disable the EMA, "
                             f"got {self.ema_decay!r}")
        pairs = Curriculum.from_pairs(self.curriculum).pairs if self.curriculum else ()
        object.__setattr__(self, "curriculum", pairs)
        if self.lr_restart_per_phase and len(pairs) < 2:
            raise ValueError("lr_restart_per_phase restarts the learning-rate schedule at each curriculum "
                             "phase; give a curriculum of two or more phases, or lr_restart_per_phase: false")
        _choice("mixed_precision", self.mixed_precision, MIXED_PRECISION_CHOICES)
        _choice("best_mode", self.best_mode, BEST_MODE_CHOICES)
        _choice("backend", self.backend, BACKEND_CHOICES)
        if self.in_memory not in (True, False, "auto"):
            raise ValueError(f"unknown in_memory {self.in_memory!r}; choose one of [True, False, 'auto']")
        if self.best_metric is not None and self.validate_every is None:
            raise ValueError(f"best_metric={self.best_metric!r} needs validation: set validate_every")
        if self.validate_with_ema and self.ema_decay is None and self.validate_every is not None:
            raise ValueError("validate_with_ema=true needs an EMA: set ema_decay, or validate_with_ema=false")
        if self.cpu_mmap_threshold is not None:
            check_mmap_threshold(self.cpu_mmap_threshold)
        if self.init_from is not None and (not isinstance(self.init_from, str) or not self.init_from):
            raise ValueError(f"init_from must be the path of a checkpoint to start from, or null; "
                             f"got {self.init_from!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples become lists) for checkpoints and logs."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        out["curriculum"] = [list(pair) for pair in self.curriculum]
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainerConfig:
        """Build from a plain dict; an unknown key is an error that lists the valid keys."""
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(f"unknown trainer option(s) {unknown}; valid options are {sorted(valid)}")
        return cls(**values)

