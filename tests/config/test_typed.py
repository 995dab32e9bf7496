"""Typed configs: YAML → frozen dataclasses, with unknown keys, wrong types and overrides caught."""

import dataclasses
from pathlib import Path

import pytest

from vecfield.config import apply_overrides, from_dict, load_config, to_dict
from vecfield.data.config import DatasetConfig

PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("era5_*.yaml"))

MINIMAL = {
    "output": "out.zarr",
    "sources": [{"path": "in.zarr"}],
    "variables": ["geopotential"],
    "time": {"start": "2020-01-01", "end": "2020-02-01"},
    "splits": {"train": ["2020-01-01", "2020-01-20"]},
}


def test_round_trip_and_frozen():
    config = from_dict(DatasetConfig, MINIMAL)
    assert config.sources[0].kind == "auto" and config.time.step_hours == 6
    assert from_dict(DatasetConfig, to_dict(config)) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.output = "x"  # type: ignore[misc]


def test_unknown_key_lists_valid_keys_and_suggests():
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) \['varaibles'\] \(did you mean 'variables'\?\); valid keys"
    ):
        from_dict(DatasetConfig, {**MINIMAL, "varaibles": ["t"]})
    with pytest.raises(ValueError, match=r"time: unknown key\(s\) \['step'\].*step_hours"):
        from_dict(DatasetConfig, {**MINIMAL, "time": {**MINIMAL["time"], "step": 6}}, "dataset")


def test_wrong_types_and_literals():
    with pytest.raises(TypeError, match=r"time.step_hours: expected int"):
        from_dict(DatasetConfig, {**MINIMAL, "time": {**MINIMAL["time"], "step_hours": "6h"}})
    with pytest.raises(ValueError, match=r"'bilinar' is not one of.*did you mean 'bilinear'"):
        from_dict(DatasetConfig, {**MINIMAL, "grid": {"method": "bilinar"}})
    with pytest.raises(ValueError, match=r"required key\(s\) \['output'\]"):
        from_dict(DatasetConfig, {k: v for k, v in MINIMAL.items() if k != "output"})


def test_overrides_with_dotted_paths(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("dataset:\n" + "".join(f"  {k}: {v!r}\n".replace("'", '"') for k, v in MINIMAL.items()))
    config = load_config(
        path,
        {"dataset": DatasetConfig},
        ["dataset.time.step_hours=12", "dataset.levels=[500, 850]", "dataset.grid.resolution=5.625"],
    )
    dataset = config["dataset"]
    assert dataset.time.step_hours == 12 and dataset.levels == (500, 850) and dataset.grid.resolution == 5.625
    with pytest.raises(ValueError, match=r"name no section.*did you mean 'dataset'"):
        load_config(path, {"dataset": DatasetConfig}, ["datset.output=x"])
    with pytest.raises(ValueError, match=r"must look like"):
        apply_overrides({}, ["dataset.output"])


@pytest.mark.parametrize("preset", PRESETS, ids=[p.name for p in PRESETS])
def test_presets_load(preset):
    assert len(PRESETS) == 3
    config = load_config(preset, {"dataset": DatasetConfig})["dataset"]
    assert config.variables and config.splits.train
