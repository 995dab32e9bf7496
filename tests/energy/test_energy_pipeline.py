"""pipelines/train_energy_model.py: presets parse, tiny toy and digits runs write their reports."""

import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.scripts import load_script
from vecfield.images.config import ImageModelConfig, load_image_config

ROOT = Path(__file__).resolve().parents[2]


def pipeline() -> ModuleType:
    return load_script("train_energy_model")


def test_energy_presets_are_valid() -> None:
    density = pipeline()._density_pipeline()
    assert density.load_config(ROOT / "configs" / "energy_toy.yaml")["kind"] == "ebm"
    for name in ("energy_digits", "energy_mnist"):
        config = load_image_config(ROOT / "configs" / f"{name}.yaml")
        assert config.model.method == "energy" and config.model.conditional
        assert config.model.classifier_weight > 0


def test_tiny_toy_run_reports_nll_and_ais_diagnostics(tmp_path: Path) -> None:
    preset = tmp_path / "toy.yaml"
    preset.write_text("data: {source: toy, toy: 8gaussians, train_size: 500, test_size: 200}\n"
                      "model: {kind: ebm, hidden_features: 8, depth: 1, time_features: 4, ais_chains: 50,\n"
                      "        ais_levels: 5}\n"
                      "train: {steps: 5, batch_size: 64}\n")
    result = pipeline().main(["--config", str(preset), "--output", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model"] == "EnergyMLP" and 1 <= report["ais_ess"] <= 50
    assert report["held_out_nats"] == pytest.approx(result["held_out_nats"])
    assert (tmp_path / "out" / "8gaussians_ebm.png").is_file()


def test_tiny_digits_run_classifies_and_writes_ode_and_mcmc_grids(tmp_path: Path) -> None:
    run = tmp_path / "run"
    report = pipeline().main(["--config", str(ROOT / "configs" / "energy_digits.yaml"), "train.max_steps=2",
                              "train.warmup_steps=1", f"train.run_dir={run}", "train.progress_bar=false",
                              "unet.channels=8", "sample.per_class=1", "sample.steps=2",
                              "data.val_range=[1500, 1540]"])
    assert 0 <= report["energy_classifier_accuracy"] <= 1 and report["held_out_images"] == 40
    assert 0 < report["mcmc_acceptance_rate"] <= 1
    assert (run / "samples" / "mcmc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "report.json").read_text())["step"] == 2


def test_wrong_presets_and_options_are_clear_errors(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("data: {source: toy, toy: 8gaussians}\nmodel: {kind: cnf}\n")
    with pytest.raises(ValueError, match=r"model\.kind: ebm"):
        pipeline().main(["--config", str(flow)])
    with pytest.raises(ValueError, match=r"model\.method: energy"):
        pipeline().main(["--config", str(ROOT / "configs" / "digits_fm.yaml")])
    with pytest.raises(ValueError, match="does not exist"):
        pipeline().main(["--config", str(tmp_path / "missing.yaml")])
    with pytest.raises(ValueError, match="class-conditional energy model"):
        ImageModelConfig(method="flow_matching", classifier_weight=1.0)


def test_classification_loss_is_the_cross_entropy_of_minus_energies_at_noisy_points() -> None:
    """Replaying the generator: the loss is CE(softmax_h(−E(x_t, t, h)), label) with x_t on the path."""
    from tests.core.nets import GaussianEnergy
    from vecfield.core import EnergyField, VectorFieldModel, VPSchedule, classification_loss

    schedule = VPSchedule()
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    covs = torch.stack([torch.eye(2, dtype=torch.float64)] * 2)
    model = VectorFieldModel(EnergyField(GaussianEnergy(schedule, means, covs)), schedule=schedule,
                             target="score")
    x1 = torch.randn(6, 2, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 1, 0])
    loss = classification_loss(model, x1, labels, 2, torch.Generator().manual_seed(0))
    replay = torch.Generator().manual_seed(0)
    t = 0.5 + 0.5 * torch.rand(6, generator=replay, dtype=torch.float64)  # uniform on [t_min, t_end]
    c = schedule.coefficients(t)
    x_t = c.alpha[:, None] * x1 + c.sigma[:, None] * torch.randn(6, 2, generator=replay, dtype=torch.float64)
    energies = torch.stack([model.net.energy(x_t, t, torch.full((6,), h)) for h in range(2)], 1)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(-energies, labels))
    with pytest.raises(ValueError, match="labels must be integers"):
        classification_loss(model, x1, labels.double(), 2)


def test_tiny_mnist_run_reads_the_shared_data(shared_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "mnist"
    report = pipeline().main(["--config", str(ROOT / "configs" / "energy_mnist.yaml"), "train.max_steps=1",
                              "train.warmup_steps=1", f"train.run_dir={run}", "train.progress_bar=false",
                              "train.batch_size=8", "unet.channels=8", "sample.per_class=1", "sample.steps=1",
                              "sample.guidance=[1]", "data.train_range=[0, 64]",
                              "data.val_range=[8000, 8020]"])
    assert report["held_out_images"] == 20 and (run / "samples" / "mcmc.png").is_file()
