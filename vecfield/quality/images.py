"""Image-generation metrics on tensors: a small CNN classifier and scores in its feature space.

Images are floats in [−1, 1] of shape (N, C, H, W) (``vecfield.images.to_signed``).

- ``ImageClassifier``, ``train_classifier``, ``load_classifier``: a small CNN trained on the same
  data as the generators (≥ 98% held-out accuracy on MNIST); checkpoints go through
  ``vecfield.density.save_checkpoint`` (atomic write) and load with ``weights_only=True``.
- ``frechet_distance``: FD between Gaussian fits of classifier features (Heusel et al. 2017),
  ``‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁^½ Σ₂ Σ₁^½)^½)``, in float64.
- ``precision_recall``: k-NN precision and recall (Kynkäänniemi et al. 2019).
- ``class_accuracy``: fraction of guided samples classified as the requested class.
- ``image_bits_per_dim``: bits/dim of uniformly dequantized integer images under a flow
  (exact ``log_prob``) or a ``VectorFieldModel`` (the core's probability-flow ODE likelihood).
- ``load_feature_extractor`` + ``inception_frechet_distance``: FID with a user-supplied local
  Inception checkpoint (no weights can be downloaded here, so this path is untested with real
  Inception weights; the tests use a tiny stand-in network).
"""

import math
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vecfield.core.likelihood import bits_per_dim
from vecfield.core.model import VectorFieldModel
from vecfield.density.checkpoint import load_checkpoint
from vecfield.density.evaluation import Dequantization, mean_log_likelihood


# ----------------------------------------------------------------------------------------- classifier
class ImageClassifier(nn.Module):
    """Small CNN: images (B, C, H, W) in [−1, 1] -> logits (B, num_classes).

    Two stages of [3×3 conv, BatchNorm, ReLU] × 2 + 2×2 max-pool with ``channels`` and
    2·``channels`` channels, then a ``features``-wide linear + ReLU layer on the flattened
    (H/4)·(W/4) map (the feature space of FD and precision/recall, ``features(x)``) and a linear
    head. Works for any H, W ≥ 4 (28×28 MNIST, 8×8 digits). ``config`` holds the constructor
    arguments for checkpoints.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10,
                 channels: int = 16, features: int = 64) -> None:
        super().__init__()
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or min(shape[1:]) < 4:
            raise ValueError(f"image_shape must be (C, H, W) with H, W ≥ 4, got {image_shape}")
        if num_classes < 2 or channels < 1 or features < 1:
            raise ValueError(f"need num_classes ≥ 2, channels ≥ 1, features ≥ 1; "
                             f"got {num_classes}, {channels}, {features}")
        self.image_shape = shape
        self.config = dict(image_shape=shape, num_classes=num_classes, channels=channels, features=features)
        c = channels

        def stage(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        pooled = (shape[1] // 4) * (shape[2] // 4)
        self.body = nn.Sequential(*stage(shape[0], c), *stage(c, 2 * c), nn.Flatten(),
                                  nn.Linear(2 * c * pooled, features), nn.ReLU())
        self.head = nn.Linear(features, num_classes)

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images of shape (batch, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations (B, features) of images x (B, C, H, W)."""
        self._check(x)
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, num_classes) of images x (B, C, H, W)."""
        return self.head(self.features(x))


def _random_shift(x: Tensor, pixels: int, generator: torch.Generator) -> Tensor:
    """Translate each image (B, C, H, W) by up to ±pixels in each direction, filling with −1 (black)."""
    if pixels == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * pixels + 1, (2, b), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])


def train_classifier(images: Tensor, labels: Tensor, num_classes: int = 10, epochs: int = 5,
                     batch_size: int = 128, learning_rate: float = 2e-3, shift: int = 2, channels: int = 16,
                     features: int = 64, seed: int = 0) -> ImageClassifier:
    """Train an ``ImageClassifier`` on images (N, C, H, W) in [−1, 1] with labels (N,) in [0, K).

    Adam with a cosine learning-rate decay to 0 over ``epochs`` passes, cross-entropy, and random
    translations of up to ``shift`` pixels as augmentation (use 0 on tiny images). Returns the model
    in eval mode.
    """
    if images.ndim != 4 or labels.shape != (images.shape[0],):
        raise ValueError(f"need images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes - 1}] (set num_classes), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # seeded initialization without touching the global generator
        torch.manual_seed(seed)
        image_shape = (images.shape[1], images.shape[2], images.shape[3])  # (C, H, W); ndim 4 checked above
        model = ImageClassifier(image_shape, num_classes, channels, features)
    steps_per_epoch = math.ceil(images.shape[0] / batch_size)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    model.train()
    for _ in range(epochs):
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, images.shape[0], batch_size):
            idx = order[start:start + batch_size]
            x = _random_shift(images[idx].float(), shift, generator)
            loss = F.cross_entropy(model(x), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def load_classifier(path: str | os.PathLike[str]) -> ImageClassifier:
    """Load a classifier saved with ``vecfield.density.save_checkpoint`` (``weights_only=True``).

    A file that needs arbitrary unpickling (not a plain checkpoint) is refused with ValueError.
    Returns the model in eval mode (BatchNorm then uses its running statistics).
    """
    if not Path(path).is_file():
        raise ValueError(f"classifier checkpoint {path} does not exist; train one with train_classifier "
                         f"and save it with vecfield.density.save_checkpoint")
    try:
        return load_checkpoint(path, ImageClassifier).eval()
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} is not a plain-tensor checkpoint and was refused (weights_only=True): "
                         f"{str(error).splitlines()[0]}; save classifiers with "
                         f"vecfield.density.save_checkpoint") from error


@torch.no_grad()
def _batched(fn: Callable[[Tensor], Tensor], images: Tensor, batch_size: int) -> Tensor:
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"need a non-empty batch of images (N, C, H, W), got {tuple(images.shape)}")
    return torch.cat([fn(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)])


def classifier_features(classifier: ImageClassifier, images: Tensor, batch_size: int = 500) -> Tensor:
    """Features (N, F) in float64 of images (N, C, H, W) in [−1, 1]."""
    classifier.eval()
    dtype = next(classifier.parameters()).dtype
    return _batched(lambda x: classifier.features(x.to(dtype)), images, batch_size).double()


def predict_classes(classifier: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Arg-max classes (N,) of ``classifier(images)`` for images (N, C, H, W)."""
    classifier.eval()
    return _batched(lambda x: classifier(x).argmax(dim=1), images, batch_size)


def class_accuracy(classifier: nn.Module, images: Tensor, requested: Tensor, batch_size: int = 500) -> float:
    """Fraction of images (N, C, H, W) whose predicted class equals ``requested`` (N,)."""
    if requested.shape != (images.shape[0],):
        raise ValueError(f"need one requested class per image: {images.shape[0]} images, "
                         f"requested of shape {tuple(requested.shape)}")
    predicted = predict_classes(classifier, images, batch_size)
    return float((predicted == requested.to(predicted.device)).double().mean())


# ----------------------------------------------------------------------------------------- FD
def gaussian_fit(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) in float64 of features (N, F), N ≥ 2."""
    array = features.detach().cpu().double().numpy() if torch.is_tensor(features) else np.asarray(
        features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"need features of shape (N, F) with N ≥ 2 to fit a Gaussian, got {array.shape}")
    return array.mean(axis=0), np.atleast_2d(np.cov(array, rowvar=False))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clipped at 0)."""
    values, vectors = scipy.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein²) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂), in float64.

        FD = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁^½ Σ₂ Σ₁^½)^½

    Tr (Σ₁Σ₂)^½ is computed as the sum of the square roots of the eigenvalues of the symmetric PSD
    matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues as Σ₁Σ₂), with ``scipy.linalg.eigh``. We prefer this to
    ``scipy.linalg.sqrtm(Σ₁ Σ₂)``: Σ₁Σ₂ is not symmetric, and for the rank-deficient covariances
    of a few hundred samples of ReLU features sqrtm returns complex values and can lose accuracy,
    while the symmetric eigen-decomposition is real, backward stable, and exact for commuting Σ.
    """
    mean1, mean2 = np.atleast_1d(np.asarray(mean1, np.float64)), np.atleast_1d(np.asarray(mean2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    d = mean1.shape[0]
    if mean2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"shapes disagree: means {mean1.shape}, {mean2.shape}, covariances {cov1.shape}, "
                         f"{cov2.shape}; need (F,) and (F, F) for both Gaussians")
    root1 = _psd_sqrt(cov1)
    product = root1 @ cov2 @ root1
    cross = np.sqrt(np.clip(scipy.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    return float(((mean1 - mean2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * cross)


def feature_frechet_distance(features1: Tensor | np.ndarray, features2: Tensor | np.ndarray) -> float:
    """FD between the Gaussian fits of two feature sets (N₁, F) and (N₂, F)."""
    return frechet_distance(*gaussian_fit(features1), *gaussian_fit(features2))


# ----------------------------------------------------------------------------------------- precision/recall
def _kth_neighbour_radius(points: Tensor, k: int, chunk: int) -> Tensor:
    """Distance (N,) from each point to its k-th nearest other point of the same set (N, F)."""
    radii = []
    for start in range(0, points.shape[0], chunk):
        distances = torch.cdist(points[start:start + chunk], points)  # (chunk, N); self at distance 0
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(queries: Tensor, centres: Tensor, radii: Tensor, chunk: int) -> float:
    """Fraction of queries (M, F) inside at least one ball (centres (N, F), radii (N,))."""
    inside = []
    for start in range(0, queries.shape[0], chunk):
        distances = torch.cdist(queries[start:start + chunk], centres)  # (chunk, N)
        inside.append((distances <= radii[None, :]).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real: Tensor, generated: Tensor, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """k-NN precision and recall of generated features (M, F) against real features (N, F).

    The real manifold is the union of balls around each real feature with radius the distance to
    its k-th nearest real neighbour; likewise for the generated one (Kynkäänniemi et al. 2019).
    precision = fraction of generated features inside the real manifold; recall = fraction of real
    features inside the generated manifold. Computed in float64.
    """
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"need feature matrices (N, F) and (M, F) with the same F, got {tuple(real.shape)} "
                         f"and {tuple(generated.shape)}")
    if not 1 <= k < min(real.shape[0], generated.shape[0]):
        raise ValueError(f"k must lie in [1, {min(real.shape[0], generated.shape[0]) - 1}] (fewer than the "
                         f"points in each set), got {k}")
    real, generated = real.double(), generated.double()
    precision = _coverage(generated, real, _kth_neighbour_radius(real, k, chunk), chunk)
    recall = _coverage(real, generated, _kth_neighbour_radius(generated, k, chunk), chunk)
    return precision, recall


# ----------------------------------------------------------------------------------------- bits/dim
class ODEDensity:
    """A ``VectorFieldModel`` behind the density contract: log p(x) by the probability-flow ODE.

    ``log_prob(x)`` (B, *event) -> (B,) nats calls ``model.log_prob`` with the given divergence
    estimator ("hutchinson" for images: one Rademacher probe per example, unbiased), ODE method and
    tolerances; it is exact up to the ODE solver's error for divergence="exact".
    """

    def __init__(self, model: VectorFieldModel, cond: Any = None, divergence: str = "hutchinson",
                 method: str = "dopri5", steps: int = 100, rtol: float = 1e-5, atol: float = 1e-5,
                 generator: torch.Generator | None = None) -> None:
        self.model, self.cond, self.divergence = model, cond, divergence
        self.method, self.steps, self.rtol, self.atol, self.generator = method, steps, rtol, atol, generator
        self.exact_log_prob = divergence == "exact"

    def parameters(self) -> Any:
        return self.model.parameters()

    def log_prob(self, x: Tensor) -> Tensor:
        cond = self.cond
        if torch.is_tensor(cond) and cond.shape[0] != x.shape[0]:
            raise ValueError(f"the fixed condition has batch size {cond.shape[0]} but log_prob got "
                             f"{x.shape[0]} examples; use batch_size={cond.shape[0]} or cond=None")
        return self.model.log_prob(x, cond, divergence=self.divergence, method=self.method, steps=self.steps,
                                   rtol=self.rtol, atol=self.atol, generator=self.generator)


def image_bits_per_dim(model: nn.Module | ODEDensity, images: Tensor, levels: int, batch_size: int = 100,
                       generator: torch.Generator | None = None) -> float:
    """Bits/dim of integer images (N, C, H, W) with values in [0, levels − 1] under ``model``.

    Each image is uniformly dequantized into [−1, 1], y = 2(k + u)/L − 1
    (``vecfield.density.Dequantization``, the convention Glow and the CNF are trained on), so

        bits/dim = −(E_u[log p(y)] + D·log(2/L)) / (D·ln 2),

    where D·log(2/L) is the log-volume of a level's cell, i.e. the Jacobian of the scaling from
    [0, L)^D to [−1, 1]^D; the result is an upper bound on the discrete model's bits/dim (Jensen).
    ``model`` is a density model with an exact ``log_prob`` (a ``vecfield.flows`` Glow), an
    ``ODEDensity``, or a ``VectorFieldModel`` (wrapped with ``ODEDensity``'s defaults: Hutchinson,
    dopri5 at 1e-5).
    """
    if images.is_floating_point():
        raise TypeError("image_bits_per_dim takes integer levels (e.g. ImageDataset.images), not floats "
                        "in [−1, 1]; pass the dataset's integer images")
    density = ODEDensity(model, generator=generator) if isinstance(model, VectorFieldModel) else model
    # mean_log_likelihood calls only log_prob (and parameters, if any); ODEDensity and a flow module given as
    # nn.Module provide it without being typed as the full DensityModel protocol (which adds sample)
    nats = mean_log_likelihood(density, images, Dequantization(levels), batch_size, generator)  # type: ignore[arg-type]
    return bits_per_dim(nats, math.prod(images.shape[1:]))


# ----------------------------------------------------------------------------------------- Inception FID
def load_feature_extractor(path: str | os.PathLike[str], module: nn.Module | None = None) -> nn.Module:
    """A feature network (B, 3, H, W) -> (B, F) from a local checkpoint, e.g. Inception-v3's pool features.

    Without ``module``: ``path`` is a TorchScript file (``torch.jit.save``) and is loaded with
    ``torch.jit.load`` (TorchScript runs its own interpreter, not Python unpickling). With
    ``module``: ``path`` holds a state dict, loaded with ``torch.load(weights_only=True)`` into your
    module (e.g. torchvision's ``inception_v3(weights=None, aux_logits=False)`` with its ``fc``
    replaced by ``nn.Identity()``), strictly. Not tested with real Inception weights here: none can
    be downloaded in this environment.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"feature-extractor checkpoint {path} does not exist; Inception weights cannot be "
                         f"downloaded by vecfield: give the path of a local TorchScript file or state dict")
    if module is None:
        return torch.jit.load(str(path), map_location="cpu").eval()
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    module.load_state_dict(state)
    return module.eval()


def inception_frechet_distance(extractor: nn.Module, real: Tensor, generated: Tensor, size: int = 299,
                               batch_size: int = 50) -> float:
    """FID: FD between ``extractor`` features of real and generated images (N, C, H, W) in [−1, 1].

    Grey images are repeated to 3 channels and every image is resized bilinearly to size×size
    (Inception-v3 expects 299×299 inputs in [−1, 1]). The extractor must return (B, F) features.
    """
    def features(x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False)
        out = extractor(x)
        if out.ndim != 2:
            raise ValueError(f"the feature extractor must return (batch, features), got {tuple(out.shape)}")
        return out.double()

    return feature_frechet_distance(_batched(features, real, batch_size), _batched(features, generated,
                                                                                    batch_size))
