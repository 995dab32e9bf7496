"""The one checkpoint format: kinds, and older files upgraded on load or refused with what to do."""

import pytest
import torch

from vecfield.checkpoints import FORMAT, SCHEMA_VERSION, CheckpointError, load_checkpoint, save_checkpoint
from vecfield.density import GaussianMixture
from vecfield.density import load_checkpoint as load_density_model
from vecfield.density import save_checkpoint as save_density_model


def test_round_trip_tags_format_version_and_kind(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 3, "weights": torch.arange(4.0)}, kind="training")
    loaded = load_checkpoint(path, kind="training")
    assert (loaded["format"], loaded["schema_version"], loaded["kind"], loaded["step"]) == (
        FORMAT, SCHEMA_VERSION, "training", 3)
    torch.testing.assert_close(loaded["weights"], torch.arange(4.0))
    with pytest.raises(CheckpointError, match="is a training checkpoint, not a model checkpoint"):
        load_checkpoint(path, kind="model")
    with pytest.raises(ValueError, match="unknown checkpoint kind 'weights'"):
        save_checkpoint(path, {}, kind="weights")


def test_a_version_1_training_checkpoint_is_upgraded(tmp_path):
    path = tmp_path / "v1.pt"
    torch.save({"format": "vecfield.train.checkpoint", "schema_version": 1, "step": 7}, path)
    loaded = load_checkpoint(path, kind="training")
    assert (loaded["format"], loaded["schema_version"], loaded["step"]) == (FORMAT, SCHEMA_VERSION, 7)


def test_a_legacy_density_model_file_is_upgraded_and_loads(tmp_path):
    torch.manual_seed(0)
    model = GaussianMixture(2, 3).double()
    path = tmp_path / "legacy.pt"  # what vecfield.density.save_checkpoint wrote before the common format
    legacy = {"model_class": "GaussianMixture", "config": model.config, "state_dict": model.state_dict()}
    torch.save(legacy, path)
    restored = load_density_model(path, GaussianMixture)
    x = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(restored.log_prob(x), model.log_prob(x))
    save_density_model(restored, tmp_path / "new.pt")
    assert load_checkpoint(tmp_path / "new.pt")["kind"] == "model"


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "schema_version": SCHEMA_VERSION + 1, "kind": "training"}, path)
    with pytest.raises(CheckpointError, match=r"newer than this vecfield.*upgrade vecfield"):
        load_checkpoint(path)
