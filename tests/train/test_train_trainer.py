"""The training loop: exact stop/resume, logged LR and gradient norms, curriculum, EMA, errors."""

import csv
import math
from collections import namedtuple

import pytest
import torch
from tiny_training import NoisyRegression, dataset, model, trainer
from torch import nn
from torch.utils.data import DataLoader

from vecfield.train import CheckpointError, Trainer, TrainerConfig, WarmupCosineSchedule, load_checkpoint
from vecfield.train.trainer import move_to_device

COMPARED = ("step", "epoch", "loss", "lr", "grad_norm")


def rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def curve(run_dir, columns=COMPARED):
    return [tuple(row[c] for c in columns) for row in rows(run_dir / "train_log.csv")]


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name
    for name, tensor in a.ema_model.state_dict().items():
        assert torch.equal(tensor, b.ema_model.state_dict()[name]), name


def test_stop_and_resume_continues_bit_for_bit(tmp_path):
    with trainer(str(tmp_path / "straight"), validate=True) as straight:
        straight.fit()
    with trainer(str(tmp_path / "stopped"), validate=True) as first:
        summary = first.fit(until_step=17)  # mid-epoch (8 batches per epoch), between checkpoints
    assert summary.step == 17 and summary.checkpoint.name == "step_000000017.pt"
    with trainer(str(tmp_path / "stopped"), validate=True) as resumed:
        assert resumed.step == 17 and (resumed.epoch, resumed.batch_in_epoch) == (2, 1)
        resumed.fit()
    assert curve(tmp_path / "stopped") == curve(tmp_path / "straight")
    assert [r["step"] for r in rows(tmp_path / "stopped" / "train_log.csv")] == [str(s) for s in range(1, 41)]
    val = lambda d: [(r["step"], r["mse"]) for r in rows(d / "val_log.csv")]  # noqa: E731
    assert val(tmp_path / "stopped") == val(tmp_path / "straight")
    assert_same_state(resumed, straight)
    assert resumed.best_value == straight.best_value
    with trainer(str(tmp_path / "stopped"), validate=True) as finished:  # nothing left to do
        assert finished.fit().step == 40
    assert curve(tmp_path / "stopped") == curve(tmp_path / "straight")


def test_stop_and_resume_with_loader_worker_processes(tmp_path):
    """Workers change where batches are built, not which: the resumed curve is still exact."""
    options = {"max_steps": 12, "num_workers": 2}
    with trainer(str(tmp_path / "straight"), **options) as straight:
        straight.fit()
    with trainer(str(tmp_path / "stopped"), **options) as first:
        first.fit(until_step=5)
    with trainer(str(tmp_path / "stopped"), **options) as resumed:
        resumed.fit()
    assert curve(tmp_path / "stopped") == curve(tmp_path / "straight")
    assert_same_state(resumed, straight)


def test_logged_lr_follows_the_schedule_and_training_fits_the_data(tmp_path):
    x, y = dataset().tensors
    with trainer(str(tmp_path), noise=0.0, max_steps=60, lr=3e-2) as run:
        initial = torch.mean((run.model(x, None) - y) ** 2).item()
        run.fit()
        final = torch.mean((run.model(x, None) - y) ** 2).item()
    assert final < 0.5 * initial
    log = rows(tmp_path / "train_log.csv")
    schedule = WarmupCosineSchedule(5, 60, 0.01)
    assert len(log) == 60
    for row in log:
        assert float(row["lr"]) == pytest.approx(3e-2 * schedule(int(row["step"]) - 1), rel=1e-12)


def test_validation_is_the_mean_over_samples_with_the_ema_weights(tmp_path):
    """20 validation samples in batches of 8, 8, 4: the logged MSE is the full-set MSE of the EMA
    model, and summarize_validation turns it into an RMSE."""
    class WithRMSE(NoisyRegression):
        def summarize_validation(self, means):
            return {"mse": means["mse"], "rmse": math.sqrt(means["mse"])}

    val = dataset(n=20, seed=2, dtype=torch.float64)
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=4, batch_size=8, validate_every=4,
                           val_batch_size=8, progress_bar=False)
    with Trainer(WithRMSE(), model(torch.float64), dataset(dtype=torch.float64), config, val_data=val) as run:
        run.fit()
        x, y = val.tensors
        expected = torch.mean((run.ema_model(x, None) - y) ** 2).item()
        raw = torch.mean((run.model(x, None) - y) ** 2).item()
    logged = rows(tmp_path / "val_log.csv")
    assert len(logged) == 1 and logged[0]["step"] == "4"
    assert float(logged[0]["mse"]) == pytest.approx(expected, rel=1e-12) and expected != raw
    assert float(logged[0]["rmse"]) == pytest.approx(math.sqrt(expected), rel=1e-12)


def test_trainer_ema_is_the_exponential_average_of_the_iterates(tmp_path):
    """e_N = d^{N−1}·θ₁ + (1 − d)·Σ_{k≥2} d^{N−k}·θ_k over the weights after each update θ_k."""
    class Recording(NoisyRegression):
        def __init__(self) -> None:
            super().__init__(noise=0.0)
            self.seen: list[torch.Tensor] = []

        def loss(self, model, batch):
            self.seen.append(model.head.bias.detach().clone())  # θ_{k−1} at update k
            return super().loss(model, batch)

    task = Recording()
    d = 0.7
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=6, batch_size=8, ema_decay=d, progress_bar=False)
    with Trainer(task, model(torch.float64), dataset(dtype=torch.float64), config) as run:
        run.fit()
        iterates = [*task.seen[1:], run.model.head.bias.detach()]
        n = len(iterates)
        tail = sum(d ** (n - k) * iterates[k - 1] for k in range(2, n + 1))
        expected = d ** (n - 1) * iterates[0] + (1 - d) * tail
        torch.testing.assert_close(run.ema_model.head.bias, expected, rtol=0, atol=1e-12)


def test_gradient_clipping_bounds_the_norm_and_logs_the_unclipped_norm(tmp_path):
    """Loss 50·Σθ² has gradient 100·θ, so the logged norm is 100·‖θ₀‖ and the applied gradient
    is that vector rescaled to the clipping norm."""
    class Quadratic:
        def loss(self, model, batch):
            return 50.0 * sum((p**2).sum() for p in model.parameters())

    net = model(torch.float64)
    theta0 = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=3, batch_size=8, grad_clip_norm=0.25,
                           progress_bar=False)
    with Trainer(Quadratic(), net, dataset(dtype=torch.float64), config) as run:
        run.fit(until_step=1)
        grad = torch.cat([p.grad.flatten() for p in net.parameters()])
    logged = float(rows(tmp_path / "train_log.csv")[0]["grad_norm"])
    assert logged == pytest.approx(100 * theta0.norm().item(), rel=1e-12)
    assert grad.norm().item() == pytest.approx(0.25, rel=1e-6)
    torch.testing.assert_close(grad, 100 * theta0 * 0.25 / logged, rtol=1e-6, atol=0)


def test_curriculum_values_reach_the_task_and_the_log(tmp_path):
    with trainer(str(tmp_path), max_steps=12, curriculum=[[0, 1], [4, 2], [9, 3]]) as run:
        run.fit(until_step=6)
        assert run.task.curriculum_values == [1, 2]
    with trainer(str(tmp_path), max_steps=12, curriculum=[[0, 1], [4, 2], [9, 3]]) as resumed:
        resumed.fit()
        assert resumed.task.curriculum_values == [2, 3]  # re-announced on resume
    logged = [int(row["curriculum"]) for row in rows(tmp_path / "train_log.csv")]
    assert logged == [1] * 4 + [2] * 5 + [3] * 3


def test_progress_bar_shows_steps_loss_and_lr(tmp_path, capsys):
    with trainer(str(tmp_path), max_steps=3, warmup_steps=1, progress_bar=True) as run:
        run.fit()
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err and "lr=" in err


def test_bf16_autocast_on_cpu_when_requested(tmp_path):
    dtypes: list[torch.dtype] = []

    class DtypeProbe(NoisyRegression):
        def loss(self, model, batch):
            dtypes.append(model(batch[0], None).dtype)
            return super().loss(model, batch)

    config = TrainerConfig(run_dir=str(tmp_path), max_steps=2, batch_size=8, mixed_precision="bf16",
                           progress_bar=False, device="cpu")
    with Trainer(DtypeProbe(), model(), dataset(), config) as run:
        run.fit()
    assert dtypes == [torch.bfloat16, torch.bfloat16]


def test_non_finite_loss_stops_before_the_update(tmp_path):
    class Exploding(NoisyRegression):
        def loss(self, model, batch):
            return super().loss(model, batch) * math.inf

    net = model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=5, batch_size=8, progress_bar=False)
    with (Trainer(Exploding(), net, dataset(), config) as run,
          pytest.raises(FloatingPointError, match="Lower lr")):
        run.fit()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_between_log_steps_a_non_finite_update_is_caught_before_any_checkpoint_holds_it(tmp_path):
    """log_every 4: no host sync at updates 5 and 6; update 6 explodes, the sync at 8 names it and
    the checkpoint of update 4 stays the latest."""

    class ExplodesAtSix(NoisyRegression):
        calls = 0

        def loss(self, model, batch):
            ExplodesAtSix.calls += 1
            scale = math.inf if ExplodesAtSix.calls == 6 else 1.0
            return super().loss(model, batch) * scale

    synced: list[int] = []
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=12, batch_size=8, progress_bar=False,
                           log_every=4, checkpoint_every=4)
    with Trainer(ExplodesAtSix(), model(), dataset(), config) as run:
        original = run._synchronize

        def spy(loss, grad_norm):
            synced.append(run.step + 1)
            return original(loss, grad_norm)

        run._synchronize = spy
        with pytest.raises(FloatingPointError, match=r"updates 5–8.*last good checkpoint .*step_0*4\.pt"):
            run.fit()
        assert synced == [4, 8]
        assert run.store.latest().name == "step_000000004.pt"
    ExplodesAtSix.calls = 6  # no more explosions
    with Trainer(ExplodesAtSix(), model(), dataset(), config) as resumed:
        assert resumed.step == 4  # a resume starts from the last good weights
        resumed.fit()
        assert resumed.step == 12 and math.isfinite(resumed.last_loss)


def test_task_contract_errors_name_the_missing_piece(tmp_path):
    class LossOnly:
        def loss(self, model, batch):
            return model(batch[0], None)  # (B, 1): not a scalar

    config = TrainerConfig(run_dir=str(tmp_path), max_steps=2, batch_size=8, progress_bar=False)
    with Trainer(LossOnly(), model(), dataset(), config) as run, pytest.raises(TypeError, match="scalar"):
        run.fit()
    with pytest.raises(TypeError, match="needs a method validate"):
        Trainer(LossOnly(), model(), dataset(),
                TrainerConfig(run_dir=str(tmp_path), max_steps=2, validate_every=1), val_data=dataset())
    with pytest.raises(TypeError, match="needs a method set_curriculum"):
        Trainer(LossOnly(), model(), dataset(), TrainerConfig(run_dir=str(tmp_path), max_steps=2,
                                                              curriculum=[[0, 1]]))
    with pytest.raises(TypeError, match=r"must be a map-style Dataset .* got a DataLoader"):
        Trainer(NoisyRegression(), model(), DataLoader(dataset()),
                TrainerConfig(run_dir=str(tmp_path), max_steps=2))

    class NoLength(torch.utils.data.Dataset):  # map-style, but without __len__ the sampler cannot shard it
        def __getitem__(self, index):
            return dataset()[index]

    with pytest.raises(TypeError, match=r"must be a map-style Dataset \(with __len__"):
        Trainer(NoisyRegression(), model(), NoLength(), TrainerConfig(run_dir=str(tmp_path), max_steps=2))
    with pytest.raises(ValueError, match="no val_data"):
        Trainer(NoisyRegression(), model(), dataset(),
                TrainerConfig(run_dir=str(tmp_path), max_steps=2, validate_every=1))


def test_batches_of_any_nesting_move_to_the_device():
    Pair = namedtuple("Pair", ["x", "y"])

    class Graph:
        def to(self, device):
            self.device = device
            return self

    batch = {"pair": Pair(torch.ones(2), [torch.zeros(1), "label"]), "graph": Graph(), "n": 3}
    moved = move_to_device(batch, torch.device("cpu"))
    assert isinstance(moved["pair"], Pair) and moved["pair"].y[1] == "label" and moved["n"] == 3
    assert torch.equal(moved["pair"].x, torch.ones(2)) and moved["graph"].device == torch.device("cpu")


def test_resume_refuses_a_changed_config_another_model_or_resume_false(tmp_path):
    with trainer(str(tmp_path), max_steps=6) as run:
        run.fit(until_step=3)
    with pytest.raises(CheckpointError, match=r"config changed \(lr: 0.01 → 0.02\)"):
        trainer(str(tmp_path), max_steps=6, lr=2e-2)
    with pytest.raises(ValueError, match="set resume=true"):
        trainer(str(tmp_path), max_steps=6, resume=False)
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=6, batch_size=8, lr=1e-2, warmup_steps=5,
                           checkpoint_every=3, keep_last=2, ema_decay=0.9, device="cpu")
    with pytest.raises(CheckpointError, match=r"model class vecfield\.nn\.mlp\.MLP, but got .*Linear"):
        Trainer(NoisyRegression(), nn.Linear(4, 1), dataset(), config)

    class OtherTask(NoisyRegression):
        pass

    with pytest.raises(CheckpointError, match=r"task class .*NoisyRegression, but got .*OtherTask"):
        Trainer(OtherTask(), model(), dataset(), config)
    with pytest.raises(CheckpointError, match="trained on 64 samples, train_data now has 72"):
        Trainer(NoisyRegression(), model(), dataset(n=72), config)
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "step_000000003.pt")
    assert checkpoint["metadata"]["note"] == "tiny" and checkpoint["config"]["lr"] == 1e-2
