"""AdamW with weight decay on weight matrices only, and its warm-up + cosine LR scheduler."""

from __future__ import annotations

from torch import nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR

from vecfield.train.config import TrainerConfig
from vecfield.train.schedules import WarmupCosineSchedule

NO_DECAY_MODULES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed AdamW parameter group.

    Rule: a parameter is decayed iff it has ≥ 2 dimensions (a weight matrix or convolution
    kernel) and its owning module is not an embedding (``nn.Embedding``/``nn.EmbeddingBag``).
    Biases, normalization scales and shifts (1-D), embeddings and free 0/1-D parameters are
    not decayed. Shared parameters appear once; frozen ones (``requires_grad=False``) are left out.
    Returns ``[{"params": decayed, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0}]``.
    """
    decayed, undecayed, seen = [], [], set()
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if id(param) in seen or not param.requires_grad:
                continue
            seen.add(id(param))
            if param.ndim >= 2 and not isinstance(module, NO_DECAY_MODULES):
                decayed.append(param)
            else:
                undecayed.append(param)
    if not decayed and not undecayed:
        raise ValueError("the model has no trainable parameters; unfreeze some (requires_grad=True)")
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": undecayed, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: TrainerConfig) -> AdamW:
    """AdamW(lr, betas, eps) over :func:`weight_decay_groups` (decoupled decay, Loshchilov & Hutter)."""
    return AdamW(weight_decay_groups(model, config.weight_decay), lr=config.lr, betas=config.betas,
                 eps=config.eps)


def build_scheduler(optimizer: AdamW, config: TrainerConfig) -> LambdaLR:
    """LambdaLR with :class:`WarmupCosineSchedule` (restarted at each curriculum phase with
    ``lr_restart_per_phase``); ``scheduler.step()`` once after every update."""
    restarts = tuple(start for start, _ in config.curriculum[1:] if start < config.max_steps) \
        if config.lr_restart_per_phase else ()
    schedule = WarmupCosineSchedule(config.warmup_steps, config.max_steps, config.min_lr_ratio, restarts)
    return LambdaLR(optimizer, lr_lambda=schedule)
