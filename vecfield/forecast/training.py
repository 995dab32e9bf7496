"""Train the forecaster described by a config with :class:`vecfield.train.Trainer`.

Data: the built zarr ``dataset.output`` (``pipelines/build_dataset.py``) with its statistics;
windows of 2 inputs and K leads (K = the largest curriculum value) from the ``train`` split;
validation on windows of the ``val`` split one every ``rollout.init_every_hours``, rolled out
``rollout.validation_steps`` leads. The checkpoint metadata carries the forecaster spec
(normalization, layouts, graph spec, static fields, schema version) and the whole config.
Runs unchanged under ``torchrun`` (DDP through the trainer).
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vecfield.config.typed import to_dict
from vecfield.data.build import open_built_dataset
from vecfield.data.statistics import load_statistics
from vecfield.data.streaming import WindowedDataset
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.config import ForecastConfig, ModelConfig, forecast_config_to_dict
from vecfield.forecast.task import ForecastTask
from vecfield.train import Trainer
from vecfield.train.checkpoint import CheckpointError, CheckpointStore, load_checkpoint

#: what a resumed run must share with its checkpoint besides ``train:`` (which the Trainer checks):
#: metadata key → how it is named in the error
_LAYOUT_KEYS = {
    "state_channels": "the state channels (dataset.variables, dataset.levels)",
    "forcing_channels": "the forcing channels (dataset.forcings)",
    "static_channels": "the static fields (dataset.static)",
    "step_hours": "the time step (dataset.time.step_hours)",
}


def _open_split(
    path: Path, split: str, n_leads: int, step_hours: int, in_memory: bool | Literal["auto"]
) -> WindowedDataset:
    return WindowedDataset(
        path, n_inputs=2, n_leads=n_leads, step_hours=step_hours, split=split, in_memory=in_memory
    )


def has_split(path: Path, split: str) -> bool:
    """Whether the built dataset at ``path`` defines ``split``."""
    import xarray as xr

    return bool(json.loads(xr.open_zarr(path).attrs.get("splits", "{}")).get(split))


def check_resumable(stored: Mapping[str, Any], spec: ForecasterSpec, path: Path) -> None:
    """CheckpointError when the checkpoint metadata ``stored`` was trained with another model spec or
    data layout than ``spec`` (its weights would not fit): names the first differing key."""
    current = spec.to_metadata()
    # a key the checkpoint lacks was added to ModelConfig since: it was trained with its default
    model_then = {**to_dict(ModelConfig()), **stored.get("model", {})}
    model_now = to_dict(spec.model)
    differences = [
        f"model.{key} {model_then.get(key)!r} (this config: {value!r})"
        for key, value in model_now.items() if model_then.get(key) != value
    ]
    differences += [
        f"{what} {stored.get(key)} (this config: {current[key]})"
        for key, what in _LAYOUT_KEYS.items() if stored.get(key) != current[key]
    ]
    differences += [
        f"another {name} grid ({stored[name].numel()} points; this config: {current[name].numel()})"
        for name in ("latitude", "longitude")
        if stored[name].shape != current[name].shape or not torch.allclose(stored[name], current[name])
    ]
    if differences:
        raise CheckpointError(
            f"cannot resume {path}: this run directory was trained with {differences[0]}. Restore it to "
            "continue the run, or use a new train.run_dir (train.init_from=<a checkpoint> starts it from "
            "weights that fit)"
        )


def train_forecaster(config: ForecastConfig, graph_cache: str | None = None) -> Path:
    """Train (or resume) the run of ``config``; returns the checkpoint to forecast with
    (``best.pt`` when validation picks one, else the last step's)."""
    path = Path(config.dataset.output)
    open_built_dataset(path)  # a clear error when it is absent or unreadable
    step_hours = config.dataset.time.step_hours
    leads = max([1, *(value for _, value in config.train.curriculum)])
    train = _open_split(path, "train", leads, step_hours, config.train.in_memory)
    spec = ForecasterSpec.from_dataset(train, load_statistics(path), config.model, step_hours)
    latest = CheckpointStore(Path(config.train.run_dir) / "checkpoints", config.train.keep_last).latest()
    if latest is not None and config.train.resume:
        check_resumable(load_checkpoint(latest)["metadata"], spec, latest)
    torch.manual_seed(config.train.seed)  # the initial weights: the same in every process and every run
    module = spec.build(graph_cache)
    task = ForecastTask(train.state_layout.channels, step_hours, spec.normalization.state_std)
    val = None
    if config.train.validate_every is not None:
        windows = _open_split(
            path, "val", config.rollout.validation_steps, step_hours, config.train.in_memory
        )
        every = max(1, config.rollout.init_every_hours // step_hours)
        val = torch.utils.data.Subset(windows, np.arange(0, len(windows), every).tolist())
    metadata = {**spec.to_metadata(), "config": forecast_config_to_dict(config)}
    with Trainer(task, module, train, config.train, val_data=val, metadata=metadata) as trainer:
        trainer.fit()
        store = trainer.store
    if store.best_path.exists():
        return store.best_path
    last = store.latest()
    assert last is not None, "Trainer.fit leaves a checkpoint of its last step"
    return last
