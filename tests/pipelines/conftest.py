"""A tiny built dataset, its config file and a trained checkpoint, shared by the pipeline tests
(the wave world of tests/forecast/helpers.py: 15 days, 16 × 32 grid, 4 training steps)."""

from pathlib import Path

import pytest
import torch
import yaml

from tests.forecast.helpers import tiny_pipeline_config, wave_dataset


@pytest.fixture(autouse=True)
def _every_test_on_one_thread(one_thread: None) -> None:
    """Every test here runs with torch on one thread (``one_thread`` in tests/conftest.py)."""


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    """{"config": the YAML file, "source": the raw zarr, "checkpoint": best.pt} after build + train."""
    from pipelines.build_dataset import main as build
    from pipelines.train_forecaster import main as train

    folder = tmp_path_factory.mktemp("tiny_world")
    source = folder / "source.zarr"
    wave_dataset(days=16).drop_attrs().to_zarr(source, zarr_format=2)
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_pipeline_config(folder, source)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build(["--config", str(config)])
        checkpoint = train(["--config", str(config)])
    finally:
        torch.set_num_threads(threads)
    return {"config": config, "source": source, "checkpoint": checkpoint, "folder": folder}
