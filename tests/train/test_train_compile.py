"""torch.compile is a drop-in: same losses as eager (to compiler rounding), plain checkpoint keys."""

import csv

import pytest
import torch
from tiny_training import trainer

from vecfield.train import load_checkpoint


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_plain_weights(tmp_path):
    def losses(run_dir):
        with open(run_dir / "train_log.csv") as file:
            return torch.tensor([float(r["loss"]) for r in csv.DictReader(file)])

    for name, compile_model in (("eager", False), ("compiled", True)):
        with trainer(str(tmp_path / name), noise=0.0, max_steps=8, compile=compile_model) as run:
            run.fit()
    compiled, eager = losses(tmp_path / "compiled"), losses(tmp_path / "eager")
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-6)
    checkpoint = load_checkpoint(tmp_path / "compiled" / "checkpoints" / "step_000000008.pt")
    assert not any(key.startswith("_orig_mod") for key in checkpoint["model"])
