"""The package's architecture holds: DESIGN.md's layers (import-linter contract in pyproject.toml),
no import circle between modules, and the xarray metrics load without torch."""

import logging
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx
from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_no_package_imports_from_a_layer_above_it(capsys):
    # lint_imports configures logging with dictConfig, which disables every existing logger; keep the
    # package's loggers as they were, or later tests in this process lose vecfield's messages
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    disabled = {logger: logger.disabled for logger in loggers}
    try:
        status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        for logger, state in disabled.items():
            logger.disabled = state
    assert status == EXIT_STATUS_SUCCESS, f"an import breaks the layer contract:\n{capsys.readouterr().out}"


def test_no_import_circle_between_modules():
    graph = grimp.build_graph("vecfield")
    edges = nx.DiGraph()
    for module in graph.modules:
        imported = graph.find_modules_directly_imported_by(module)
        edges.add_edges_from((module, other) for other in imported)
    circles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert not circles, f"modules importing each other: {circles}"


def test_importing_the_weather_metrics_does_not_load_torch():
    code = "import sys, vecfield.evaluate; print(sorted(m for m in ('torch', 'zarr') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.strip() == "[]"
