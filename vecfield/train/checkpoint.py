"""Training checkpoints: the package's checkpoint format (:mod:`vecfield.checkpoints`, kind
``training``), class checks, the EMA-or-raw choice of weights, rotation.

A checkpoint is a dict of tensors and plain Python values (see ``docs/train.md``)::

    format, schema_version, kind, vecfield_version, torch_version, model_class, task_class,
    step, data_position {epoch, batch, num_samples}, model, ema {weights, n_averaged} | None, optimizer,
    scheduler, rng {world_size, ranks: [per-process states]}, config, trainer_state, metadata

It is written by ``torch.save`` to a temporary file that is then renamed, and read only with
``torch.load(weights_only=True)``, whose restricted unpickler refuses any other object without
constructing it — a file carrying a pickle payload cannot run code here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vecfield import checkpoints
from vecfield.checkpoints import CheckpointError
from vecfield.files import remove_stale_temporaries

STEP_PATTERN = re.compile(r"^step_(\d+)\.pt$")
BEST_NAME = "best.pt"


def class_path(obj: object) -> str:
    """``module.QualifiedName`` of ``obj``'s class, the identity stored in checkpoints."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _same_class(stored: str | None, given: str) -> bool:
    """Equal class paths, or the same qualified name when one side was defined in a script run as
    ``__main__`` (imported as a module, that class carries its module name instead)."""
    main = "__main__."
    if stored is None:
        return False
    if stored.startswith(main):
        return stored == given or given.endswith("." + stored.removeprefix(main))
    if given.startswith(main):
        return stored.endswith("." + given.removeprefix(main))
    return stored == given


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> None:
    """Write a training checkpoint atomically in the package's format (:mod:`vecfield.checkpoints`)."""
    checkpoints.save_checkpoint(path, checkpoint, kind="training")


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint (weights only; older schemas upgraded; see :mod:`vecfield.checkpoints`)."""
    return checkpoints.load_checkpoint(path, "training", map_location)


def check_identity(checkpoint: Mapping[str, Any], model: nn.Module, task: object | None = None) -> None:
    """Raise CheckpointError when the checkpoint was written for another model or task class."""
    pairs = [("model", checkpoint.get("model_class"), class_path(model))]
    if task is not None:
        pairs.append(("task", checkpoint.get("task_class"), class_path(task)))
    for what, stored, given in pairs:
        if not _same_class(stored, given):
            raise CheckpointError(f"the checkpoint was written for {what} class {stored}, but got {given}; "
                                  f"build a {stored} (with the checkpoint's config) or use another run_dir")


def preferred_weights(checkpoint: Mapping[str, Any], prefer_ema: bool = True) -> tuple[dict[str, Any], bool]:
    """The state dict to sample or forecast with — the EMA weights when present and ``prefer_ema`` —
    and whether it is the EMA's."""
    use_ema = prefer_ema and checkpoint.get("ema") is not None
    return (checkpoint["ema"]["weights"] if use_ema else checkpoint["model"]), use_ema


def load_model_weights(path: str | os.PathLike[str], model: nn.Module,
                       prefer_ema: bool = True) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model`` (``preferred_weights``) and return the checkpoint
    (config, metadata…)."""
    checkpoint = load_checkpoint(path)
    check_identity(checkpoint, model)
    model.load_state_dict(preferred_weights(checkpoint, prefer_ema)[0])
    return checkpoint


def load_initial_weights(path: str | os.PathLike[str], model: nn.Module) -> None:
    """Start ``model`` from the weights of another run's checkpoint (its EMA weights when it has
    them): fine-tuning, e.g. a generative forecaster from a deterministic one of the same network.

    Unlike :func:`load_model_weights` the checkpoint may belong to another model class, but every
    parameter and buffer must match by name and shape; otherwise a CheckpointError lists the
    differences (nothing is loaded). A model may name, in its attribute ``fresh_on_init_from`` (a tuple
    of state-dict name prefixes), the parts it adds to the checkpoint's architecture (e.g. the CRPS
    forecaster's noise embedding): those may be missing and keep their initial values.
    """
    if not Path(path).is_file():
        raise CheckpointError(f"init_from {path}: no such checkpoint file; give the path of a finished run's "
                              "checkpoint (e.g. <run_dir>/checkpoints/best.pt)")
    checkpoint = load_checkpoint(path)
    weights, _ = preferred_weights(checkpoint)
    own = model.state_dict()
    fresh = tuple(getattr(model, "fresh_on_init_from", ()))
    missing = sorted(name for name in set(own) - set(weights) if not (fresh and name.startswith(fresh)))
    unexpected = sorted(set(weights) - set(own))
    shapes = sorted(f"{name} {tuple(weights[name].shape)} ≠ {tuple(own[name].shape)}"
                    for name in set(own) & set(weights) if weights[name].shape != own[name].shape)
    if missing or unexpected or shapes:
        listed = "; ".join(f"{what}: {', '.join(names[:4])}{' …' if len(names) > 4 else ''}"
                           for what, names in (("missing", missing), ("unexpected", unexpected),
                                               ("shape (checkpoint ≠ model)", shapes)) if names)
        raise CheckpointError(f"init_from {path}: its weights do not fit this model ({listed}); build the "
                              "model with the checkpoint's architecture (for a forecaster: the same "
                              "model.latent, processor_layers, time_features and mesh levels)")
    model.load_state_dict(weights, strict=not fresh)


class CheckpointStore:
    """The checkpoint folder: ``step_<step>.pt`` files (the last ``keep_last`` kept) and ``best.pt``."""

    def __init__(self, folder: str | os.PathLike[str], keep_last: int) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be ≥ 1, got {keep_last}")
        self.folder = Path(folder)
        self.keep_last = keep_last

    @property
    def best_path(self) -> Path:
        return self.folder / BEST_NAME

    def step_path(self, step: int) -> Path:
        return self.folder / f"step_{step:09d}.pt"

    def saved_steps(self) -> list[int]:
        """Steps of the finished step checkpoints, ascending."""
        if not self.folder.is_dir():
            return []
        steps = [int(m.group(1)) for p in self.folder.iterdir() if (m := STEP_PATTERN.match(p.name))]
        return sorted(steps)

    def latest(self) -> Path | None:
        steps = self.saved_steps()
        return self.step_path(steps[-1]) if steps else None

    def prepare(self) -> None:
        """Create the folder and sweep temporaries of writers that crashed mid-write."""
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.folder)

    def save(self, step: int, checkpoint: Mapping[str, Any]) -> Path:
        """Write ``step_<step>.pt`` atomically, then delete all but the newest ``keep_last``."""
        path = self.step_path(step)
        save_checkpoint(path, checkpoint)
        for old in self.saved_steps()[: -self.keep_last]:
            self.step_path(old).unlink(missing_ok=True)
        return path

    def save_best(self, checkpoint: Mapping[str, Any]) -> Path:
        save_checkpoint(self.best_path, checkpoint)
        return self.best_path
