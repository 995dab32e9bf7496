"""The image generator's config: ``data:``, ``model:``, ``unet:``, ``glow:``, ``train:``, ``sample:``.

    config = load_image_config("configs/digits_fm.yaml", ["train.max_steps=200", "sample.guidance=[0,2]"])

``data``, ``model`` and ``train`` are required; ``unet``, ``glow`` and ``sample`` may be omitted
(defaults). Unknown sections or keys are errors listing the valid ones (:mod:`vecfield.config.typed`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vecfield.config.typed import apply_overrides, from_dict, read_config_file, to_dict
from vecfield.train.config import TrainerConfig

#: bump when the meaning of a stored image-generator checkpoint changes
IMAGE_SCHEMA_VERSION = 1

IMAGE_METHODS = ("flow_matching", "ot_flow_matching", "ddpm", "vp_diffusion", "energy", "glow")


@dataclass(frozen=True)
class ImageDataConfig:
    """Which images, and which of them train.

    dataset: ``digits`` (bundled 8×8), ``mnist`` (IDX file at ``path``, labels at ``labels_path``)
        or ``folder`` (PNG/JPEG files under ``path``, one sub-folder per class or none).
    image_size: [H, W] the folder's images are resized to (required for ``folder``).
    channels: 1 (grey) or 3 (RGB), for ``folder``.
    train_range: [start, stop) of the images used for training (None: all of them).
    val_range: [start, stop) of the held-out images validated on when ``train.validate_every`` is set.
    dequantize: train on uniformly dequantized levels y = 2(k+u)/L − 1 (the density models'
        convention, needed for comparable bits/dim) instead of the levels 2k/(L−1) − 1.
    """

    dataset: Literal["digits", "mnist", "folder"] = "digits"
    path: str | None = None
    labels_path: str | None = None
    image_size: tuple[int, int] | None = None
    channels: int = 1
    train_range: tuple[int, int] | None = None
    val_range: tuple[int, int] | None = None
    dequantize: bool = False

    def __post_init__(self) -> None:
        for name in ("train_range", "val_range"):
            span = getattr(self, name)
            if span is not None and not 0 <= span[0] < span[1]:
                raise ValueError(f"data.{name} must be [start, stop) with 0 ≤ start < stop, got {list(span)}")
        if self.dataset in ("mnist", "folder") and self.path is None:
            raise ValueError(f"data.dataset={self.dataset} needs data.path "
                             "(the IDX images file or the image folder)")
        if self.dataset == "folder" and self.image_size is None:
            raise ValueError("data.dataset=folder needs data.image_size: [H, W] to resize every image to")
        if self.channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 (grey) or 3 (RGB), got {self.channels}")


@dataclass(frozen=True)
class ImageModelConfig:
    """What learns the images.

    method: a ``VectorFieldModel`` method on the UNet (flow_matching, ot_flow_matching, ddpm,
        vp_diffusion), ``energy`` (an energy-based model: an energy head over the UNet, the field
        −∇ₓE trained by denoising score matching on the VP path, ``vecfield.core.energy_model``) or
        ``glow`` (a discrete normalizing flow trained by exact likelihood; unconditional).
    conditional: condition the UNet on the class labels (needs labelled data).
    cond_dropout: probability of the null class at training (classifier-free guidance, eq. 15.12).
    energy_head: ``l2`` (E = ½‖x − f(x)‖²) or ``dot`` (E = ⟨x, f(x)⟩) for method energy.
    classifier_weight: weight of the JEM classification term (cross-entropy of softmax_h(−E(x_t, h)),
        ``vecfield.core.classification_loss``) added to the energy's loss; 0 turns it off.
    classifier_examples: how many examples of each batch that term uses (it costs K energy
        evaluations per example).
    """

    method: Literal["flow_matching", "ot_flow_matching", "ddpm", "vp_diffusion", "energy",
                    "glow"] = "flow_matching"
    conditional: bool = True
    cond_dropout: float = 0.1
    energy_head: Literal["l2", "dot"] = "l2"
    classifier_weight: float = 0.0
    classifier_examples: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.cond_dropout <= 1:
            raise ValueError(f"model.cond_dropout must lie in [0, 1], got {self.cond_dropout}")
        if self.method == "glow" and self.conditional:
            raise ValueError("model.method=glow is unconditional here; set model.conditional=false")
        if self.classifier_examples < 1:
            raise ValueError(f"model.classifier_examples must be ≥ 1, got {self.classifier_examples}")
        if self.classifier_weight < 0:
            raise ValueError(f"model.classifier_weight must be ≥ 0, got {self.classifier_weight}")
        if self.classifier_weight and (self.method != "energy" or not self.conditional):
            raise ValueError("model.classifier_weight needs a class-conditional energy model "
                             "(method: energy, conditional: true); set it to 0 otherwise")


@dataclass(frozen=True)
class UNetConfig:
    """Arguments of :class:`vecfield.nn.UNet` (see its docstring)."""

    channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    blocks_per_level: int = 1
    attention_levels: tuple[int, ...] = (1,)
    mid_attention: bool = True
    heads: int = 4
    time_features: int = 64
    dropout: float = 0.0
    groups: int = 8


@dataclass(frozen=True)
class GlowConfig:
    """Arguments of :class:`vecfield.flows.Glow` (see its docstring)."""

    num_steps: int = 4
    num_scales: int = 2
    hidden_features: int = 64
    depth: int = 2


@dataclass(frozen=True)
class SampleConfig:
    """How ``pipelines/sample_images.py`` draws grids.

    solver, steps: the sampler (``VectorFieldModel.sample``; e.g. heun 20, ddpm 1000, ddim 50).
    guidance: classifier-free guidance scales w, one grid per scale (conditional models).
    per_class: samples per class (one grid row per class), or the number of samples of an
        unconditional model. seed: the sampling generator's seed. output: the grid folder
        (None: ``<train.run_dir>/samples``).
    """

    solver: str = "heun"
    steps: int = 20
    guidance: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    per_class: int = 8
    seed: int = 0
    output: str | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.per_class < 1:
            raise ValueError(f"sample.steps and sample.per_class must be ≥ 1, "
                             f"got {self.steps}, {self.per_class}")
        if not self.guidance:
            raise ValueError("sample.guidance needs at least one scale, e.g. [0, 1, 2, 4]")


@dataclass(frozen=True)
class ImageConfig:
    """A whole image-generation experiment: the sections of a config file."""

    data: ImageDataConfig
    model: ImageModelConfig
    train: TrainerConfig
    unet: UNetConfig = field(default_factory=UNetConfig)
    glow: GlowConfig = field(default_factory=GlowConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)


def image_config_from_dict(data: Mapping[str, Any], where: str = "") -> ImageConfig:
    """Build and validate an :class:`ImageConfig` from plain data (a parsed YAML file or a checkpoint)."""
    return from_dict(ImageConfig, data, where)


def load_image_config(path: str | Path, overrides: Sequence[str] = ()) -> ImageConfig:
    """The experiment in the YAML file ``path`` with ``section.key=value`` overrides applied."""
    path = Path(path)
    data = read_config_file(path)
    try:
        return image_config_from_dict(apply_overrides(data, overrides))
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from error


def image_config_to_dict(config: ImageConfig) -> dict[str, Any]:
    """Plain YAML-safe data (for checkpoints); :func:`image_config_from_dict` reads it back."""
    return {**to_dict(config), "train": config.train.to_dict()}
