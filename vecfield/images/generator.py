"""The image generator: a UNet vector field (flow matching, DDPM) or Glow, trained with
:class:`vecfield.train.Trainer` and sampled from its EMA weights into PNG grids.

    path = train_image_generator(load_image_config("configs/digits_fm.yaml"))
    generator, info = load_image_generator(path)            # EMA weights, stored config
    paths = write_sample_grids(generator, info, sample_config, "runs/digits_fm/samples")

Images enter as integer levels k (N, C, H, W) and are mapped to [−1, 1] by ``to_signed``
(2k/(L−1) − 1) or, with ``data.dequantize``, by uniform dequantization 2(k+u)/L − 1 (the density
models' convention, so that bits/dim compare). Samples go back to levels by the inverse map.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from vecfield.core.energy import EnergyHead, classification_loss, energy_model
from vecfield.core.model import VectorFieldModel
from vecfield.density.evaluation import Dequantization
from vecfield.files import atomic_write
from vecfield.flows import Glow
from vecfield.images.config import (
    IMAGE_SCHEMA_VERSION,
    ImageConfig,
    ImageDataConfig,
    SampleConfig,
    image_config_from_dict,
    image_config_to_dict,
)
from vecfield.images.datasets import ImageDataset, from_signed, load_image_dataset, to_signed
from vecfield.images.folders import load_image_folder
from vecfield.images.grids import grid_array, png_bytes
from vecfield.nn.unet import UNet
from vecfield.train import Trainer, load_checkpoint, load_model_weights
from vecfield.train.checkpoint import CheckpointStore


def load_images(data: ImageDataConfig) -> tuple[ImageDataset, list[str]]:
    """All images of the configured dataset, and the class names ("0" … "9" for digits and MNIST)."""
    if data.dataset == "folder":
        assert data.path is not None and data.image_size is not None, "checked by ImageDataConfig"
        return load_image_folder(data.path, data.image_size, data.channels)
    dataset = load_image_dataset(data.dataset, data.path, data.labels_path)
    labelled = bool((dataset.labels >= 0).all())
    return dataset, [str(k) for k in range(10)] if labelled else []


def select_range(dataset: ImageDataset, index_range: tuple[int, int] | None, what: str) -> ImageDataset:
    """The images [start, stop) of ``dataset`` (all of them for None)."""
    if index_range is None:
        return dataset
    start, stop = index_range
    if stop > dataset.images.shape[0]:
        raise ValueError(f"data.{what}={list(index_range)} asks for more than the "
                         f"{dataset.images.shape[0]} images of {dataset.name}; shorten the range")
    return ImageDataset(dataset.images[start:stop], dataset.labels[start:stop], dataset.levels, dataset.name)


class ImageGenerator(nn.Module):
    """A generative model of integer images whose ``forward`` is the training loss.

    model: a ``VectorFieldModel`` on a UNet (its field may be an energy's −∇ₓE), or a ``Glow`` flow.
    levels: L, the number of grey levels; dequantize: the [−1, 1] map (module docstring);
    num_classes: K for a class-conditional model, 0 otherwise; classifier_weight: weight of the
    energy classifier's cross-entropy in the loss (energy models, ``classification_loss``) on the
    first ``classifier_examples`` examples of each batch.
    """

    def __init__(self, model: VectorFieldModel | Glow, image_shape: tuple[int, int, int], levels: int,
                 dequantize: bool, num_classes: int, classifier_weight: float = 0.0,
                 classifier_examples: int = 16) -> None:
        super().__init__()
        self.model = model
        self.image_shape = tuple(image_shape)
        self.levels = levels
        self.dequantize = dequantize
        self.num_classes = num_classes
        self.classifier_weight, self.classifier_examples = classifier_weight, classifier_examples

    def to_model_space(self, images: Tensor) -> Tensor:
        """Integer levels (B, C, H, W) -> floats in [−1, 1] (dequantized with the global RNG if set)."""
        if self.dequantize:
            return Dequantization(self.levels)(images)
        return to_signed(images, self.levels)

    def to_levels(self, x: Tensor) -> Tensor:
        """Inverse of ``to_model_space``: floats (B, C, H, W) -> integer levels in [0, L−1]."""
        if self.dequantize:
            return torch.floor((x.clamp(-1, 1) + 1) * (self.levels / 2)).clamp(0, self.levels - 1).long()
        return from_signed(x, self.levels)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """Scalar training loss on integer images (B, C, H, W) with labels (B,)."""
        x = self.to_model_space(images)
        if isinstance(self.model, Glow):
            return self.model.training_loss(x)
        loss = self.model.training_loss(x, labels if self.num_classes else None).loss
        if self.classifier_weight:
            n = self.classifier_examples
            cross_entropy = classification_loss(self.model, x[:n], labels[:n], self.num_classes)
            loss = loss + self.classifier_weight * cross_entropy
        return loss

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, solver: str = "heun", steps: int = 20,
                 guidance: float | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n images as integer levels (n, C, H, W); conditional models take ``labels`` (n,) and ``guidance``
        (None: the plain conditional field)."""
        if (labels is not None or guidance is not None) and not self.num_classes:
            raise ValueError("this generator is unconditional: call generate(n) without labels or guidance")
        if self.num_classes and (labels is None or labels.shape != (n,)):
            raise ValueError(f"this generator is class-conditional: pass labels of shape ({n},) in "
                             f"[0, {self.num_classes - 1}]")
        was_training = self.training
        self.eval()
        try:
            if isinstance(self.model, Glow):
                x = self.model.sample(n, generator)
            else:
                x = self.model.sample(n, labels, steps=steps, solver=solver, guidance=guidance,
                                      generator=generator)
        finally:
            self.train(was_training)
        return self.to_levels(x)


def build_image_generator(config: ImageConfig, image_shape: tuple[int, int, int], levels: int,
                          num_classes: int) -> ImageGenerator:
    """The untrained generator that ``config`` describes for images of ``image_shape`` = (C, H, W)."""
    if config.model.method == "glow":
        g = config.glow
        model: VectorFieldModel | Glow = Glow(image_shape, num_steps=g.num_steps, num_scales=g.num_scales,
                                              hidden_features=g.hidden_features, depth=g.depth)
        return ImageGenerator(model, image_shape, levels, config.data.dequantize, 0)
    if config.model.conditional and num_classes < 1:
        raise ValueError("model.conditional=true needs labelled images (class sub-folders, or a labels "
                         "file for MNIST); set model.conditional=false")
    classes = num_classes if config.model.conditional else 0
    u = config.unet
    net = UNet(image_shape[0], channels=u.channels, channel_mults=u.channel_mults,
               blocks_per_level=u.blocks_per_level, attention_levels=u.attention_levels,
               mid_attention=u.mid_attention, heads=u.heads, time_features=u.time_features,
               num_classes=classes, dropout=u.dropout, groups=u.groups,
               double_backward=config.model.method == "energy")  # trained through −∇ₓE
    options: dict[str, Any] = {"event_shape": image_shape}
    if classes:
        options["cond_dropout"] = config.model.cond_dropout
    if config.model.method == "energy":
        model = energy_model(EnergyHead(net, config.model.energy_head), "vp", **options)
    else:
        model = VectorFieldModel(net, config.model.method, **options)
    return ImageGenerator(model, image_shape, levels, config.data.dequantize, classes,
                          config.model.classifier_weight, config.model.classifier_examples)


class ImageTask:
    """The Trainer's task: batches are (images (B, C, H, W) integer levels, labels (B,))."""

    def loss(self, model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        """The generator's training loss on one batch (flow-matching / denoising loss, or Glow's NLL)."""
        images, labels = batch
        return model(images, labels)

    def validate(self, model: nn.Module, batch: Sequence[Tensor]) -> dict[str, float]:
        """The training loss on a held-out batch (one draw of times, noise and dequantization)."""
        images, labels = batch
        return {"loss": float(model(images, labels))}


@dataclass(frozen=True)
class GeneratorInfo:
    """What a checkpoint says about its generator: config, image shape, levels and class names."""

    config: ImageConfig
    image_shape: tuple[int, int, int]
    levels: int
    class_names: tuple[str, ...]
    step: int


def train_image_generator(config: ImageConfig) -> Path:
    """Train (or resume) the run of ``config``; returns the newest checkpoint."""
    dataset, class_names = load_images(config.data)
    train = select_range(dataset, config.data.train_range, "train_range")
    num_classes = len(class_names)
    torch.manual_seed(config.train.seed)  # the initial weights: the same in every run
    generator = build_image_generator(config, train.image_shape, train.levels, num_classes)
    if isinstance(generator.model, Glow):  # ActNorm's data-dependent initialization, seeded
        batch = train.images[: min(512, train.images.shape[0])]
        seeded = torch.Generator().manual_seed(config.train.seed)
        x = (Dequantization(train.levels)(batch, seeded) if config.data.dequantize
             else to_signed(batch, train.levels))
        generator.model.initialize(x)
    val = None
    if config.train.validate_every is not None:
        if config.data.val_range is None:
            raise ValueError("train.validate_every needs held-out images: set data.val_range: [start, stop)")
        held_out = select_range(dataset, config.data.val_range, "val_range")
        val = TensorDataset(held_out.images, held_out.labels)
    metadata = {"schema_version": IMAGE_SCHEMA_VERSION, "config": image_config_to_dict(config),
                "image_shape": list(train.image_shape), "levels": train.levels, "class_names": class_names}
    with Trainer(ImageTask(), generator, TensorDataset(train.images, train.labels), config.train,
                 val_data=val, metadata=metadata) as trainer:
        trainer.fit()
        latest = trainer.store.latest()
    assert latest is not None, "fit writes a checkpoint at its last step"
    return latest


def latest_checkpoint(config: ImageConfig) -> Path:
    """The newest step checkpoint of the run ``config.train.run_dir``."""
    folder = Path(config.train.run_dir) / "checkpoints"
    latest = CheckpointStore(folder, keep_last=1).latest()
    if latest is None:
        raise ValueError(f"{folder} holds no checkpoint; train first with "
                         "python pipelines/train_image_generator.py --config <this config>")
    return latest


def load_image_generator(path: str | Path) -> tuple[ImageGenerator, GeneratorInfo]:
    """The generator of a checkpoint with its EMA weights (what sampling uses), in eval mode."""
    checkpoint = load_checkpoint(path)
    metadata = checkpoint["metadata"]
    if metadata.get("schema_version") != IMAGE_SCHEMA_VERSION:
        raise ValueError(f"{path} is not an image-generator checkpoint of schema {IMAGE_SCHEMA_VERSION} "
                         f"(found {metadata.get('schema_version')!r}); retrain with this version")
    config = image_config_from_dict(metadata["config"])
    shape = tuple(metadata["image_shape"])
    assert len(shape) == 3, "stored as (C, H, W)"
    info = GeneratorInfo(config, (shape[0], shape[1], shape[2]), metadata["levels"],
                         tuple(metadata["class_names"]), checkpoint["step"])
    generator = build_image_generator(config, info.image_shape, info.levels, len(info.class_names))
    load_model_weights(path, generator, prefer_ema=True)
    return generator.eval(), info


def write_png(path: Path, images: Tensor, levels: int, columns: int) -> Path:
    """Write integer images (N, C, H, W) as one PNG grid of ``columns`` columns, atomically."""
    scale = max(1, math.ceil(64 / images.shape[-1]))  # 8×8 digits are enlarged to be visible
    picture = png_bytes(grid_array(images, levels, columns), scale)

    def write(file: BinaryIO) -> None:
        file.write(picture)

    atomic_write(path, write)
    return path


def _scale_name(w: float) -> str:
    return f"{w:g}".replace("-", "m").replace(".", "p")


def write_sample_grids(generator: ImageGenerator, info: GeneratorInfo, sample: SampleConfig,
                       output: str | Path) -> list[Path]:
    """Sample and write PNG grids (each written atomically) into ``output``; returns their paths.

    Conditional models: ``guidance_w<w>.png`` (one row per class, ``per_class`` columns) for each
    guidance scale w, and ``class_<name>.png`` (one row per scale) for each class; every scale
    starts from the same source noise, so rows differ only by w. Unconditional models:
    ``samples.png`` with ``per_class`` samples.
    """
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    n = sample.per_class
    if not generator.num_classes:
        images = generator.generate(n, solver=sample.solver, steps=sample.steps,
                                    generator=torch.Generator().manual_seed(sample.seed))
        return [write_png(folder / "samples.png", images, info.levels, math.ceil(math.sqrt(n)))]
    k = generator.num_classes
    labels = torch.arange(k).repeat_interleave(n)  # (K·n,) class-major
    by_scale = []
    for w in sample.guidance:
        images = generator.generate(k * n, labels, sample.solver, sample.steps, w,
                                    torch.Generator().manual_seed(sample.seed))
        by_scale.append(images.reshape(k, n, *images.shape[1:]))  # (K, n, C, H, W)
    paths = [write_png(folder / f"guidance_w{_scale_name(w)}.png", images.flatten(0, 1), info.levels, n)
             for w, images in zip(sample.guidance, by_scale, strict=True)]
    stacked = torch.stack(by_scale, dim=1)  # (K, scales, n, C, H, W)
    names = info.class_names or tuple(str(c) for c in range(k))
    paths += [write_png(folder / f"class_{name}.png", stacked[c].flatten(0, 1), info.levels, n)
              for c, name in enumerate(names)]
    return paths
