"""One training function for every density model (see ``vecfield.density.contract``): EM for the
models that fit in closed form, the package's one ``Trainer`` for the gradient-trained ones."""

import tempfile
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vecfield.density.contract import DirectlyFittable, GradientTrainable
from vecfield.density.evaluation import Dequantization
from vecfield.train import Trainer, TrainerConfig
from vecfield.train.datasets import TensorRows


@dataclass(frozen=True)
class TrainSettings:
    """Minibatch training: AdamW with a cosine learning-rate decay to zero and gradient-norm clipping.

    The density presets' short names for the ``TrainerConfig`` options (``trainer_config``):
    steps → max_steps, learning_rate → lr, max_grad_norm → grad_clip_norm. ema_decay: when set, an
    exponential moving average of the weights (θ̄ ← decay·θ̄ + (1 − decay)·θ after every step)
    replaces the trained weights at the end, as flow-matching and diffusion models are usually
    evaluated. seed: the data order, dequantization and the data-dependent initialization.
    """

    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_grad_norm: float = 10.0
    init_batch_size: int = 512
    seed: int = 0
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "init_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) or None, got {self.ema_decay}")

    def trainer_config(self, run_dir: str, device: str, progress: bool) -> TrainerConfig:
        """The Trainer's options: no warm-up, cosine to zero, a checkpoint at the end only, per-step logs."""
        return TrainerConfig(
            run_dir=run_dir, max_steps=self.steps, batch_size=self.batch_size, lr=self.learning_rate,
            warmup_steps=0, min_lr_ratio=0.0, weight_decay=self.weight_decay,
            grad_clip_norm=self.max_grad_norm, seed=self.seed,
            ema_decay=self.ema_decay or None,  # a decay of 0 keeps the last weights: no average
            checkpoint_every=self.steps, keep_last=1, log_every=1, mixed_precision="off", device=device,
            progress_bar=progress, resume=False)


class DensityTask:
    """The ``vecfield.train`` task of a density model: ``model.training_loss`` (NLL, −ELBO, …) of
    each batch (B, *event), dequantized afresh (with the trainer's seeded global generator, so a
    run is reproducible) when the data are integer levels. Keeps every step's loss on the device."""

    def __init__(self, dtype: torch.dtype, dequantization: Dequantization | None = None) -> None:
        self.dtype, self.dequantization = dtype, dequantization
        self.losses: list[Tensor] = []

    def loss(self, model: nn.Module, batch: Tensor) -> Tensor:
        if self.dequantization is not None:
            batch = self.dequantization(batch)
        loss = model.training_loss(batch.to(self.dtype))  # type: ignore[operator]  # GradientTrainable
        self.losses.append(loss.detach())
        return loss


def fit(model: GradientTrainable | DirectlyFittable, train: Tensor, settings: TrainSettings | None = None,
        dequantization: Dequantization | None = None, progress: bool = False,
        run_dir: str | None = None) -> list[float]:
    """Train ``model`` on ``train`` (N, *event) and return the per-step training losses.

    - models with ``fit`` (the Gaussian mixture) are fitted in one call (EM), on one
      dequantized draw when ``dequantization`` is given; the returned list is empty;
    - models with ``training_loss`` are trained by ``vecfield.train.Trainer`` for
      ``settings.steps`` steps on shuffled minibatches (an epoch sees every example once),
      dequantized afresh at each step, on the device the model is on. Flows with data-dependent
      layers (Glow's ActNorm) that are not yet initialized are initialized first, explicitly, on
      a batch of ``init_batch_size``. The run's logs and its final checkpoint go to ``run_dir``
      (a temporary folder, removed afterwards, when None).
    """
    settings = settings or TrainSettings()
    generator = torch.Generator().manual_seed(settings.seed)
    if train.shape[0] < 2:
        raise ValueError(f"need at least 2 training examples, got {train.shape[0]}")

    def prepare(batch: Tensor) -> Tensor:
        return dequantization(batch, generator) if dequantization is not None else batch

    if isinstance(model, GradientTrainable):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{type(model).__name__} has training_loss(x) but is not a torch.nn.Module; "
                            "gradient training needs its parameters(), train() and state_dict()")
        if settings.batch_size > train.shape[0]:
            raise ValueError(f"batch_size {settings.batch_size} exceeds the {train.shape[0]} training "
                             "examples; lower batch_size")
        param = next(model.parameters())
        initialize = getattr(model, "initialize", None)
        if initialize is not None and not model.initialized:
            idx = torch.randperm(train.shape[0], generator=generator)[: settings.init_batch_size]
            initialize(prepare(train[idx]).to(param.dtype))
        task = DensityTask(param.dtype, dequantization)
        with tempfile.TemporaryDirectory(prefix="vecfield-fit-") as scratch:
            config = settings.trainer_config(run_dir or scratch, str(param.device), progress)
            with Trainer(task, model, TensorRows(train), config) as trainer:
                trainer.fit()
                if trainer.ema is not None:
                    model.load_state_dict(trainer.ema_model.state_dict())
        model.eval()
        return torch.stack(task.losses).tolist()
    if isinstance(model, DirectlyFittable):
        model.fit(prepare(train), generator=generator)
        return []
    raise TypeError(f"{type(model).__name__} is not a density model vecfield can train: it needs either "
                    f"training_loss(x) (gradient training) or fit(x, generator) (EM / closed form)")
