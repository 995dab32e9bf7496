"""A watch on training-step times: a warning when a step is far slower than the recent ones.

On a shared machine a training run can slow down many times over when another process takes a
core (OpenMP threads spinning on a preempted core: docs/train.md, "Threads on a shared machine").
:class:`SlowStepWatch` compares each step's compute time t with the median m of the previous
``window`` steps and reports a step with t > ``factor`` · m (and t ≥ ``min_seconds``), at most
once per ``window`` steps, so a lasting slowdown gives one warning, not one per step.
"""

from collections import deque
from statistics import median


class SlowStepWatch:
    """Reports training steps that take more than ``factor`` × the median of the last ``window``."""

    def __init__(self, window: int = 20, factor: float = 4.0, min_seconds: float = 0.1) -> None:
        if window < 2 or not factor > 1 or min_seconds < 0:
            raise ValueError(f"need window ≥ 2, factor > 1 and min_seconds ≥ 0, got {window}, {factor}, "
                             f"{min_seconds}")
        self.window, self.factor, self.min_seconds = window, factor, min_seconds
        self.recent: deque[float] = deque(maxlen=window)
        self.quiet_until = 0

    def observe(self, step: int, seconds: float) -> str | None:
        """Record that ``step`` took ``seconds``; returns the warning text when it is far too slow."""
        message = None
        if len(self.recent) == self.window and step >= self.quiet_until:
            typical = median(self.recent)
            if seconds >= self.min_seconds and seconds > self.factor * typical:
                message = (
                    f"training step {step} took {seconds:.2f} s, {seconds / typical:.0f}× the median "
                    f"{typical:.3g} s of the previous {self.window}: another process may be using the "
                    "CPU cores. See docs/train.md, 'Threads on a shared machine' (--threads, "
                    "OMP_WAIT_POLICY=PASSIVE)"
                )
                self.quiet_until = step + self.window
        self.recent.append(seconds)
        return message
