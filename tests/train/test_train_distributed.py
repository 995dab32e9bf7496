"""torchrun with 2 CPU processes (gloo) trains the same weights as 1 process with the same global batch.

Conditions for equality: the same global batch order (ShardedEpochSampler), a loss that is a mean
over the batch (so DDP's gradient average over equal shards is the global-batch gradient), and no
randomness inside the loss. In float64 the two runs then agree to rounding (≈1e-15 relative).
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_training import trainer

from vecfield.train import load_checkpoint

SCRIPT = Path(__file__).with_name("tiny_training.py")
REPO = Path(__file__).resolve().parents[2]


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    steps, global_batch = 10, 8
    ddp_dir = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
         str(ddp_dir), "--steps", str(steps), "--batch-size", str(global_batch), "--checkpoint-every", "4",
         "--noise", "0", "--float64", "--validate"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    with trainer(str(tmp_path / "single"), noise=0.0, dtype=torch.float64, validate=True, max_steps=steps,
                 batch_size=global_batch, checkpoint_every=4) as single:
        single.fit()
    distributed = load_checkpoint(ddp_dir / "checkpoints" / f"step_{steps:09d}.pt")
    assert distributed["rng"]["world_size"] == 2 and len(distributed["rng"]["ranks"]) == 2
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(distributed["model"][name], tensor, rtol=1e-12, atol=1e-12)
    for name, tensor in single.ema_model.state_dict().items():
        torch.testing.assert_close(distributed["ema"]["weights"][name], tensor, rtol=1e-12, atol=1e-12)

    def losses(run_dir: Path) -> list[tuple[int, float]]:
        with open(run_dir / "train_log.csv") as file:
            return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(file)]

    ddp_losses, single_losses = losses(ddp_dir), losses(tmp_path / "single")
    assert [s for s, _ in ddp_losses] == list(range(1, steps + 1))  # one writer: rank 0
    torch.testing.assert_close(torch.tensor(ddp_losses), torch.tensor(single_losses), rtol=1e-12, atol=0)
    assert sorted(p.name for p in (ddp_dir / "checkpoints").iterdir()) == [
        "best.pt", "step_000000008.pt", f"step_{steps:09d}.pt"]

    # a 2-process checkpoint resumed by one process continues the same global batches
    resumed_dir = tmp_path / "resumed"
    (resumed_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(ddp_dir / "checkpoints" / "step_000000008.pt", resumed_dir / "checkpoints")
    with pytest.warns(UserWarning, match="written by 2 processes and is resumed by 1"):
        resumed = trainer(str(resumed_dir), noise=0.0, dtype=torch.float64, validate=True, max_steps=steps,
                          batch_size=global_batch, checkpoint_every=4)
    with resumed:
        assert resumed.step == 8
        resumed.fit()
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=1e-12, atol=1e-12)


def test_device_and_backend_choices_are_checked(monkeypatch):
    from vecfield.train.distributed import DistributedContext

    single = DistributedContext("cpu")
    assert (single.rank, single.world_size, single.is_main, single.distributed) == (0, 1, True, False)
    assert single.gather({"a": 1}) == [{"a": 1}] and torch.equal(single.mean(torch.ones(2)), torch.ones(2))
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        DistributedContext("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available; use 'cpu' or 'auto'"):
            DistributedContext("cuda")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ValueError, match="backend 'nccl' needs CUDA devices"):
        DistributedContext("cpu", backend="nccl")
