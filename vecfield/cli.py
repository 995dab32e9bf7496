"""The entry wrapper shared by every ``pipelines/*.py`` script.

    from vecfield.cli import parse_args, run   # first vecfield import of a pipeline (see below)

    def main(argv=None):
        parser = argparse.ArgumentParser(...)
        args = parse_args(parser, argv)         # adds --threads and --debug, applies --threads
        ...

    if __name__ == "__main__":
        sys.exit(run(main))

What :func:`run` does with an exception:

- a *user error* — a ValueError or TypeError (CheckpointError, config errors …), or a
  FileNotFoundError/NotADirectoryError, raised by a ``raise`` statement in vecfield's own code or
  in a pipeline — becomes ``error: <message>`` on stderr and exit code 2 (argparse's code for a
  bad command line);
- anything else (an exception raised inside numpy, torch, xarray …, or by a failing operation
  rather than a ``raise`` in our code) is a bug: its traceback is shown as usual;
- ``--debug`` shows the traceback of user errors too.

Threads: importing this module sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it.
With the OpenMP default, threads that wait at a barrier spin on their core; when another process
holds one of the cores, the spinning thread and the preempted one take turns and every parallel
region waits for the scheduler: training steps on 2 cores took 13–40× longer beside a busy loop
(docs/train.md, "Threads on a shared machine"). PASSIVE makes waiting threads sleep. OpenMP reads
the variable once, when torch loads it, so a pipeline imports this module before anything that
imports torch (``vecfield/__init__`` imports nothing heavy).
"""

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: exception types that, raised on purpose by vecfield or a pipeline, report a mistake of the user
USER_ERROR_TYPES: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
)
#: the exit code of a user error (as argparse's for a bad command line)
USER_ERROR_EXIT = 2
_PACKAGE = Path(__file__).resolve().parent
_OWN_CODE = (_PACKAGE, _PACKAGE.parent / "pipelines")  # vecfield/ and the scripts in pipelines/


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def add_runtime_options(parser: argparse.ArgumentParser, default_threads: int | None = None) -> None:
    """Add the options every pipeline shares: ``--threads N`` and ``--debug``."""
    shown = "torch's, one per core" if default_threads is None else str(default_threads)
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=default_threads,
        help=f"torch threads in this process (default: {shown}; see docs/train.md)",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of any error")


def apply_runtime_options(args: argparse.Namespace) -> None:
    """Set the torch thread count of ``args.threads`` (when given)."""
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def parse_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None, default_threads: int | None = None
) -> argparse.Namespace:
    """``parser`` with the shared options added, parsed from ``argv``, with ``--threads`` applied."""
    add_runtime_options(parser, default_threads)
    args = parser.parse_args(argv)
    apply_runtime_options(args)
    return args


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` reports a user's mistake: one of :data:`USER_ERROR_TYPES`, raised by a
    ``raise`` statement in vecfield's or the pipelines' own code (not inside a library, not by a
    failing operation such as ``None + 1``)."""
    if not isinstance(error, USER_ERROR_TYPES) or error.__traceback__ is None:
        return False
    origin = traceback.extract_tb(error.__traceback__)[-1]
    path = Path(origin.filename).resolve()
    own = any(path.is_relative_to(folder) for folder in _OWN_CODE)
    return own and (origin.line or "").lstrip().startswith("raise")


def error_message(error: BaseException) -> str:
    """The ``error: …`` text printed for a user error."""
    return f"error: {error}"


class _StdoutHandler(logging.Handler):
    """Writes each record as a line to the ``sys.stdout`` of the moment (which callers may swap)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), flush=True)
        except Exception:  # logging's contract: report through handleError, never raise
            self.handleError(record)


def show_library_messages() -> None:
    """Print vecfield's INFO log records (notes on the scores, data-generation and wait messages) as
    plain lines on stdout; idempotent."""
    package = logging.getLogger("vecfield")
    if not any(isinstance(handler, _StdoutHandler) for handler in package.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package.addHandler(handler)
    package.setLevel(logging.INFO)


def run(main: Callable[[list[str]], Any], argv: list[str] | None = None) -> int:
    """Call ``main(argv)`` (default: the command line) and return the process exit code: 0, or
    :data:`USER_ERROR_EXIT` after printing a user error's one-line message (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    show_library_messages()
    try:
        main(argv)
    except Exception as error:
        if "--debug" in argv or not is_user_error(error):
            raise
        print(error_message(error), file=sys.stderr)
        return USER_ERROR_EXIT
    return 0
