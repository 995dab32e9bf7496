"""Checkpoints of density models: class name + constructor config + state dict.

Written atomically (``vecfield.files``: a temporary file in the same folder, then renamed); read
with ``torch.load(weights_only=True)``. Loading checks the stored class against the requested one.
"""

import os
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from vecfield.files import atomic_write

ModelT = TypeVar("ModelT", bound=nn.Module)


def save_checkpoint(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save ``model`` (which must carry a ``config`` dict of its constructor arguments) to ``path``."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(f"{type(model).__name__} has no `config` dict of constructor arguments to save")
    path = Path(path)
    payload: dict[str, Any] = {"model_class": type(model).__name__, "config": config,
                               "state_dict": model.state_dict()}
    atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(path: str | os.PathLike[str], model_class: type[ModelT]) -> ModelT:
    """Rebuild a ``model_class`` from a checkpoint; ValueError if it holds another class."""
    payload = torch.load(path, weights_only=True, map_location="cpu")
    if not isinstance(payload, dict) or not {"model_class", "config", "state_dict"} <= payload.keys():
        raise ValueError(f"{path} is not a vecfield density-model checkpoint (missing model_class/config/"
                         f"state_dict); save it with vecfield.density.save_checkpoint")
    stored = payload["model_class"]
    if stored != model_class.__name__:
        raise ValueError(f"{path} holds a {stored} checkpoint, not a {model_class.__name__}; "
                         f"load it with load_checkpoint(path, {stored})")
    model = model_class(**payload["config"])
    state = payload["state_dict"]
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), None)
    if dtype is not None:
        model = model.to(dtype)
    model.load_state_dict(state)
    return model
