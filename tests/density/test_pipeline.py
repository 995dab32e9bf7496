"""pipelines/train_density_model.py: presets parse, crabs reproduce the reference, errors are clear."""

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import load_script
from vecfield.toys import TRUE_ENTROPY

ROOT = Path(__file__).resolve().parents[2]


def pipeline() -> ModuleType:
    return load_script("train_density_model")


def test_every_preset_is_valid() -> None:
    module = pipeline()
    presets = sorted((ROOT / "configs").glob("density_*.yaml"))
    assert {p.stem for p in presets} >= {"density_crabs", "density_toys", "density_digits", "density_mnist"}
    for preset in presets:
        module.load_config(preset)


def test_crabs_preset_reports_the_reference_fit(shared_data: Path, tmp_path: Path) -> None:
    preset = ROOT / "configs" / "density_crabs.yaml"
    result = pipeline().main(["--config", str(preset), "--output", str(tmp_path)])
    assert abs(result["binned_log_likelihood"] - (-2952.70)) < 0.01
    assert {p.name for p in tmp_path.iterdir()} == {"report.json", "model.pt", "crabs_mixture.png"}
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["means"] == pytest.approx([0.6326, 0.6547], abs=1e-3)


def test_small_toy_and_digits_runs_write_plots(tmp_path: Path) -> None:
    module = pipeline()
    toy = tmp_path / "toy.yaml"
    toy.write_text("data: {source: toy, toy: 8gaussians, train_size: 500, test_size: 200}\n"
                   "model: {kind: realnvp, num_couplings: 2, hidden_features: 8, depth: 1}\n"
                   "train: {steps: 5, batch_size: 64}\n")
    result = module.main(["--config", str(toy), "--output", str(tmp_path / "toy")])
    assert result["true_entropy_nats"] == pytest.approx(TRUE_ENTROPY["8gaussians"], abs=1e-12)
    assert (tmp_path / "toy" / "8gaussians_realnvp.png").is_file()
    digits = tmp_path / "digits.yaml"
    digits.write_text("data: {source: images, dataset: digits, train_range: [0, 100],\n"
                      "       test_range: [100, 150]}\n"
                      "model: {kind: gmm, n_components: 2, covariance_type: diag, n_restarts: 1}\n"
                      "samples: 4\n")
    result = module.main(["--config", str(digits), "--output", str(tmp_path / "digits")])
    assert result["is_bound"] and 0 < result["held_out_bits_per_dim"] < 6
    assert (tmp_path / "digits" / "digits_gmm_samples.png").is_file()


def test_tiny_cnf_digits_run(tmp_path: Path) -> None:
    config = tmp_path / "cnf.yaml"
    config.write_text("data: {source: images, dataset: digits, train_range: [0, 40], test_range: [40, 60]}\n"
                      "model: {kind: cnf, hidden_features: 8, depth: 1, time_features: 4, ode_method: rk4,\n"
                      "        ode_steps: 4, sample_solver: heun, sample_steps: 4}\n"
                      "train: {steps: 3, batch_size: 16}\nsamples: 4\n")
    result = pipeline().main(["--config", str(config), "--output", str(tmp_path / "out")])
    assert result["model"] == "FlowMatchingCNF" and result["dims"] == 64 and result["is_bound"]
    assert math.isfinite(result["held_out_bits_per_dim"])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"report.json", "model.pt",
                                                                "digits_cnf_samples.png", "training"}
    log = (tmp_path / "out" / "training" / "train_log.csv").read_text().splitlines()
    assert len(log) == 1 + 3  # the Trainer's per-step log: header and the 3 steps


def test_tiny_mnist_run_reads_the_idx_files(shared_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "mnist.yaml"
    images = shared_data / "mnist" / "t10k-images-idx3-ubyte.gz"
    config.write_text(f"data: {{source: images, dataset: mnist, path: {images},\n"
                      "       train_range: [0, 16], test_range: [16, 24]}\n"
                      "model: {kind: realnvp, num_couplings: 2, num_scales: 3, hidden_features: 4,\n"
                      "        depth: 1}\n"
                      "train: {steps: 2, batch_size: 8}\nsamples: 4\n")
    result = pipeline().main(["--config", str(config), "--output", str(tmp_path / "out")])
    assert result["uniform_bits_per_dim"] == 8.0 and result["dims"] == 784
    assert (tmp_path / "out" / "mnist_realnvp_samples.png").is_file()


@pytest.mark.parametrize(("text", "message"), [
    ("data: {source: toy}\nmodel: {kind: glow}\nepochs: 3\n", r"unknown key\(s\) \['epochs'\].*valid keys"),
    ("data: {source: toy}\nmodel: {kind: glow, width: 3}\n", r"\['width'\] in `model \(glow\)`.*num_steps"),
    ("data: {source: toy, toi: moons}\nmodel: {kind: glow}\n", r"\['toi'\] in `data`"),
    ("data: {source: toy}\nmodel: {kind: maf}\n", r"model.kind must be one of"),
    ("data: {source: web}\nmodel: {kind: gmm}\n", r"choose one of \['crabs', 'toy', 'images'\]"),
])
def test_bad_presets_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        pipeline().load_config(path)
