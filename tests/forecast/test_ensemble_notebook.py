"""notebooks/ensemble_forecast.ipynb runs top to bottom on tiny EDM, CRPS and deterministic checkpoints."""

import dataclasses
import os
from pathlib import Path

import torch

from tests.forecast.helpers import TINY_MODEL, tiny_spec, wave_dataset
from tests.notebooks import run_notebook
from vecfield.forecast import ForecastTask
from vecfield.train import Trainer, TrainerConfig


def tiny_checkpoint(ds, folder: Path, **model: object) -> Path:
    """A tiny forecaster with ``model`` settings trained for 2 steps; its checkpoint."""
    spec, windows, _ = tiny_spec(ds, n_leads=1)
    spec = dataclasses.replace(spec, model=dataclasses.replace(TINY_MODEL, **model))
    torch.manual_seed(0)
    module = spec.build(str(folder.parent / "graphs"))
    task = ForecastTask(spec.state_layout.channels, 6, spec.normalization.state_std)
    config = TrainerConfig(run_dir=str(folder), max_steps=2, batch_size=4, progress_bar=False)
    with Trainer(task, module, windows, config, metadata=spec.to_metadata()) as trainer:
        trainer.fit()
        checkpoint = trainer.store.latest()
    assert checkpoint is not None
    return checkpoint


def test_ensemble_notebook_runs_on_a_tiny_generative_checkpoint(tmp_path, monkeypatch) -> None:
    ds = wave_dataset(days=6)
    checkpoint = tiny_checkpoint(ds, tmp_path / "edm", method="edm", sampling_steps=2)
    crps = tiny_checkpoint(ds, tmp_path / "crps", method="crps", noise_features=4)
    deterministic = tiny_checkpoint(ds, tmp_path / "deterministic")
    ds.drop_attrs().to_zarr(tmp_path / "truth.zarr", zarr_format=2)
    root = Path(__file__).parents[2]
    settings = {"VECFIELD_CHECKPOINT": str(checkpoint), "VECFIELD_DATASET": str(tmp_path / "truth.zarr"),
                "VECFIELD_CRPS_CHECKPOINT": str(crps), "VECFIELD_DETERMINISTIC": str(deterministic),
                "VECFIELD_STEPS": "3", "VECFIELD_MEMBERS": "3", "VECFIELD_INITS": "2", "OMP_NUM_THREADS": "1"}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    outputs = run_notebook("ensemble_forecast.ipynb", tmp_path, timeout=120)
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 6
    text = "".join(o.get("text", "") for o in outputs)
    assert "edm with 2 Heun steps" in text and "nats" in text
