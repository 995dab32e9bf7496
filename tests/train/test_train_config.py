"""TrainerConfig validation: bad values raise errors that name the problem and the fix."""

import pytest

from vecfield.train import TrainerConfig


def make(**overrides):
    return TrainerConfig(**{"run_dir": "runs/x", "max_steps": 100, **overrides})


def test_defaults_are_the_documented_optimizer_settings():
    config = make()
    assert config.betas == (0.9, 0.95) and config.weight_decay == 0.1
    assert config.mixed_precision == "auto" and config.compile is False and config.tensorboard is False


def test_lists_from_yaml_become_tuples_and_round_trip_through_a_plain_dict():
    config = make(betas=[0.8, 0.99], curriculum=[[0, 1], [50, 2]])
    assert config.betas == (0.8, 0.99) and config.curriculum == ((0, 1), (50, 2))
    assert TrainerConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(("overrides", "message"), [
    ({"mixed_precision": "fp16"}, r"choose one of \['auto', 'bf16', 'off'\]"),
    ({"best_mode": "lowest"}, r"choose one of \['min', 'max'\]"),
    ({"backend": "mpi"}, r"choose one of \['auto', 'gloo', 'nccl'\]"),
    ({"warmup_steps": 200}, "shorten the warm-up"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"lr": -1.0}, "lr must be a positive"),
    ({"betas": (0.9,)}, "two numbers"),
    ({"min_lr_ratio": 2.0}, r"min_lr_ratio .* must lie in \[0, 1\]"),
    ({"grad_clip_norm": 0.0}, "null to disable clipping"),
    ({"ema_decay": 1.0}, "null to disable the EMA"),
    ({"curriculum": [[5, 1]]}, "first start_step is 0"),
    ({"curriculum": [[0, 1], [10, 2], [10, 3]]}, "increase strictly"),
    ({"curriculum": [[0, 1.5]]}, "integer pairs"),
    ({"curriculum": 3}, "list of \\[start_step, value\\] pairs"),
    ({"best_metric": "mse"}, "set validate_every"),
    ({"validate_every": 10, "ema_decay": None}, "validate_with_ema=false"),
])
def test_invalid_values_are_rejected_with_guidance(overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"unknown trainer option\(s\) \['lr_max'\].*'warmup_steps'"):
        TrainerConfig.from_dict({"run_dir": "r", "max_steps": 5, "lr_max": 1.0})
