"""kill -9 in the middle of training, then resume: the loss curve and weights match an uninterrupted run."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from tiny_training import trainer

SCRIPT = Path(__file__).with_name("tiny_training.py")
REPO = Path(__file__).resolve().parents[2]


def logged_steps(path: Path) -> int:
    if not path.exists():
        return 0
    return max(0, path.read_text().count("\n") - 1)


def curve(run_dir: Path) -> list[tuple[str, ...]]:
    with open(run_dir / "train_log.csv") as file:
        return [(r["step"], r["epoch"], r["loss"], r["lr"], r["grad_norm"]) for r in csv.DictReader(file)]


def test_sigkill_mid_run_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    steps, kill_after = 40, 16
    killed_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(killed_dir), "--steps", str(steps),
                                "--checkpoint-every", "3", "--delay", "0.05", "--validate"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while logged_steps(killed_dir / "train_log.csv") < kill_after:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "the training subprocess made no progress"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_at = logged_steps(killed_dir / "train_log.csv")
    assert kill_after <= interrupted_at < steps  # killed mid-run, rows past the last checkpoint included

    with trainer(str(killed_dir), validate=True) as resumed:
        assert resumed.step < steps and resumed.step % 3 == 0  # resumed from a periodic checkpoint
        resumed.fit()
    with trainer(str(tmp_path / "straight"), validate=True) as straight:
        straight.fit()
    assert curve(killed_dir) == curve(tmp_path / "straight")
    assert [row[0] for row in curve(killed_dir)] == [str(s) for s in range(1, steps + 1)]
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in straight.ema_model.state_dict().items():
        assert torch.equal(tensor, resumed.ema_model.state_dict()[name]), name
