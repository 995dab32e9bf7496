"""The README's main job, run tiny: trains, samples, scores and writes its PNG, weights and metrics."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_train_toy_generator_writes_png_weights_and_metrics(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "pipelines" / "train_toy_generator.py"),
               "--dataset", "checkerboard", "--out", str(tmp_path / "toy"), "--steps", "30",
               "--samples", "300", "--nll-points", "20", "--sample-steps", "4", "--hidden", "32"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "samples.png" in result.stdout and "held-out NLL" in result.stdout
    out = tmp_path / "toy"
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["true_entropy_nats"] == math.log(32)
    assert metrics["heldout_nll_nats"] > 0 and metrics["energy_distance"] > 0
    state = torch.load(out / "model.pt", weights_only=True)
    assert any(key.startswith("net.") for key in state)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_train_toy_generator_rejects_bad_arguments(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "pipelines" / "train_toy_generator.py"), "--dataset", "swissroll",
               "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert result.returncode == 2 and "checkerboard" in result.stderr
