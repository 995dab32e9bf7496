"""The entry wrapper every pipelines/*.py shares (vecfield/cli.py): user errors → one line and exit
code 2, bugs → traceback, --debug, --threads, and OpenMP's wait policy set before torch loads."""

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vecfield import cli

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted(p.stem for p in (ROOT / "pipelines").glob("*.py") if not p.stem.startswith("_"))


def _config_error(argv: list[str]) -> None:
    from vecfield.forecast.config import load_forecast_config

    load_forecast_config(argv[0])


def test_a_user_error_is_one_line_and_exit_code_2(tmp_path, capsys) -> None:
    code = cli.run(_config_error, [str(tmp_path / "absent.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: config file") and "does not exist" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_debug_keeps_the_traceback_of_a_user_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        cli.run(lambda argv: _config_error([argv[0]]), [str(tmp_path / "absent.yaml"), "--debug"])


def test_a_bug_keeps_its_traceback() -> None:
    """ValueError/TypeError raised inside a library, or by a failing operation, are not user errors."""

    def library_error(argv: list[str]) -> None:
        np.zeros(-1)  # ValueError raised inside numpy

    with pytest.raises(ValueError, match="negative dimensions"):
        cli.run(library_error, [])
    with pytest.raises(RuntimeError):
        cli.run(lambda argv: torch.zeros(2) @ torch.zeros(3), [])


def test_threads_option_is_validated_and_applied(capsys) -> None:
    import argparse

    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(argparse.ArgumentParser(), ["--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads: must be ≥ 1, got 0" in capsys.readouterr().err
    before = torch.get_num_threads()
    try:
        args = cli.parse_args(argparse.ArgumentParser(), ["--threads", "2"])
        assert args.threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", PIPELINES)
def test_every_pipeline_has_threads_and_debug(name, capsys) -> None:
    module = importlib.import_module(f"pipelines.{name}")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--threads" in text and "--debug" in text


def test_every_pipeline_sets_the_wait_policy_before_torch_loads() -> None:
    """OpenMP reads OMP_WAIT_POLICY once, when torch loads it: each pipeline must import
    vecfield.cli first. A meta-path hook stops each import at torch and records the
    variable then."""
    probe = f"""
import importlib, os, sys
class Stop(Exception):
    pass
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            seen[current] = os.environ.get("OMP_WAIT_POLICY")
            raise Stop
        return None
seen = {{}}
sys.meta_path.insert(0, Hook())
for current in {PIPELINES!r}:
    os.environ.pop("OMP_WAIT_POLICY", None)
    for module in [m for m in sys.modules if m.split(".")[0] in ("vecfield", "pipelines")]:
        del sys.modules[module]
    try:
        importlib.import_module("pipelines." + current)
    except Stop:  # the hook stopped this pipeline's import at torch, as intended
        continue
print(seen)
"""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = eval(result.stdout.strip().splitlines()[-1])  # a dict literal printed above
    assert {"train_forecaster", "rollout", "evaluate", "quickstart", "train_toy_generator"} <= set(seen)
    assert seen == dict.fromkeys(seen, "PASSIVE")  # pipelines absent from seen never load torch


def test_command_line_mistake_prints_a_message_not_a_traceback(tmp_path) -> None:
    """The real command: python pipelines/rollout.py with a wrong type in an override (a TypeError,
    which the pipelines used to let through as a traceback)."""
    config = tmp_path / "c.yaml"
    config.write_text((ROOT / "configs" / "quickstart.yaml").read_text())
    result = subprocess.run(
        [sys.executable, str(ROOT / "pipelines" / "rollout.py"), "--config", str(config), "--checkpoint",
         str(tmp_path / "none.pt"), "rollout.steps=three"],
        cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: rollout.steps: expected int, got 'three' (str)"
