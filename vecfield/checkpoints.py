"""The package's one checkpoint format: a dict of tensors and plain values with a format tag, a
schema version and a kind, written atomically and read only with ``torch.load(weights_only=True)``.

    {"format": "vecfield.checkpoint", "schema_version": 2, "kind": "training" | "model", ...}

``training``: a Trainer's full state (``vecfield.train.checkpoint``, ``docs/train.md``). ``model``:
a model's class name, constructor config and state dict (``vecfield.density.save_checkpoint``).

The restricted unpickler of a weights-only load refuses any other object without constructing it,
so a file carrying a pickle payload cannot run code here. Files of an older schema are upgraded
on load, one version at a time, by ``MIGRATIONS``; files of an unknown or newer schema are refused
with a message saying what to do. Versions so far: 0, the density models' legacy files (no format
tag: ``model_class``, ``config``, ``state_dict``); 1, the training checkpoints of vecfield 0.1
(format ``vecfield.train.checkpoint``); 2, the common format with ``kind``.
"""

import os
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from vecfield._version import __version__
from vecfield.files import atomic_write

FORMAT = "vecfield.checkpoint"
SCHEMA_VERSION = 2
KINDS: tuple[str, ...] = ("training", "model")
_LEGACY_TRAINING_FORMAT = "vecfield.train.checkpoint"
_LEGACY_MODEL_KEYS = frozenset({"model_class", "config", "state_dict"})


class CheckpointError(ValueError):
    """A checkpoint that is unsafe, unreadable, of another schema version, kind or model/task."""


def check_plain(value: object, where: str = "metadata") -> None:
    """Raise TypeError unless ``value`` is tensors, numbers, strings, None, lists, tuples and
    dicts with str/int keys — exactly what ``torch.load(weights_only=True)`` reads back. Subclasses
    of these (``torch.__version__`` is a str subclass, for instance) are refused: they would not load."""
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, torch.Tensor):
        return
    if isinstance(value, list | tuple) and type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict) and type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "use str or int keys")
            check_plain(item, f"{where}[{key!r}]")
        return
    hint = " (convert numpy arrays with torch.from_numpy)" if type(value).__module__ == "numpy" else ""
    raise TypeError(f"{where} holds a {type(value).__module__}.{type(value).__qualname__}; checkpoints "
                    f"store only tensors, numbers, strings, None, lists, tuples and dicts{hint}")


def save_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any], kind: str) -> None:
    """Write ``payload`` (plain values, :func:`check_plain`) as a checkpoint of ``kind``, atomically
    (a temporary file in the same folder, then renamed), tagged with the format and schema version."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; choose one of {list(KINDS)}")
    checkpoint = {**payload, "format": FORMAT, "schema_version": SCHEMA_VERSION, "kind": kind,
                  "vecfield_version": payload.get("vecfield_version", __version__)}
    check_plain(checkpoint, "checkpoint")
    atomic_write(path, lambda file: torch.save(checkpoint, file))


def _from_legacy_model(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {**checkpoint, "format": FORMAT, "schema_version": 2, "kind": "model"}


def _from_training_v1(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {**checkpoint, "format": FORMAT, "schema_version": 2, "kind": "training"}


#: schema version → the function that upgrades a checkpoint of that version to its successor
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _from_legacy_model,
    1: _from_training_v1,
}


def _schema_version(checkpoint: object) -> int | None:
    """The schema version of a loaded object, or None when it is no vecfield checkpoint."""
    if not isinstance(checkpoint, dict):
        return None
    if checkpoint.get("format") == FORMAT:  # the common format began at schema version 2
        version = checkpoint.get("schema_version")
        return version if isinstance(version, int) and version >= 2 else None
    if checkpoint.get("format") == _LEGACY_TRAINING_FORMAT and checkpoint.get("schema_version") == 1:
        return 1
    if "format" not in checkpoint and checkpoint.keys() >= _LEGACY_MODEL_KEYS:
        return 0
    return None


def load_checkpoint(path: str | os.PathLike[str], kind: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``, upgrade an older schema, and check its kind.

    Raises FileNotFoundError for a missing file, and CheckpointError for a file carrying objects
    outside the weights-only allowlist (nothing in it is executed), a truncated or foreign file, a
    schema version this vecfield cannot read, and a checkpoint of another ``kind`` than asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; give the path that training printed "
                                "(e.g. <train.run_dir>/checkpoints/best.pt)")
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
    version = _schema_version(checkpoint)
    if version is None:
        declared = checkpoint.get("schema_version") if isinstance(checkpoint, dict) else None
        if isinstance(checkpoint, dict) and checkpoint.get("format") in (FORMAT, _LEGACY_TRAINING_FORMAT):
            written_by = checkpoint.get("vecfield_version", "an unknown version")
            raise CheckpointError(
                f"{path} has checkpoint schema version {declared}, but this vecfield ({__version__}) "
                f"reads schema versions up to {SCHEMA_VERSION}. Load it with the vecfield version that "
                f"wrote it ({written_by}), or start a new run (a new run_dir) with this version.")
        raise CheckpointError(f"{path} is not a vecfield checkpoint (no format tag {FORMAT!r})")
    if version > SCHEMA_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint schema version {version}, newer than this vecfield ({__version__}) "
            f"reads ({SCHEMA_VERSION}); upgrade vecfield to load it.")
    while version < SCHEMA_VERSION:
        checkpoint = MIGRATIONS[version](checkpoint)
        version = checkpoint["schema_version"]
    if kind is not None and checkpoint.get("kind") != kind:
        raise CheckpointError(f"{path} is a {checkpoint.get('kind')} checkpoint, not a {kind} checkpoint")
    return checkpoint


def _unpickler_reason(error: Exception) -> str:
    """The line of torch's message that names the refused global."""
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if "Unsupported" in line or "WeightsUnpickler" in line), lines[0])
