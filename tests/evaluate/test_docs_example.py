"""docs/evaluate.md's example runs as written on a dataset vecfield built itself (static fields and
forcings included) and a forecast store written by Forecaster.rollout_to_zarr."""

import re
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from tests.forecast.helpers import tiny_spec, wave_dataset
from vecfield.config import from_dict
from vecfield.data.build import build_dataset
from vecfield.data.config import DatasetConfig
from vecfield.forecast import Forecaster

DOC = Path(__file__).resolve().parents[2] / "docs" / "evaluate.md"


def python_blocks(path: Path) -> list[str]:
    """The ```python blocks of a markdown file, in order."""
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def quickstart_layout(root: Path) -> None:
    """runs/quickstart/dataset.zarr built by vecfield from a 24-day 6-hourly source, and a 20-step
    (5-day) forecast.zarr from two initializations of its test split (an untrained tiny network)."""
    source = root / "source.zarr"
    wave_dataset(days=24).drop_attrs().to_zarr(source, zarr_format=2)
    config = from_dict(DatasetConfig, {
        "output": str(root / "runs" / "quickstart" / "dataset.zarr"),
        "sources": [{"kind": "zarr", "path": str(source)}],
        "variables": ["geopotential", "u_component_of_wind", "2m_temperature"],
        "levels": [500, 850],
        "static": ["land_sea_mask", "geopotential_at_surface"],
        "time": {"start": "2020-01-01T00", "end": "2020-01-24T18", "step_hours": 6},
        "splits": {"train": ["2020-01-01T00", "2020-01-12T18"], "val": ["2020-01-13T00", "2020-01-14T18"],
                   "test": ["2020-01-15T00", "2020-01-24T18"]},
    })
    dataset = xr.open_zarr(build_dataset(config, progress=False))
    spec, _, _ = tiny_spec(dataset.load())
    torch.manual_seed(0)
    forecaster = Forecaster(spec.build(str(root / "graphs")), spec)
    inits = np.array(["2020-01-15T06", "2020-01-16T06"], dtype="datetime64[ns]")
    needed = np.union1d(inits, inits - np.timedelta64(6, "h"))
    initial = dataset[list(spec.state_layout.variables)].sel(time=needed).load()
    forecaster.rollout_to_zarr(initial, 20, root / "runs" / "quickstart" / "forecast.zarr", init_times=inits)


def test_the_evaluate_docs_example_runs_on_a_dataset_vecfield_built(tmp_path, monkeypatch) -> None:
    blocks = python_blocks(DOC)
    assert len(blocks) == 1 and "compute_climatology" in blocks[0]
    quickstart_layout(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    out = tmp_path / "runs" / "quickstart"
    scorecard = (out / "my_scorecard.md").read_text()
    assert scorecard.startswith("Evaluation period: 2 initializations from 2020-01-15 06:00")
    assert "| geopotential | 500 | m² s⁻² | **vecfield** |" in scorecard
    for name in ("my_rmse_vs_lead.png", "my_acc_vs_lead.png", "my_maps_z500.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.isfinite(namespace["rmse"]["vecfield"]["geopotential"].values).all()
