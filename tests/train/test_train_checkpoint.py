"""Checkpoint safety: pickle payloads refused unexecuted, atomic writes, schema/identity checks, rotation."""

import csv

import pytest
import torch
from tiny_training import model, trainer

import vecfield.files as files
from vecfield.checkpoints import FORMAT, SCHEMA_VERSION, check_plain
from vecfield.train import CheckpointError, load_checkpoint, load_model_weights
from vecfield.train.checkpoint import CheckpointStore, save_checkpoint


class CreatesFile:
    """Unpickling this object opens (creates) ``marker`` for writing — a stand-in for any payload."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plain(step: int = 1, **extra) -> dict:
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "kind": "training", "step": step, **extra}


def test_a_pickle_payload_is_refused_without_executing_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(plain(payload=CreatesFile(str(marker))), path)
    with pytest.raises(CheckpointError, match=r"refused to load .*nothing was executed.*GLOBAL io.open"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # control: an unrestricted load does run the payload
    assert marker.exists()


def test_resuming_from_a_poisoned_run_dir_is_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(plain(model=CreatesFile(str(marker))), folder / "step_000000005.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        trainer(str(tmp_path / "run"))
    assert not marker.exists()


def test_schema_mismatch_names_both_versions_and_what_to_do(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": FORMAT, "schema_version": 0, "vecfield_version": "0.0.1"}, path)
    expected = (rf"schema version 0, .*reads schema versions up to {SCHEMA_VERSION}\. "
                r"Load it with the vecfield version that wrote it \(0\.0\.1\)")
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)


def test_foreign_and_truncated_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a vecfield checkpoint"):
        load_checkpoint(foreign)
    good = tmp_path / "good.pt"
    save_checkpoint(good, plain(weights=torch.ones(100)))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_an_interrupted_write_leaves_the_previous_checkpoint_valid(tmp_path, monkeypatch):
    path = tmp_path / "step_000000001.pt"
    save_checkpoint(path, plain(1, weights=torch.arange(5.0)))

    def dies_mid_write(obj, file):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # e.g. Ctrl-C during torch.save

    monkeypatch.setattr(torch, "save", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, plain(2, weights=torch.zeros(5)))
    monkeypatch.undo()
    checkpoint = load_checkpoint(path)
    assert checkpoint["step"] == 1 and torch.equal(checkpoint["weights"], torch.arange(5.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # the temporary was removed


def test_a_crashed_writers_temporary_is_ignored_and_swept(tmp_path):
    store = CheckpointStore(tmp_path, keep_last=2)
    store.prepare()
    store.save(3, plain(3))
    stale = files.temporary_name(store.step_path(6))
    stale.write_bytes(b"partial")  # what SIGKILL during a write leaves behind
    assert store.latest() == store.step_path(3)
    store.prepare()
    assert not stale.exists() and store.saved_steps() == [3]


def test_rotation_keeps_the_last_k_and_the_best(tmp_path):
    with trainer(str(tmp_path), validate=True, max_steps=20, keep_last=2) as run:
        run.fit()
        ema_weights = {k: v.clone() for k, v in run.ema_model.state_dict().items()}
    assert CheckpointStore(tmp_path / "checkpoints", 2).saved_steps() == [18, 20]
    with open(tmp_path / "val_log.csv") as file:
        val = [(float(r["mse"]), int(r["step"])) for r in csv.DictReader(file)]
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert (best["trainer_state"]["best_value"], best["step"]) == min(val)
    fresh = model()
    checkpoint = load_model_weights(tmp_path / "checkpoints" / "step_000000020.pt", fresh)
    assert all(torch.equal(v, ema_weights[k]) for k, v in fresh.state_dict().items())
    assert torch.equal(checkpoint["metadata"]["stats"]["mean"], torch.zeros(4))
    assert checkpoint["data_position"] == {"epoch": 2, "batch": 4, "num_samples": 64}
    assert checkpoint["rng"]["world_size"] == 1


def test_metadata_must_be_plain_values(tmp_path):
    import numpy as np

    with pytest.raises(TypeError, match=r"metadata\['stats'\] holds a numpy.ndarray.*torch.from_numpy"):
        check_plain({"stats": np.zeros(3)})
    with pytest.raises(TypeError, match=r"\[.version.\] holds a torch.torch_version.TorchVersion"):
        check_plain({"version": torch.__version__})  # TorchVersion would not load back
    check_plain({"graph": {"levels": [0, 1, 2], "refine": (2, 3)}, "mean": torch.ones(2), "name": None})


def test_init_from_starts_a_fresh_run_from_the_ema_weights_and_a_resume_ignores_it(tmp_path):
    source = trainer(str(tmp_path / "source"), max_steps=6)
    source.fit()
    source.close()
    stored = load_checkpoint(source.store.latest())
    ema_weights = stored["ema"]["weights"]
    assert any(not torch.equal(ema_weights[k], stored["model"][k]) for k in ema_weights)  # the EMA is chosen
    tuned = trainer(str(tmp_path / "tuned"), init_from=str(source.store.latest()), max_steps=8)
    for name, value in tuned.model.state_dict().items():
        assert torch.equal(value, ema_weights[name]), name
        assert torch.equal(tuned.ema_model.state_dict()[name], ema_weights[name]), name  # and the EMA
    tuned.fit(until_step=4)
    tuned.close()
    after = {k: v.clone() for k, v in tuned.model.state_dict().items()}
    resumed = trainer(str(tmp_path / "tuned"), init_from=str(source.store.latest()), max_steps=8)
    assert resumed.step == 4
    for name, value in resumed.model.state_dict().items():  # the resume's weights, not init_from's
        assert torch.equal(value, after[name]), name
    resumed.close()


def test_init_from_a_checkpoint_of_another_architecture_lists_the_differences(tmp_path):
    from tiny_training import NoisyRegression, config, dataset

    from vecfield.nn import MLP
    from vecfield.train import Trainer

    source = trainer(str(tmp_path / "source"), max_steps=6)
    source.fit()
    source.close()
    wider = MLP(4, out_features=1, hidden_features=32, depth=2, time_features=0)

    with pytest.raises(CheckpointError, match=r"init_from .*do not fit this model \(shape \(checkpoint ≠ "
                                              r"model\): .*\(16, 4\) ≠ \(32, 4\)"):
        Trainer(NoisyRegression(), wider, dataset(),
                config(str(tmp_path / "wide"), init_from=str(source.store.latest())))
    with pytest.raises(ValueError, match="init_from must be the path"):
        config(str(tmp_path / "x"), init_from="")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        Trainer(NoisyRegression(), wider, dataset(),
                config(str(tmp_path / "y"), init_from=str(tmp_path / "no.pt")))
