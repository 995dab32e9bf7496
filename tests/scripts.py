"""Loading a script of ``pipelines/`` as a module in the tests (its functions, without running it)."""

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def load_script(name: str) -> ModuleType:
    """``pipelines/<name>.py`` imported as the module ``name`` (once per test session)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "pipelines" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
