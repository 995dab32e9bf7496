"""Checkpoints of density models in the package's format (:mod:`vecfield.checkpoints`, kind
``model``): class name + constructor config + state dict, written atomically, read weights-only.
Loading checks the stored class against the requested one; legacy files are upgraded on load.
"""

import os
from typing import TypeVar

from torch import nn

from vecfield import checkpoints

ModelT = TypeVar("ModelT", bound=nn.Module)


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save ``model`` (which must carry a ``config`` dict of its constructor arguments) to ``path``."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no `config` dict of constructor arguments to save")
    payload = {"model_class": type(model).__name__, "config": config, "state_dict": model.state_dict()}
    checkpoints.save_checkpoint(path, payload, kind="model")


def load_checkpoint(path: str | os.PathLike[str], model_class: type[ModelT]) -> ModelT:
    """Rebuild a ``model_class`` from a checkpoint; CheckpointError (a ValueError) if it holds another
    class or is no model checkpoint."""
    payload = checkpoints.load_checkpoint(path, kind="model")
    stored = payload["model_class"]
    if stored != model_class.__name__:
        raise checkpoints.CheckpointError(f"{path} holds a {stored} checkpoint, not a {model_class.__name__};"
                                          f" load it with load_checkpoint(path, {stored})")
    model = model_class(**payload["config"])
    state = payload["state_dict"]
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), None)
    if dtype is not None:
        model = model.to(dtype)
    model.load_state_dict(state)
    return model
