"""SlowStepWatch: a warning when a training step is far slower than the recent ones (issue 22 §6)."""

import pytest

from vecfield.train.pace import SlowStepWatch


def test_a_step_far_slower_than_the_recent_median_is_reported_once_per_window() -> None:
    watch = SlowStepWatch(window=5, factor=4.0, min_seconds=0.1)
    reports = [watch.observe(step, 0.1) for step in range(1, 6)]  # filling the window: never reported
    assert reports == [None] * 5
    assert watch.observe(6, 0.35) is None  # 3.5× the median: within the factor
    message = watch.observe(7, 2.0)  # 20× the median 0.1 s
    assert message is not None and "training step 7 took 2.00 s, 20× the median 0.1 s" in message
    assert "docs/train.md" in message
    assert [watch.observe(step, 2.0) for step in range(8, 12)] == [None] * 4  # quiet for a window
    assert SlowStepWatch(window=2, min_seconds=1.0).observe(3, 0.5) is None


def test_tiny_steps_are_never_reported() -> None:
    watch = SlowStepWatch(window=3, factor=2.0, min_seconds=0.1)
    for step in range(1, 4):
        watch.observe(step, 0.001)
    assert watch.observe(4, 0.05) is None  # 50× the median, but below min_seconds


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="window ≥ 2"):
        SlowStepWatch(window=1)
