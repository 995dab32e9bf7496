"""Image metrics: FD closed forms, k-NN precision/recall by hand, class accuracy, classifier I/O,
bits/dim against analytic densities, the Inception-FID interface."""

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import Tensor, nn

from tests.core.gaussian_field import GaussianOptimalField
from vecfield import VectorFieldModel
from vecfield.core.schedules import get_schedule
from vecfield.density import Dequantization, save_checkpoint
from vecfield.flows import Glow
from vecfield.images import load_digits
from vecfield.quality.images import (
    ImageClassifier,
    ODEDensity,
    class_accuracy,
    classifier_features,
    feature_frechet_distance,
    frechet_distance,
    gaussian_fit,
    image_bits_per_dim,
    inception_frechet_distance,
    load_classifier,
    load_feature_extractor,
    precision_recall,
    train_classifier,
)


# ----------------------------------------------------------------------------------------- FD
def test_fd_closed_form_for_commuting_gaussians() -> None:
    # diagonal covariances commute: FD = ‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)²
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    expected = 1 + 4 + 0 + (1 - 3) ** 2 + (2 - 1) ** 2 + 0
    # rotating both Gaussians by the same orthogonal matrix changes nothing
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    got = frechet_distance(q @ m1, q @ np.diag(a) @ q.T, q @ m2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert frechet_distance(np.array([0.5]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]])) == \
        pytest.approx(1.5**2 + 1.0, rel=1e-14)


def test_fd_matches_the_non_symmetric_sqrtm_formula_for_generic_gaussians() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    c1, c2 = x @ x.T + 0.1 * np.eye(5), y @ y.T + 0.1 * np.eye(5)
    m1, m2 = rng.normal(size=5), rng.normal(size=5)
    reference = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(reference, rel=1e-9)


def test_fd_is_zero_for_identical_sets_and_positive_otherwise() -> None:
    features = torch.randn(300, 16, dtype=torch.float64) @ torch.randn(16, 16, dtype=torch.float64)
    assert abs(feature_frechet_distance(features, features)) < 1e-9
    assert feature_frechet_distance(features, features + 0.1) == pytest.approx(16 * 0.01, rel=1e-9)
    # rank-deficient covariances (fewer samples than features) stay real; the square roots of the
    # ~1e-16 round-off eigenvalues leave an absolute error of order F·√ε·‖Σ‖^½
    few = torch.randn(10, 32, dtype=torch.float64)
    assert abs(feature_frechet_distance(few, few)) < 1e-5 * float(few.var(0).sum())


def test_gaussian_fit_is_the_unbiased_estimate() -> None:
    features = torch.randn(50, 3, dtype=torch.float64)
    mean, cov = gaussian_fit(features)
    centred = features - features.mean(0)
    np.testing.assert_allclose(cov, (centred.T @ centred / 49).numpy(), rtol=1e-12)
    np.testing.assert_allclose(mean, features.mean(0).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="N ≥ 2"):
        gaussian_fit(features[:1])


# ----------------------------------------------------------------------------------------- precision/recall
def test_precision_recall_by_hand_on_a_line() -> None:
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    # k = 1: every real point's ball has radius 1, so the real manifold is [−1, 4]
    generated = torch.tensor([[0.5], [3.9], [10.0], [11.0], [12.5]])
    # generated radii (k = 1): 3.4, 3.4, 1, 1, 1.5
    # -> balls [−2.9, 3.9], [0.5, 7.3], [9, 11], [10, 12], [11, 14]
    precision, recall = precision_recall(real, generated, k=1)
    assert precision == pytest.approx(2 / 5)  # 0.5 and 3.9 are inside [−1, 4]
    assert recall == pytest.approx(1.0)  # 0, 1, 2, 3 all inside [−2.9, 3.9]
    far = torch.tensor([[100.0], [101.0]])
    assert precision_recall(real, far, k=1) == (0.0, 0.0)
    assert precision_recall(real, real, k=2) == (1.0, 1.0)


def test_precision_recall_rejects_bad_k() -> None:
    with pytest.raises(ValueError, match="k must lie"):
        precision_recall(torch.zeros(3, 2), torch.zeros(5, 2), k=3)


# ----------------------------------------------------------------------------------------- class accuracy
class BrightestQuadrant(nn.Module):
    """A fake classifier: class = index of the brightest of the four 4×4 quadrants of an 8×8 image."""

    def forward(self, x: Tensor) -> Tensor:
        quadrants = x.unfold(2, 4, 4).unfold(3, 4, 4).sum((-1, -2))  # (B, C, 2, 2)
        return quadrants.flatten(1)


def test_class_accuracy_with_a_fake_classifier() -> None:
    images = -torch.ones(8, 1, 8, 8)
    bright = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    for i, q in enumerate(bright.tolist()):
        images[i, 0, 4 * (q // 2):4 * (q // 2) + 4, 4 * (q % 2):4 * (q % 2) + 4] = 1.0
    requested = torch.tensor([0, 1, 2, 3, 1, 1, 1, 1])  # right for the first 4 and for index 5
    assert class_accuracy(BrightestQuadrant(), images, requested, batch_size=3) == pytest.approx(5 / 8)
    with pytest.raises(ValueError, match="one requested class per image"):
        class_accuracy(BrightestQuadrant(), images, requested[:3])


# ----------------------------------------------------------------------------------------- classifier
def _digits_split() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    data = load_digits()
    x, y = data.signed(), data.labels
    return x[:1500], y[:1500], x[1500:], y[1500:]


def test_classifier_learns_real_digits_and_round_trips(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = _digits_split()
    model = train_classifier(x_train, y_train, epochs=6, shift=0, channels=16, features=32)
    accuracy = class_accuracy(model, x_test, y_test)
    assert accuracy >= 0.9, accuracy  # 297 held-out digits, chance 0.1
    path = tmp_path / "classifier.pt"
    save_checkpoint(model, path)
    assert not list(tmp_path.glob("*.tmp"))
    loaded = load_classifier(path)
    assert loaded.config == model.config
    torch.testing.assert_close(loaded(x_test), model(x_test), rtol=0, atol=0)
    torch.testing.assert_close(classifier_features(loaded, x_test), classifier_features(model, x_test))


class Payload:
    """An arbitrary Python object: a weights-only load must refuse to unpickle it."""


def test_load_classifier_refuses_pickled_objects_and_missing_files(tmp_path: Path) -> None:
    model = ImageClassifier((1, 8, 8), channels=4, features=8)
    path = tmp_path / "evil.pt"
    payload = {"model_class": "ImageClassifier", "config": Payload(), "state_dict": model.state_dict()}
    torch.save(payload, path)
    with pytest.raises(ValueError, match="refused"):
        load_classifier(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_classifier(tmp_path / "missing.pt")
    torch.save({"model_class": "Glow", "config": {}, "state_dict": {}}, path)
    with pytest.raises(ValueError, match="Glow checkpoint"):
        load_classifier(path)
    assert pickle.dumps(Payload())  # the payload class itself is a plain picklable object


def test_classifier_rejects_wrong_image_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(batch, 1, 8, 8\)"):
        ImageClassifier((1, 8, 8))(torch.zeros(2, 1, 28, 28))


@pytest.mark.slow
def test_classifier_reaches_98_percent_on_held_out_mnist(shared_data: Path) -> None:
    from vecfield.images import load_mnist

    folder = shared_data / "mnist"
    data = load_mnist(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    x, y = data.signed(), data.labels
    model = train_classifier(x[:8000], y[:8000])
    assert class_accuracy(model, x[8000:], y[8000:]) >= 0.98


# ----------------------------------------------------------------------------------------- bits/dim
class FlatGaussianField(nn.Module):
    """The exact flow-matching field of N(μ, diag s²) data on images (B, 1, 2, 2)."""

    def __init__(self, mean: Tensor, variances: Tensor) -> None:
        super().__init__()
        self.field = GaussianOptimalField(mean, torch.diag(variances), get_schedule("condot"))
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))  # fixes dtype for the density code

    def forward(self, x_t: Tensor, t: Tensor, cond: object = None) -> Tensor:
        return self.field(x_t.flatten(1), t).reshape(x_t.shape)


def _analytic_bits(images: Tensor, levels: int, mean: Tensor, variances: Tensor, seed: int) -> float:
    """−(mean log N(y; μ, diag s²) + D log(2/L)) / (D ln 2) on the same dequantized draws y."""
    y = Dequantization(levels)(images, torch.Generator().manual_seed(seed)).double().flatten(1)
    normal = torch.distributions.Normal(mean, variances.sqrt())
    nats = float(normal.log_prob(y).sum(1).mean()) + Dequantization(levels).log_cell_volume(4)
    return -nats / (4 * math.log(2))


def test_cnf_bits_per_dim_matches_the_gaussian_closed_form() -> None:
    levels = 4
    mean = torch.tensor([0.1, -0.2, 0.3, 0.0], dtype=torch.float64)
    variances = torch.tensor([0.3, 0.5, 0.2, 0.4], dtype=torch.float64)
    images = torch.randint(0, levels, (6, 1, 2, 2))
    model = VectorFieldModel(FlatGaussianField(mean, variances), "flow_matching", event_shape=(1, 2, 2))
    expected = _analytic_bits(images, levels, mean, variances, seed=3)
    # the diagonal Jacobian makes Hutchinson's estimate exact, so both estimators must agree
    for divergence in ("exact", "hutchinson"):
        density = ODEDensity(model, divergence=divergence, rtol=1e-8, atol=1e-8,
                             generator=torch.Generator().manual_seed(9))
        got = image_bits_per_dim(density, images, levels, batch_size=4,
                                 generator=torch.Generator().manual_seed(3))
        assert got == pytest.approx(expected, abs=1e-5)
    with pytest.raises(TypeError, match="integer levels"):
        image_bits_per_dim(model, images.double(), levels)


def test_glow_bits_per_dim_is_its_exact_log_prob_plus_the_cell_volume() -> None:
    levels = 17
    flow = Glow((1, 4, 4), num_steps=1, num_scales=1, hidden_features=8).double()
    images = torch.randint(0, levels, (5, 1, 4, 4))
    y = Dequantization(levels)(images, torch.Generator().manual_seed(4)).double()
    with torch.no_grad():
        nats = float(flow.log_prob(y).mean()) + 16 * math.log(2 / levels)
    got = image_bits_per_dim(flow, images, levels, generator=torch.Generator().manual_seed(4))
    assert got == pytest.approx(-nats / (16 * math.log(2)), rel=1e-12)


# ----------------------------------------------------------------------------------------- Inception FID
class TinyExtractor(nn.Module):
    """Stand-in for Inception-v3's pool features: (B, 3, H, W) -> (B, 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x).mean((2, 3))


def test_inception_interface_with_a_stand_in_network(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be downloaded"):
        load_feature_extractor(tmp_path / "inception.pt")
    net = TinyExtractor()
    scripted = tmp_path / "extractor.pt"
    torch.jit.save(torch.jit.script(net), str(scripted))
    state = tmp_path / "state.pt"
    torch.save(net.state_dict(), state)
    real, fake = torch.rand(12, 1, 8, 8) * 2 - 1, torch.rand(12, 1, 8, 8) * 2 - 1
    from_script = inception_frechet_distance(load_feature_extractor(scripted), real, fake, size=16)
    from_state = inception_frechet_distance(load_feature_extractor(state, TinyExtractor()), real, fake,
                                            size=16)
    assert from_script == pytest.approx(from_state, rel=1e-6) and from_script > 0
    assert inception_frechet_distance(net, real, real, size=16) == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------------------------------- benchmark
def test_images_benchmark_quick_run(shared_data: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "images_quick.json"
    subprocess.run([sys.executable, str(root / "benchmarks" / "images.py"), "--quick", "--threads", "1",
                    "--mnist", str(shared_data / "mnist"), "--out", str(out)], check=True, cwd=root,
                   capture_output=True, timeout=600)
    results = json.loads(out.read_text())
    assert {r["solver"] for r in results["fd"]} == {"euler", "heun", "ddpm", "ddim"}
    assert all(math.isfinite(r["fd"]) and 0 <= r["precision"] <= 1 for r in results["fd"])
    assert [g["w"] for g in results["guidance"]] == [0.0, 1.0, 2.0, 4.0]
    assert math.isfinite(results["bits_per_dim"]["fm_conditional"]) and math.isfinite(
        results["bits_per_dim"]["glow"])
    assert set(results["targets"]) == {"fm_le20_nfe_reaches_ddpm1000_fd", "w2_class_accuracy_ge_0.95",
                                       "fm_bits_within_0.1_of_glow"}
    assert (tmp_path / "images_quick_guided_w2.png").is_file()
