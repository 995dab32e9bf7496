"""Smoke test of the whole path (seeded): a tiny flow-matching UNet trained on the bundled digits with
the Trainer produces guided samples, from its EMA weights, that a classifier fitted on the digits'
training split labels as the requested class far more often than chance (10 %). Not a quality claim."""

from pathlib import Path

import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from vecfield.images import load_digits, to_signed
from vecfield.images.config import load_image_config
from vecfield.images.generator import load_image_generator, train_image_generator

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def guided_accuracy(run_dir: Path, overrides: list[str], scales: tuple[float, ...],
                    per_class: int) -> dict[float, float]:
    """Train digits_fm with ``overrides``; the classifier's agreement with the requested class per scale."""
    config = load_image_config(ROOT / "configs" / "digits_fm.yaml",
                               [f"train.run_dir={run_dir}", "train.progress_bar=false", *overrides])
    generator, info = load_image_generator(train_image_generator(config))
    digits = load_digits()
    train = slice(*config.data.train_range)
    classifier = KNeighborsClassifier(n_neighbors=5).fit(digits.signed()[train].flatten(1).numpy(),
                                                         digits.labels[train].numpy())
    labels = torch.arange(10).repeat_interleave(per_class)
    accuracy = {}
    for w in scales:
        images = generator.generate(labels.shape[0], labels, solver="euler", steps=8, guidance=w,
                                    generator=torch.Generator().manual_seed(1))
        predicted = classifier.predict(to_signed(images, info.levels).flatten(1).numpy())
        accuracy[w] = float((torch.from_numpy(predicted) == labels).double().mean())
    return accuracy


def test_guided_samples_of_a_tiny_model_get_the_requested_class(tmp_path: Path) -> None:
    tiny = ["unet.channels=16", "unet.attention_levels=[]", "unet.mid_attention=false",
            "unet.time_features=32",
            "train.max_steps=60", "train.batch_size=32", "train.lr=3.0e-3", "train.warmup_steps=0",
            "train.ema_decay=0.9", "train.validate_every=null"]
    accuracy = guided_accuracy(tmp_path, tiny, scales=(2.0,), per_class=10)
    assert accuracy[2.0] >= 0.4  # four times chance (0.71 measured with this seed)


@pytest.mark.slow
def test_guidance_of_the_digits_preset_after_a_minute_of_training(tmp_path: Path) -> None:
    """The preset's UNet trained for ~a minute: guidance w = 2 names the class almost always."""
    short = ["train.max_steps=400", "train.batch_size=64", "train.warmup_steps=20", "train.ema_decay=0.95",
             "train.validate_every=null"]
    accuracy = guided_accuracy(tmp_path, short, scales=(0.0, 1.0, 2.0), per_class=20)
    assert accuracy[2.0] >= 0.9
    assert accuracy[2.0] >= accuracy[1.0] - 0.05 and accuracy[1.0] > accuracy[0.0] + 0.3
