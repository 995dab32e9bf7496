"""Learning-rate factor at known steps (closed form) and the integer curriculum."""

import math
from pathlib import Path

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


def test_warm_restarts_run_the_schedule_afresh_in_each_phase() -> None:
    """With restarts at 40 and 70 of 100 updates, each cycle is the plain schedule of its own length."""
    f = WarmupCosineSchedule(warmup_steps=5, total_steps=100, min_ratio=0.1, restarts=(40, 70))
    for start, end in ((0, 40), (40, 70), (70, 100)):
        plain = WarmupCosineSchedule(5, end - start, 0.1)
        assert [f(i) for i in range(start, end)] == [plain(i) for i in range(end - start)]
    assert f(39) < 0.11 and f(44) == 1.0 and f(69) < 0.11 and f(100) == pytest.approx(0.1)
    short = WarmupCosineSchedule(warmup_steps=10, total_steps=20, min_ratio=0.0, restarts=(16,))
    assert short(16) == pytest.approx(1 / 4) and short(19) == 1.0  # warm-up shortened to the 4-step cycle
    with pytest.raises(ValueError, match="restarts must increase"):
        WarmupCosineSchedule(0, 100, 0.0, restarts=(50, 50))


def test_the_trainer_restarts_its_rate_at_each_curriculum_phase(tmp_path: Path) -> None:
    config = TrainerConfig(run_dir=str(tmp_path), max_steps=30, lr=1.0, min_lr_ratio=0.0,
                           curriculum=[[0, 1], [10, 2], [20, 4]], lr_restart_per_phase=True)
    scheduler = build_scheduler(build_optimizer(nn.Linear(2, 2), config), config)
    rates = []
    for _ in range(30):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    assert rates[0] == rates[10] == rates[20] == 1.0 and max(rates[9], rates[19], rates[29]) < 0.03
    with pytest.raises(ValueError, match="two or more phases"):
        TrainerConfig(run_dir=str(tmp_path), max_steps=30, lr_restart_per_phase=True)
