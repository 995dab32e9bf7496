"""AdamW parameter groups (weight decay on weight matrices only), decoupled decay, clipping."""

import pytest
import torch
from torch import nn

from vecfield.train import TrainerConfig
from vecfield.train.optim import build_optimizer, weight_decay_groups


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 4, 3)
        self.norm = nn.LayerNorm(4)
        self.linear = nn.Linear(4, 4)
        self.tied = nn.Linear(4, 4, bias=False)
        self.tied.weight = self.linear.weight  # shared: must appear once
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.scale = nn.Parameter(torch.ones(()))


def test_only_weight_matrices_outside_embeddings_are_decayed():
    model = Mixed()
    decayed, undecayed = weight_decay_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0.0
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    assert ids(decayed["params"]) == ids([model.conv.weight, model.linear.weight])
    assert ids(undecayed["params"]) == ids([model.embed.weight, model.conv.bias, model.norm.weight,
                                            model.norm.bias, model.linear.bias, model.scale])
    assert len(decayed["params"]) + len(undecayed["params"]) == 8  # tied once, frozen left out


def test_decay_is_decoupled_and_skips_biases():
    """With a zero gradient AdamW's update is −lr·wd·θ on decayed weights and nothing on biases."""
    model = nn.Linear(3, 2).double()
    config = TrainerConfig(run_dir="r", max_steps=10, lr=0.5, weight_decay=0.1)
    optimizer = build_optimizer(model, config)
    assert optimizer.defaults["betas"] == (0.9, 0.95)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(model.weight.detach(), weight * (1 - 0.5 * 0.1), rtol=0, atol=1e-15)
    assert torch.equal(model.bias.detach(), bias)


def test_no_trainable_parameters_is_an_error():
    with pytest.raises(ValueError, match="no trainable parameters"):
        weight_decay_groups(nn.Linear(2, 2).requires_grad_(False), 0.1)
