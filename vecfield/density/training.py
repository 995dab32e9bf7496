"""One training function for every density model (see ``vecfield.density.contract``)."""

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from vecfield.density.contract import DirectlyFittable, GradientTrainable
from vecfield.density.evaluation import Dequantization


@dataclass(frozen=True)
class TrainSettings:
    """Minibatch training: Adam with a cosine learning-rate decay and gradient-norm clipping.

    ema_decay: when set, an exponential moving average of the weights (torch's ``AveragedModel``,
    θ̄ ← decay·θ̄ + (1 − decay)·θ after every step) replaces the trained weights at the end, as
    flow-matching and diffusion models are usually evaluated. seed: minibatches and dequantization.
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


def fit(model: GradientTrainable | DirectlyFittable, train: Tensor, settings: TrainSettings | None = None,
        dequantization: Dequantization | None = None, progress: bool = False) -> list[float]:
    """Train ``model`` on ``train`` (N, *event) and return the per-step training losses.

    - models with ``fit`` (the Gaussian mixture) are fitted in one call (EM), on one
      dequantized draw when ``dequantization`` is given; the returned list is empty;
    - models with ``training_loss`` get ``settings.steps`` Adam steps on random minibatches,
      dequantized afresh at each step. Flows with data-dependent layers (Glow's ActNorm) that are
      not yet initialized are initialized first, explicitly, on a batch of ``init_batch_size``.
    """
    settings = settings or TrainSettings()
    generator = torch.Generator().manual_seed(settings.seed)
    if train.shape[0] < 2:
        raise ValueError(f"need at least 2 training examples, got {train.shape[0]}")

    def prepare(batch: Tensor) -> Tensor:
        return dequantization(batch, generator) if dequantization is not None else batch

    if isinstance(model, GradientTrainable):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"{type(model).__name__} has training_loss(x) but is not a torch.nn.Module; "
                            "gradient training needs its parameters(), train() and state_dict()")
        params = list(model.parameters())
        dtype = params[0].dtype
        initialize = getattr(model, "initialize", None)
        if initialize is not None and not model.initialized:
            idx = torch.randperm(train.shape[0], generator=generator)[: settings.init_batch_size]
            initialize(prepare(train[idx]).to(dtype))
        optimizer = torch.optim.Adam(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / settings.steps)))
        losses: list[float] = []
        average = None if settings.ema_decay is None else AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema_decay), use_buffers=True)
        model.train()
        for _ in tqdm(range(settings.steps), disable=not progress, desc=type(model).__name__):
            idx = torch.randint(0, train.shape[0], (settings.batch_size,), generator=generator)
            loss = model.training_loss(prepare(train[idx]).to(dtype))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss became {float(loss)}; lower learning_rate "
                                         f"(now {settings.learning_rate}) or max_grad_norm")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            schedule.step()
            if average is not None:
                average.update_parameters(model)
            losses.append(float(loss.detach()))
        if average is not None:
            model.load_state_dict(average.module.state_dict())
        model.eval()
        return losses
    if isinstance(model, DirectlyFittable):
        model.fit(prepare(train), generator=generator)
        return []
    raise TypeError(f"{type(model).__name__} is not a density model vecfield can train: it needs either "
                    f"training_loss(x) (gradient training) or fit(x, generator) (EM / closed form)")
