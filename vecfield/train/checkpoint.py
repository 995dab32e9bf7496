"""Training checkpoints: atomic writes, weights-only loading, schema and class checks, rotation.

A checkpoint is a dict of tensors and plain Python values (see ``docs/train.md``)::

    format, schema_version, vecfield_version, torch_version, model_class, task_class,
    step, data_position {epoch, batch, num_samples}, model, ema {weights, n_averaged} | None, optimizer,
    scheduler, rng {world_size, ranks: [per-process states]}, config, trainer_state, metadata

It is written by ``torch.save`` to a temporary file that is then renamed, and read only with
``torch.load(weights_only=True)``, whose restricted unpickler refuses any other object without
constructing it — a file carrying a pickle payload cannot run code here.
"""

from __future__ import annotations

import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vecfield._version import __version__
from vecfield.train.files import atomic_write, remove_stale_temporaries

FORMAT = "vecfield.train.checkpoint"
SCHEMA_VERSION = 1
STEP_PATTERN = re.compile(r"^step_(\d+)\.pt$")
BEST_NAME = "best.pt"


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, unreadable, of another schema version or of another model/task."""


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


def check_plain(value: object, where: str = "metadata") -> None:
    """Raise TypeError unless ``value`` is tensors, numbers, strings, None, lists, tuples and
    dicts with str/int keys — exactly what ``torch.load(weights_only=True)`` reads back. Subclasses
    of these (``torch.__version__`` is a str subclass, for instance) are refused: they would not load."""
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, list | tuple) and type(value) in (list, tuple):  # exact types: no subclasses
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict) and type(value) in (dict, OrderedDict):  # exact types: no subclasses
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "use str or int keys")
            check_plain(item, f"{where}[{key!r}]")
        return
    hint = " (convert numpy arrays with torch.from_numpy)" if type(value).__module__ == "numpy" else ""
    raise TypeError(f"{where} holds a {type(value).__module__}.{type(value).__qualname__}; checkpoints "
                    f"store only tensors, numbers, strings, None, lists, tuples and dicts{hint}")


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> None:
    """Write ``checkpoint`` atomically (temporary file in the same folder, then ``os.replace``)."""
    payload = dict(checkpoint)
    check_plain(payload, "checkpoint")
    atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its format and schema version.

    Raises CheckpointError for a file carrying objects outside the weights-only allowlist
    (nothing in it is executed), a truncated or foreign file, and a schema-version mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refused to load {path}: it contains Python objects that a weights-only load does not allow "
            f"(nothing was executed). vecfield checkpoints hold only tensors and plain values; if you trust "
            f"the file's author, inspect it in isolation — never load it with weights_only=False. "
            f"Detail: {_unpickler_reason(error)}"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable torch checkpoint (truncated or another format): "
                              f"{error}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vecfield training checkpoint (no format tag {FORMAT!r})")
    version = checkpoint.get("schema_version")
    if version != SCHEMA_VERSION:
        written_by = checkpoint.get("vecfield_version", "an unknown version")
        raise CheckpointError(
            f"{path} has checkpoint schema version {version}, but this vecfield ({__version__}) "
            f"reads schema version {SCHEMA_VERSION}. Load it with the vecfield version that wrote it "
            f"({written_by}), or start a new run (a new run_dir) with this version."
        )
    return checkpoint


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's message that names the refused global."""
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if "Unsupported" in line or "WeightsUnpickler" in line), lines[0])


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
    differences (nothing is loaded).
    """
    if not Path(path).is_file():
        raise CheckpointError(f"init_from {path}: no such checkpoint file; give the path of a finished run's "
                              "checkpoint (e.g. <run_dir>/checkpoints/best.pt)")
    checkpoint = load_checkpoint(path)
    weights, _ = preferred_weights(checkpoint)
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
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
    model.load_state_dict(weights)


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
