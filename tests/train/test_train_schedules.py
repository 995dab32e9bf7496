"""Learning-rate factor at known steps (closed form) and the integer curriculum."""

import math

import pytest
from torch import nn

from vecfield.train import Curriculum, TrainerConfig, WarmupCosineSchedule
from vecfield.train.optim import build_optimizer, build_scheduler


def test_warmup_then_cosine_values_at_known_steps():
    f = WarmupCosineSchedule(warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1)  # (0 + 1) / 10
    assert f(4) == pytest.approx(0.5)
    assert f(9) == pytest.approx(1.0)  # peak at the end of warm-up
    assert f(10) == pytest.approx(1.0)  # cosine starts at 1
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: cos(π/2) = 0
    assert f(35) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)  # the floor
    assert WarmupCosineSchedule(0, 100, 0.0)(0) == 1.0


def test_torch_scheduler_applies_the_factor_after_each_update():
    config = TrainerConfig(run_dir="r", max_steps=20, lr=0.5, warmup_steps=4, min_lr_ratio=0.2)
    optimizer = build_optimizer(nn.Linear(3, 2), config)
    scheduler = build_scheduler(optimizer, config)
    schedule = WarmupCosineSchedule(4, 20, 0.2)
    for i in range(25):
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(0.5 * schedule(i), rel=1e-12)
        optimizer.step()
        scheduler.step()
    restored = build_scheduler(build_optimizer(nn.Linear(3, 2), config), config)
    restored.load_state_dict(scheduler.state_dict())
    assert restored.get_last_lr() == scheduler.get_last_lr()


def test_curriculum_is_piecewise_constant_from_each_start_step():
    curriculum = Curriculum(((0, 1), (5, 2), (12, 4)))
    values = [curriculum.value_at(i) for i in range(15)]
    assert values == [1] * 5 + [2] * 7 + [4] * 3
    with pytest.raises(ValueError, match="≥ 0"):
        curriculum.value_at(-1)


def test_curriculum_from_yaml_lists_is_validated():
    assert Curriculum.from_pairs([[0, 1], [3, 2]]).pairs == ((0, 1), (3, 2))
    with pytest.raises(ValueError, match="integer pairs"):
        Curriculum.from_pairs([[0, 1, 2]])
    with pytest.raises(ValueError, match="first start_step is 0"):
        Curriculum.from_pairs([])
