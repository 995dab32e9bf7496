"""notebooks/energy_models.ipynb runs end to end on small settings (VECFIELD_SMALL=1)."""

import pytest

from tests.notebooks import output_text, run_notebook


def test_energy_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECFIELD_SMALL", "1")
    text = output_text(run_notebook("energy_models.ipynb"))
    assert "small settings" in text
    assert "MALA on E1 + E2" in text and "ODE of summed scores" in text
    assert "AIS log Z" in text and "held-out NLL" in text and "p(h | x)" in text
