"""notebooks/image_generation.ipynb runs end to end on small settings (VECFIELD_SMALL=1)."""

import re

import pytest

from tests.notebooks import output_text, run_notebook


def test_image_generation_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECFIELD_SMALL", "1")
    outputs = run_notebook("image_generation.ipynb")
    text = output_text(outputs)
    assert "small settings" in text
    assert "1797 images of shape (1, 8, 8), 17 levels" in text
    assert "trained 20 steps" in text
    accuracy = float(re.search(r"classifier held-out accuracy: ([0-9.]+)", text).group(1))
    assert accuracy > 0.9  # 5-nearest neighbours on the digits' pixels
    rows = re.findall(r"^\s+([0-9.]+) \| ([0-9.]+)$", text, flags=re.MULTILINE)
    assert [float(w) for w, _ in rows] == [0.0, 1.0, 2.0, 4.0]
    assert all(0.0 <= float(a) <= 1.0 for _, a in rows)
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) == 1 + 4  # the training digits and one grid per guidance scale
