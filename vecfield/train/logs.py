"""Run logs: crash-safe CSV files (training and validation) and optional TensorBoard scalars."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from vecfield.files import atomic_write

TRAIN_LOG = "train_log.csv"
VAL_LOG = "val_log.csv"


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest string that reads back to the same float
    return str(value)


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key reading the digit runs of ``name`` as numbers: ``rmse_z500_6h`` < ``rmse_z500_12h``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([_format(v) for v in values])
    return buffer.getvalue()


class CSVLog:
    """A CSV file with a ``step`` column, appended one row per ``write`` system call.

    A crash (even SIGKILL) leaves at worst a partial last line; :meth:`start` with a
    ``resume_step`` drops it and every row whose step is beyond ``resume_step`` (rows logged
    after the checkpoint being resumed), so a resumed run continues the file without
    duplicate steps. Columns are given, or taken from the first row (then fixed).
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.columns = list(columns) if columns is not None else None
        if self.columns is not None and (not self.columns or self.columns[0] != "step"):
            raise ValueError(f"the first CSV column must be 'step', got {self.columns}")

    def start(self, resume_step: int | None) -> None:
        """A fresh file (``resume_step`` None), or the existing one cut to rows with step ≤ resume_step."""
        lines: list[str] = []
        if resume_step is not None and self.path.exists():
            lines = self._complete_lines()
            if lines:
                header = next(csv.reader([lines[0]]))
                if self.columns is not None and header != self.columns:
                    raise ValueError(f"{self.path} has columns {header}, this run writes {self.columns}; "
                                     "move the old log away or use a new run_dir")
                self.columns = header
                lines = lines[:1] + [line for line in lines[1:]
                                     if int(next(csv.reader([line]))[0]) <= resume_step]
        if not lines and self.columns is not None:
            lines = [_csv_line(self.columns)]
        text = "".join(lines).encode()

        def write(file: BinaryIO) -> None:
            file.write(text)

        atomic_write(self.path, write)

    def _complete_lines(self) -> list[str]:
        data = self.path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]  # a crash mid-append can leave a partial last line
        return data.decode().splitlines(keepends=True)

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row (keys = columns; missing keys are written empty)."""
        line = ""
        if self.columns is None:
            self.columns = list(row)
            line = _csv_line(self.columns)
        unknown = sorted(set(row) - set(self.columns))
        if unknown:
            raise ValueError(f"{self.path} has columns {self.columns}; cannot log new key(s) {unknown} — "
                             "log the same keys every time")
        line += _csv_line([row.get(column) for column in self.columns])
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, str]]:
        """All complete rows as dicts of strings."""
        return list(csv.DictReader(io.StringIO("".join(self._complete_lines()))))


class RunLogger:
    """``train_log.csv`` (fixed columns), ``val_log.csv`` (step, wallclock_s, metrics) and,
    optionally, TensorBoard event files under ``tensorboard/`` in the run folder."""

    def __init__(self, run_dir: str | os.PathLike[str], train_columns: Sequence[str], tensorboard: bool,
                 resume_step: int | None) -> None:
        run_dir = Path(run_dir)
        self.train = CSVLog(run_dir / TRAIN_LOG, train_columns)
        self.val = CSVLog(run_dir / VAL_LOG)
        self.train.start(resume_step)
        self.val.start(resume_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # optional dependency, imported on request

            purge = None if resume_step is None else resume_step + 1
            self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge)

    def log_train(self, row: Mapping[str, Any]) -> None:
        self.train.append(row)
        if self.writer is not None:
            for key, value in row.items():
                if key not in ("step", "epoch", "wallclock_s") and value is not None:
                    self.writer.add_scalar(f"train/{key}", value, row["step"])

    def log_val(self, step: int, wallclock_s: float, metrics: Mapping[str, float]) -> None:
        ordered = sorted(metrics.items(), key=lambda item: natural_key(item[0]))  # leads by value, not text
        self.val.append({"step": step, "wallclock_s": wallclock_s, **dict(ordered)})
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"val/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
