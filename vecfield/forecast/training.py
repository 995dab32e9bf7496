"""Train the forecaster described by a config with :class:`vecfield.train.Trainer`.

Data: the built zarr ``dataset.output`` (``pipelines/build_dataset.py``) with its statistics;
windows of 2 inputs and K leads (K = the largest curriculum value) from the ``train`` split;
validation on windows of the ``val`` split one every ``rollout.init_every_hours``, rolled out
``rollout.validation_steps`` leads. The checkpoint metadata carries the forecaster spec
(normalization, layouts, graph spec, static fields, schema version) and the whole config.
Runs unchanged under ``torchrun`` (DDP through the trainer).
"""

import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vecfield.config.forecast import ForecastConfig, forecast_config_to_dict
from vecfield.data.statistics import load_statistics
from vecfield.data.streaming import WindowedDataset
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.task import ForecastTask
from vecfield.train import Trainer


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


def train_forecaster(config: ForecastConfig, graph_cache: str | None = None) -> Path:
    """Train (or resume) the run of ``config``; returns the checkpoint to forecast with
    (``best.pt`` when validation picks one, else the last step's)."""
    path = Path(config.dataset.output)
    if not path.exists():
        raise ValueError(
            f"the dataset {path} does not exist; build it first with "
            "python pipelines/build_dataset.py --config <this config>"
        )
    step_hours = config.dataset.time.step_hours
    leads = max([1, *(value for _, value in config.train.curriculum)])
    train = _open_split(path, "train", leads, step_hours, config.train.in_memory)
    spec = ForecasterSpec.from_dataset(train, load_statistics(path), config.model, step_hours)
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
