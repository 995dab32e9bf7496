"""The training loop, generic over a task (what the loss is) and a model (what is trained)."""

from __future__ import annotations

import gc
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

from vecfield._version import __version__
from vecfield.checkpoints import CheckpointError, check_plain
from vecfield.train.allocator import set_mmap_threshold
from vecfield.train.checkpoint import (
    CheckpointStore,
    check_identity,
    class_path,
    load_checkpoint,
    load_initial_weights,
)
from vecfield.train.config import RUNTIME_FIELDS, TrainerConfig
from vecfield.train.distributed import DistributedContext
from vecfield.train.ema import build_ema, ema_state, load_ema_state
from vecfield.train.logs import RunLogger
from vecfield.train.optim import build_optimizer, build_scheduler
from vecfield.train.pace import SlowStepWatch
from vecfield.train.rng import capture_rng_state, restore_rng_state, seed_everything
from vecfield.train.sampler import ShardedEpochSampler
from vecfield.train.schedules import Curriculum

TRAIN_COLUMNS = ["step", "epoch", "loss", "lr", "grad_norm", "wallclock_s"]


class Task(Protocol):
    """What the trainer optimizes. Required: ``loss``. Optional methods, checked when needed:

    - ``validate(model, batch) -> dict[str, float]``: means over the samples of one validation
      batch (needs ``val_data``); the trainer averages them over batches weighted by batch size,
      m = Σ_k n_k·m_k / Σ_k n_k, i.e. the mean over all validation samples;
    - ``summarize_validation(means: dict[str, float]) -> dict[str, float]``: turns those means
      into the logged metrics (e.g. RMSE = √(mean MSE), WeatherBench2's definition);
    - ``set_curriculum(value: int) -> None``: receives the curriculum value (e.g. the number of
      autoregressive steps) before the first update that uses it (needs ``config.curriculum``).
    """

    def loss(self, model: nn.Module, batch: Any) -> Tensor:
        """Scalar loss of one (per-process) batch, mean-reduced over its samples.

        ``model`` may be wrapped (DistributedDataParallel, torch.compile): call it, and keep
        references to submodules or attributes you need from the bare model given to the Trainer.
        """
        ...


@dataclass(frozen=True)
class TrainSummary:
    """What ``fit`` reached: the final step and loss, the best validation value and the last checkpoint."""

    step: int
    loss: float | None
    best_value: float | None
    checkpoint: Path | None


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts, lists and tuples, and objects with ``.to`` such as graph batches)
    moved to ``device``; everything else unchanged."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(value, device) for value in batch)
    if callable(getattr(batch, "to", None)) and not isinstance(batch, type):
        return batch.to(device)
    return batch


class Trainer:
    """AdamW + warm-up/cosine LR + clipping + EMA + bf16 autocast + checkpoints/resume + DDP.

    Shapes are the task's business: the trainer passes whatever the DataLoader collates.
    ``train_data`` is a map-style Dataset; the trainer builds its loader with a
    :class:`ShardedEpochSampler` so that the data order is a function of (seed, epoch) and a run
    can resume mid-epoch. ``metadata`` (normalization statistics, graph spec, the experiment's
    full config…) is stored in every checkpoint; it must hold only tensors and plain values.

    Construction sets up everything, including resuming from ``<run_dir>/checkpoints`` when it
    holds a checkpoint and ``config.resume`` is true; :meth:`fit` then trains to ``max_steps``.
    Use as a context manager (or call :meth:`close`) to release the process group and log files.
    """

    def __init__(self, task: Task, model: nn.Module, train_data: Dataset, config: TrainerConfig, *,
                 val_data: Dataset | None = None, collate_fn: Callable[[list[Any]], Any] | None = None,
                 metadata: Mapping[str, Any] | None = None) -> None:
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        for name, data in (("train_data", train_data), ("val_data", val_data)):
            if isinstance(data, DataLoader | IterableDataset) or not isinstance(data, Sized | None):
                raise TypeError(f"{name} must be a map-style Dataset (with __len__ and __getitem__), got "
                                f"a {type(data).__name__}; pass the dataset (and collate_fn): the trainer "
                                "builds its own loader so that the data order can be resumed exactly")
        _require_method(task, "loss", "always")
        if val_data is not None:
            if config.validate_every is None:
                raise ValueError("val_data was given but validate_every is not set; set it (in steps)")
            _require_method(task, "validate", "when val_data is given")
        elif config.validate_every is not None:
            raise ValueError("validate_every is set but no val_data was given; pass val_data or unset it")
        if config.curriculum:
            _require_method(task, "set_curriculum", "when config.curriculum is set")
        self.metadata = dict(metadata or {})
        check_plain(self.metadata, "metadata")
        self.task, self.config = task, config
        self.context = DistributedContext(config.device, config.backend)
        self.device = self.context.device
        if self.device.type == "cpu" and config.cpu_mmap_threshold is not None:
            set_mmap_threshold(config.cpu_mmap_threshold)  # bounded peak RSS (vecfield/train/allocator.py)
        self.run_dir = Path(config.run_dir)
        self.store = CheckpointStore(self.run_dir / "checkpoints", config.keep_last)
        if config.init_from is not None and self.store.latest() is None:
            load_initial_weights(config.init_from, model)  # a fresh run starts from them (a resume does not)
        self.model = model.to(self.device)
        self.ema = build_ema(self.model, config.ema_decay) if config.ema_decay is not None else None
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.curriculum = Curriculum(config.curriculum) if config.curriculum else None
        self.autocast = config.mixed_precision == "bf16" or (
            config.mixed_precision == "auto" and self.device.type == "cuda")
        forward_model: nn.Module = self.model
        if self.context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            forward_model = DistributedDataParallel(self.model, device_ids=device_ids)
        # cast: torch.compile of an nn.Module returns an nn.Module (OptimizedModule); its stub says Callable
        self.forward_model = cast(nn.Module, torch.compile(forward_model)) if config.compile \
            else forward_model

        train_size = len(cast(Sized, train_data))  # checked above: a map-style dataset with __len__
        self.sampler = ShardedEpochSampler(train_size, config.batch_size, config.seed, config.shuffle,
                                           self.context.rank, self.context.world_size)
        self.loader_generator = torch.Generator()  # keeps the DataLoader off the global RNG
        self.loader = DataLoader(train_data, batch_size=self.sampler.local_batch_size, sampler=self.sampler,
                                 num_workers=config.num_workers, collate_fn=collate_fn, drop_last=True,
                                 generator=self.loader_generator, pin_memory=self.device.type == "cuda")
        self.val_loader = None
        if val_data is not None and self.context.is_main:
            self.val_loader = DataLoader(val_data, batch_size=config.val_batch_size or config.batch_size,
                                         shuffle=False, collate_fn=collate_fn, num_workers=config.num_workers)

        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best_value: float | None = None
        self.elapsed_s = 0.0
        self.last_loss: float | None = None
        self.last_checkpoint: Path | None = None
        self._curriculum_value: int | None = None
        self._nonfinite: Tensor | None = None  # non-finite updates since the last synchronization
        resume_step = self._restore()
        self._saved_step = self._synced_step = self.step
        self.logger: RunLogger | None = None
        if self.context.is_main:
            self.store.prepare()
            columns = TRAIN_COLUMNS + (["curriculum"] if self.curriculum else [])
            self.logger = RunLogger(self.run_dir, columns, config.tensorboard, resume_step)
        self.context.barrier()

    # ------------------------------------------------------------------ state
    @property
    def ema_model(self) -> nn.Module:
        """The EMA weights as a bare module (the trained model itself when the EMA is off)."""
        return self.ema.module if self.ema is not None else self.model

    def _restore(self) -> int | None:
        """Resume from the newest step checkpoint, or seed a fresh run; returns the resumed step."""
        latest = self.store.latest()
        if latest is None:
            seed_everything(self.config.seed + self.context.rank)
            return None
        if not self.config.resume:
            raise ValueError(f"{self.run_dir} already holds checkpoints (newest: {latest.name}); set "
                             "resume=true to continue that run, or choose a new run_dir")
        checkpoint = load_checkpoint(latest)
        check_identity(checkpoint, self.model, self.task)
        self._check_config(checkpoint["config"], latest)
        position = checkpoint["data_position"]
        if position["num_samples"] != self.sampler.num_samples:
            raise CheckpointError(
                f"cannot resume {latest}: it was trained on {position['num_samples']} samples, train_data "
                f"now has {self.sampler.num_samples}, so the saved data order no longer applies; use the "
                "same training data, or start a new run_dir")
        self.model.load_state_dict(checkpoint["model"])
        if self.ema is not None:
            assert checkpoint["ema"] is not None, "equal configs imply equal ema_decay"
            load_ema_state(self.ema, checkpoint["ema"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.step = checkpoint["step"]
        self.epoch, self.batch_in_epoch = position["epoch"], position["batch"]
        state = checkpoint["trainer_state"]
        self.best_value, self.elapsed_s = state["best_value"], state["elapsed_s"]
        rng = checkpoint["rng"]
        if rng["world_size"] == self.context.world_size:
            restore_rng_state(rng["ranks"][self.context.rank])
        else:
            warnings.warn(f"{latest} was written by {rng['world_size']} processes and is resumed by "
                          f"{self.context.world_size}: the data order continues exactly, but random draws "
                          "inside the task are reseeded, so the run will not match an uninterrupted one",
                          stacklevel=3)
            seed_everything(self.config.seed + self.context.rank + 1_000_003 * self.step)
        return self.step

    def _check_config(self, stored: Mapping[str, Any], path: Path) -> None:
        current = self.config.to_dict()
        differences = {key: (stored.get(key), value) for key, value in current.items()
                       if key not in RUNTIME_FIELDS and stored.get(key) != value}
        if differences:
            listed = ", ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in sorted(differences.items()))
            raise CheckpointError(f"cannot resume {path}: the config changed ({listed}). Restore those "
                                  "values to continue the run, or start a new run_dir")

    def _checkpoint(self) -> dict[str, Any]:
        return {
            "vecfield_version": __version__, "torch_version": str(torch.__version__),
            "model_class": class_path(self.model), "task_class": class_path(self.task),
            "step": self.step,
            "data_position": {"epoch": self.epoch, "batch": self.batch_in_epoch,
                              "num_samples": self.sampler.num_samples},
            "model": self.model.state_dict(),
            "ema": ema_state(self.ema) if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "config": self.config.to_dict(),
            "trainer_state": {"best_value": self.best_value, "elapsed_s": self.elapsed_s},
            "metadata": self.metadata,
        }

    def save_checkpoint(self, best: bool = False) -> None:
        """Write ``step_<step>.pt`` (or ``best.pt``) on rank 0; every process must call it (it gathers
        the per-process RNG states and ends with a barrier, so no process runs ahead of the file)."""
        rng_states = self.context.gather(capture_rng_state())
        if self.context.is_main:
            checkpoint = self._checkpoint()
            checkpoint["rng"] = {"world_size": self.context.world_size, "ranks": rng_states}
            if best:
                self.store.save_best(checkpoint)
            else:
                self.last_checkpoint = self.store.save(self.step, checkpoint)
        if not best:
            self._saved_step = self.step
        self.context.barrier()

    # ------------------------------------------------------------------ loop
    def _batches(self) -> Iterator[tuple[int, Any]]:
        """(epoch, batch) pairs from the saved data position on, epoch after epoch."""
        while True:
            self.sampler.set_position(self.epoch, self.batch_in_epoch)
            worker_seed = np.random.SeedSequence([self.config.seed, self.epoch]).generate_state(1)[0]
            self.loader_generator.manual_seed(int(worker_seed))
            epoch = self.epoch
            for batch in self.loader:
                yield epoch, batch

    def _update(self, batch: Any, synchronize: bool) -> tuple[float, float] | None:
        """One optimizer step.

        The loss and the gradient norm stay on the device between synchronization points: a
        non-finite one is counted on the device (no host sync). With ``synchronize`` (log,
        validation and checkpoint steps, the last step) the count, the loss (mean over processes)
        and the pre-clipping gradient norm come to the host before the weights are updated; a
        non-finite update since the last synchronization raises, so no checkpoint ever holds its
        weights. With ``log_every: 1`` (the default) every step synchronizes and a non-finite update
        never touches the weights. Returns (loss, grad_norm) when synchronizing, else None.
        """
        batch = move_to_device(batch, self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.task.loss(self.forward_model, batch)
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
            raise TypeError(f"{class_path(self.task)}.loss must return a scalar tensor, got {got}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.config.grad_clip_norm if self.config.grad_clip_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
        if self._nonfinite is None:
            self._nonfinite = torch.zeros((), dtype=torch.float64, device=self.device)
        self._nonfinite += (~finite).to(torch.float64)
        values = self._synchronize(loss, grad_norm) if synchronize else None
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return values

    def _synchronize(self, loss: Tensor, grad_norm: Tensor) -> tuple[float, float]:
        """Bring the update's loss (mean over processes) and gradient norm to the host; raise when an
        update since the last synchronization was not finite (on any process)."""
        assert self._nonfinite is not None
        # one collective for both: the loss's mean and the mean count of non-finite updates
        loss_value, bad_mean = self.context.mean(torch.stack([loss.detach().to(torch.float64),
                                                              self._nonfinite])).tolist()
        bad_updates = bad_mean * self.context.world_size
        grad_value = float(grad_norm)
        self._nonfinite.zero_()
        if bad_updates > 0 or not (math.isfinite(loss_value) and math.isfinite(grad_value)):
            since = self._synced_step + 1
            where = f"update {since}" if since == self.step + 1 else f"updates {since}–{self.step + 1}"
            raise FloatingPointError(
                f"non-finite loss or gradient norm in {where} (this one: loss {loss_value}, gradient norm "
                f"{grad_value}); no checkpoint holds those weights. Lower lr, lengthen warmup_steps, set "
                f"grad_clip_norm, or check the data; the last good checkpoint is {self.store.latest()}")
        self._synced_step = self.step + 1
        return loss_value, grad_value

    def _validate(self) -> dict[str, float] | None:
        """Sample-weighted mean of ``task.validate`` over the validation loader, then the task's
        ``summarize_validation`` if it has one (rank 0 only; None elsewhere)."""
        if self.val_loader is None:
            return None
        model = self.ema_model if self.config.validate_with_ema else self.model
        was_training = model.training
        model.eval()
        totals: dict[str, float] = {}
        num_samples = len(cast(Sized, self.val_loader.dataset))  # __init__ refuses data without __len__
        batch_size = self.val_loader.batch_size
        assert batch_size is not None, "__init__ builds the validation loader with a batch size"
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            for k, batch in enumerate(self.val_loader):
                # validate is optional, so not in the Task protocol; __init__ checked that the task has it
                metrics = self.task.validate(model, move_to_device(batch, self.device))  # type: ignore[attr-defined]
                if k and set(metrics) != set(totals):
                    raise ValueError(f"validate returned metrics {sorted(metrics)} after {sorted(totals)}; "
                                     "return the same names for every batch")
                weight = min(batch_size, num_samples - k * batch_size)  # the last batch may be short
                for name, value in metrics.items():
                    totals[name] = totals.get(name, 0.0) + weight * float(value)
        model.train(was_training)
        if num_samples == 0:
            raise ValueError("the validation data is empty; give it at least one sample")
        means = {name: total / num_samples for name, total in totals.items()}
        summarize = getattr(self.task, "summarize_validation", None)
        return {name: float(value) for name, value in summarize(means).items()} if summarize else means

    def _improves(self, metrics: dict[str, float] | None) -> bool:
        name = self.config.best_metric
        if metrics is None or name is None:
            return False
        if name not in metrics:
            raise ValueError(f"best_metric {name!r} is not among the validation metrics {sorted(metrics)}")
        value = metrics[name]
        better = self.best_value is None or (
            value < self.best_value if self.config.best_mode == "min" else value > self.best_value)
        if better:
            self.best_value = value
        return better

    def fit(self, until_step: int | None = None) -> TrainSummary:
        """Train from the current step to ``max_steps``: log, validate and checkpoint on schedule.

        ``until_step`` stops earlier (training in chunks): a checkpoint is written at the stop, and
        a later ``fit`` — or a new Trainer on the same run_dir — continues exactly where it left off.
        """
        config = self.config
        target = config.max_steps if until_step is None else min(until_step, config.max_steps)
        progress = tqdm(total=config.max_steps, initial=self.step, unit="step", desc="train",
                        dynamic_ncols=True, disable=not (self.context.is_main and config.progress_bar))
        batches = self._batches()
        clock_start, elapsed_before = time.monotonic(), self.elapsed_s
        watch = SlowStepWatch()
        self.model.train()
        try:
            while self.step < target:
                epoch, batch = next(batches)
                if self.curriculum is not None:
                    value = self.curriculum.value_at(self.step)
                    if value != self._curriculum_value:
                        # optional, so not in the Task protocol; __init__ checked that the task has it
                        self.task.set_curriculum(value)  # type: ignore[attr-defined]
                        self._curriculum_value = value
                lr = self.optimizer.param_groups[0]["lr"]
                next_step = self.step + 1
                log_now = next_step % config.log_every == 0 or next_step == config.max_steps
                synchronize = log_now or next_step == target or next_step % config.checkpoint_every == 0 or (
                    config.validate_every is not None and next_step % config.validate_every == 0)
                update_start = time.monotonic()
                values = self._update(batch, synchronize)
                slow = watch.observe(next_step, time.monotonic() - update_start)
                if slow is not None and self.context.is_main:
                    warnings.warn(slow, stacklevel=2)
                self.step += 1
                self.batch_in_epoch += 1
                if self.batch_in_epoch == self.sampler.batches_per_epoch:
                    self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                self.elapsed_s = elapsed_before + time.monotonic() - clock_start
                last = self.step == config.max_steps
                if values is not None:
                    loss, grad_norm = values
                    self.last_loss = loss
                    if log_now and self.logger is not None:
                        row = {"step": self.step, "epoch": epoch, "loss": loss, "lr": lr,
                               "grad_norm": grad_norm, "wallclock_s": round(self.elapsed_s, 3),
                               "curriculum": self._curriculum_value}
                        self.logger.log_train(row if self.curriculum else {k: row[k] for k in TRAIN_COLUMNS})
                    progress.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}", refresh=False)
                progress.update(1)
                if config.validate_every is not None and (self.step % config.validate_every == 0 or last):
                    metrics = self._validate()
                    if metrics is not None and self.logger is not None:
                        self.logger.log_val(self.step, round(self.elapsed_s, 3), metrics)
                    if self.context.gather(self._improves(metrics))[0]:
                        self.save_checkpoint(best=True)
                if self.step % config.checkpoint_every == 0 or last:
                    self.save_checkpoint()
            if self._saved_step != self.step:
                self.save_checkpoint()
        finally:
            progress.close()
        return TrainSummary(self.step, self.last_loss, self.best_value, self.last_checkpoint)

    def close(self) -> None:
        """Close the logs and destroy the process group if this trainer created it.

        The DDP wrapper is released first, while the group is idle: its Reducer holds the gloo group,
        and if the group's last reference went with the wrapper at interpreter exit, the destructor
        (joining gloo's worker threads, GIL held) could deadlock with a worker that needs the GIL to
        free a finished collective (seen in about 1 of 8 two-process runs)."""
        if self.logger is not None:
            self.logger.close()
        if self.context.distributed:
            self.context.barrier()
            self.forward_model = self.model
            gc.collect()
        self.context.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _require_method(task: object, name: str, when: str) -> None:
    if not callable(getattr(task, name, None)):
        raise TypeError(f"the task {class_path(task)} needs a method {name}() {when}; "
                        "see vecfield.train.Task")
