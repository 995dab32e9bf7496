"""notebooks/density_estimation.ipynb runs end to end on small settings (VECFIELD_SMALL=1)."""

from pathlib import Path

import pytest

from tests.notebooks import output_text, run_notebook


def test_density_notebook_executes(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECFIELD_SMALL", "1")
    text = output_text(run_notebook("density_estimation.ipynb"))
    assert "small settings" in text
    assert "log L: two components -2952.70, one -2979.06" in text
    assert "bits/dim" in text and "uniform baseline: 4.087" in text
