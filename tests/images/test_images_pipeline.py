"""pipelines/train_image_generator.py and sample_images.py: presets parse, a tiny run trains, resumes
exactly where it stopped, writes PNG grids from its EMA weights, and bad config keys are clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.scripts import load_script
from vecfield.images.config import load_image_config
from vecfield.images.generator import build_image_generator, load_image_generator, load_images, select_range
from vecfield.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ("digits_fm", "mnist_fm_cfg", "mnist_ddpm", "mnist_glow")
TINY_UNET = ["unet.channels=8", "unet.heads=2", "unet.time_features=16", "unet.groups=4"]


pytestmark = pytest.mark.usefixtures("one_thread")




def tiny(run_dir: Path, *extra: str) -> list[str]:
    return [f"train.run_dir={run_dir}", "train.batch_size=16", "train.warmup_steps=0", "train.max_steps=4",
            "train.checkpoint_every=2", "train.progress_bar=false", "train.validate_every=null",
            "sample.steps=2", "sample.per_class=2", "sample.guidance=[0, 2]", *TINY_UNET, *extra]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_valid(preset: str) -> None:
    config = load_image_config(ROOT / "configs" / f"{preset}.yaml")
    assert config.train.ema_decay is not None  # sampling uses the EMA weights
    expected = {"digits_fm": "flow_matching", "mnist_fm_cfg": "flow_matching", "mnist_ddpm": "ddpm",
                "mnist_glow": "glow"}[preset]
    assert config.model.method == expected
    if preset.startswith("mnist"):
        assert config.data.train_range == (0, 8000) and config.data.val_range == (8000, 10000)


def test_train_resume_and_sample_end_to_end(tmp_path: Path) -> None:
    preset = str(ROOT / "configs" / "digits_fm.yaml")
    train = load_script("train_image_generator").main
    full = train(["--config", preset, *tiny(tmp_path / "full")])
    assert full.name == "step_000000004.pt"

    # the same run interrupted after step 2, then resumed by the same command: identical weights
    interrupted = tmp_path / "interrupted"
    train(["--config", preset, *tiny(interrupted)])
    (interrupted / "checkpoints" / "step_000000004.pt").unlink()
    resumed = train(["--config", preset, *tiny(interrupted)])
    a, b = load_checkpoint(full), load_checkpoint(resumed)
    assert b["step"] == 4
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=0)

    paths = load_script("sample_images").main(["--config", preset, *tiny(tmp_path / "full")])
    names = {p.name for p in paths}
    assert names == {"guidance_w0.png", "guidance_w2.png", *(f"class_{k}.png" for k in range(10))}
    for path in paths:
        assert path.parent == tmp_path / "full" / "samples"
        picture = np.asarray(Image.open(path))
        rows = 10 if path.name.startswith("guidance") else 2
        # 8×8 digits enlarged 8 times, 1-pixel borders, 2 samples per row
        assert picture.shape == ((rows * 9 + 1) * 8, (2 * 9 + 1) * 8)
    temporaries = [p for p in (tmp_path / "full" / "samples").iterdir() if p.name.startswith(".")]
    assert not temporaries


def test_validation_and_sampling_use_the_ema_weights(tmp_path: Path) -> None:
    preset = str(ROOT / "configs" / "digits_fm.yaml")
    overrides = tiny(tmp_path, "train.ema_decay=0.5", "train.validate_every=2", "train.val_batch_size=64")
    path = load_script("train_image_generator").main(["--config", preset, *overrides])
    validation = (tmp_path / "val_log.csv").read_text().splitlines()  # held-out loss on data.val_range
    assert validation[0].split(",")[:3] == ["step", "wallclock_s", "loss"] and len(validation) == 3
    assert all(float(row.split(",")[2]) > 0 for row in validation[1:])
    generator, info = load_image_generator(path)
    checkpoint = load_checkpoint(path)
    assert info.step == 4 and info.levels == 17 and info.image_shape == (1, 8, 8)
    assert info.class_names == tuple(str(k) for k in range(10))
    loaded = generator.state_dict()
    ema, raw = checkpoint["ema"]["weights"], checkpoint["model"]
    differs = [k for k in raw if not torch.equal(raw[k], ema[k])]
    assert differs  # the EMA is not the raw model after 4 steps …
    for key in differs:
        torch.testing.assert_close(loaded[key], ema[key], rtol=0, atol=0)  # … and sampling loads the EMA


@pytest.mark.parametrize(("preset", "extra"), [
    ("mnist_ddpm", ["sample.solver=ddim", "model.conditional=false"]),
    ("mnist_glow", ["glow.num_steps=1", "glow.hidden_features=8", "data.dequantize=true"]),
])
def test_ddpm_and_glow_presets_train_and_sample_on_digits(tmp_path: Path, preset: str,
                                                          extra: list[str]) -> None:
    """The MNIST presets' methods, on the bundled digits so that no data file is needed."""
    config = str(ROOT / "configs" / f"{preset}.yaml")
    on_digits = ["data.dataset=digits", "data.path=null", "data.labels_path=null", "data.train_range=[0, 64]",
                 "data.val_range=null", "unet.channel_mults=[1, 2]", "unet.attention_levels=[1]"]
    overrides = tiny(tmp_path, *on_digits, *extra)
    load_script("train_image_generator").main(["--config", config, *overrides, "--sample"])
    paths = sorted((tmp_path / "samples").iterdir())
    assert [p.name for p in paths] == ["samples.png"]
    picture = np.asarray(Image.open(paths[0]))
    assert picture.shape == ((1 * 9 + 1) * 8, (2 * 9 + 1) * 8)  # per_class=2 samples side by side


def test_bad_config_keys_are_clear_errors(tmp_path: Path) -> None:
    preset = str(ROOT / "configs" / "digits_fm.yaml")
    train = load_script("train_image_generator").main
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['chanels'\] \(did you mean 'channels'\?\)"):
        train(["--config", preset, *tiny(tmp_path), "unet.chanels=8"])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['sampel'\].*valid keys are"):
        train(["--config", preset, *tiny(tmp_path), "sampel.steps=3"])
    with pytest.raises(ValueError, match="is not one of"):
        train(["--config", preset, *tiny(tmp_path), "model.method=flow_matchin"])
    with pytest.raises(ValueError, match=r"model\.conditional=false"):
        train(["--config", preset, *tiny(tmp_path), "model.method=glow"])
    with pytest.raises(ValueError, match="needs held-out images"):
        train(["--config", preset, *tiny(tmp_path), "data.val_range=null", "train.validate_every=2"])
    with pytest.raises(ValueError, match="holds no checkpoint"):
        load_script("sample_images").main(["--config", preset, *tiny(tmp_path / "never_trained")])
    assert not (tmp_path / "checkpoints").exists()


def test_generate_checks_labels_against_the_model() -> None:
    preset = ROOT / "configs" / "digits_fm.yaml"
    conditional = build_image_generator(load_image_config(preset, TINY_UNET), (1, 8, 8), 17, 10)
    with pytest.raises(ValueError, match=r"class-conditional: pass labels of shape \(3,\)"):
        conditional.generate(3)
    glow = build_image_generator(load_image_config(preset, ["model.method=glow", "model.conditional=false"]),
                                 (1, 8, 8), 17, 10)
    with pytest.raises(ValueError, match="unconditional"):
        glow.generate(2, torch.tensor([0, 1]))
    levels = conditional.generate(3, torch.tensor([0, 5, 9]), solver="euler", steps=2, guidance=2.0)
    assert levels.shape == (3, 1, 8, 8) and levels.dtype == torch.int64
    assert int(levels.min()) >= 0 and int(levels.max()) <= 16


@pytest.mark.parametrize("dequantize", [False, True])
def test_model_space_and_back_is_the_identity_on_levels(dequantize: bool) -> None:
    config = load_image_config(ROOT / "configs" / "digits_fm.yaml",
                               [*TINY_UNET, f"data.dequantize={str(dequantize).lower()}"])
    generator = build_image_generator(config, (1, 8, 8), 17, 10)
    levels = torch.randint(0, 17, (64, 1, 8, 8))
    x = generator.to_model_space(levels)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert bool((x != torch.round(x * 8) / 8).any()) == dequantize  # uniform noise inside each level's cell
    assert torch.equal(generator.to_levels(x), levels)


def test_mnist_presets_read_the_shared_idx_files(shared_data: Path) -> None:
    config = load_image_config(ROOT / "configs" / "mnist_fm_cfg.yaml")
    dataset, classes = load_images(config.data)
    assert dataset.images.shape == (10000, 1, 28, 28) and dataset.levels == 256
    assert classes == [str(k) for k in range(10)]
    train = select_range(dataset, config.data.train_range, "train_range")
    assert train.images.shape[0] == 8000 and set(train.labels.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="asks for more than the 10000 images"):
        select_range(dataset, (0, 20000), "train_range")


def test_rgb_image_folder_trains_and_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("red", "blue"):
        for i in range(4):
            Path(tmp_path / "images" / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                tmp_path / "images" / label / f"{i}.png")
    folder = ["data.dataset=folder", f"data.path={tmp_path / 'images'}", "data.image_size=[8, 8]",
              "data.channels=3", "data.train_range=null", "data.val_range=null", "train.batch_size=4"]
    load_script("train_image_generator").main(["--config", str(ROOT / "configs" / "digits_fm.yaml"),
                                          *tiny(tmp_path / "run", *folder), "--sample"])
    names = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert names == ["class_blue.png", "class_red.png", "guidance_w0.png", "guidance_w2.png"]
    picture = np.asarray(Image.open(tmp_path / "run" / "samples" / "guidance_w2.png"))
    assert picture.shape == ((2 * 9 + 1) * 8, (2 * 9 + 1) * 8, 3)  # 2 classes × 2 samples, RGB
