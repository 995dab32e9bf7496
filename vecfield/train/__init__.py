"""Training engine: Trainer, its config, checkpoints (safe, atomic, resumable) and DDP via torchrun."""

from vecfield.train.checkpoint import CheckpointError, load_checkpoint, load_model_weights
from vecfield.train.config import TrainerConfig
from vecfield.train.schedules import Curriculum, WarmupCosineSchedule
from vecfield.train.trainer import Task, Trainer, TrainSummary

__all__ = [
    "CheckpointError",
    "Curriculum",
    "Task",
    "TrainSummary",
    "Trainer",
    "TrainerConfig",
    "WarmupCosineSchedule",
    "load_checkpoint",
    "load_model_weights",
]
