"""Scorecards and figures: contents, ratios, atomic writes, PNG output."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evalhelpers import hours

from vecfield.evaluate import crps, persistence_forecast, rmse, spread_skill_ratio
from vecfield.evaluate.plots import plot_maps, plot_scores_vs_lead, plot_spread_skill_vs_lead
from vecfield.evaluate.scorecard import scorecard_markdown, write_scorecard
from vecfield.files import write_text_atomic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEADS = hours(6, 24)


def score(values: dict[str, list], levels: list[int] | None = None) -> xr.Dataset:
    """A score Dataset: {'t': [[per level] per lead]} with levels, {'t2m': [per lead]} without."""
    data = {}
    for name, value in values.items():
        array = np.asarray(value, dtype=np.float64)
        dims = ("prediction_timedelta", "level") if array.ndim == 2 else ("prediction_timedelta",)
        data[name] = (dims, array)
    coords = {"prediction_timedelta": LEADS}
    if levels is not None:
        coords["level"] = levels
    return xr.Dataset(data, coords=coords)


def test_scorecard_rows_columns_and_ratios():
    scores = {
        "vecfield": score({"t": [[1.0, 2.0], [2.0, 3.0]], "t2m": [0.5, 1.0]}, levels=[500, 850]),
        "persistence": score({"t": [[2.0, 4.0], [4.0, 6.0]], "t2m": [1.0, 4.0]}, levels=[500, 850]),
    }
    table = scorecard_markdown(scores, model="vecfield")
    lines = table.splitlines()
    assert "| variable | level | system | 6 h | 24 h |" in lines
    assert "| t | 500 | **vecfield** | 1 | 2 |" in lines
    assert "| t | 500 | persistence | 2 (0.50) | 4 (0.50) |" in lines
    assert "| t | 850 | persistence | 4 (0.50) | 6 (0.50) |" in lines
    assert "| t2m |  | persistence | 1 (0.50) | 4 (0.25) |" in lines
    only_day = scorecard_markdown(scores, model="vecfield", leads=hours(24))
    assert "| t2m |  | **vecfield** | 1 |" in only_day.splitlines()
    with pytest.raises(ValueError, match="not among the scored systems"):
        scorecard_markdown(scores, model="graphcast")


def test_missing_entries_print_as_a_dash_and_bad_inputs_raise():
    scores = {"model": score({"a": [1.0, 2.0], "b": [1.0, 1.0]}), "baseline": score({"a": [2.0, np.nan]})}
    lines = scorecard_markdown(scores, model="model").splitlines()
    assert "| a |  | baseline | 2 (0.50) | – |" in lines
    assert "| b |  | baseline | – | – |" in lines
    with pytest.raises(ValueError, match="besides lead and level"):
        scorecard_markdown({"model": score({"a": [1.0, 2.0]}).expand_dims(time=2)}, model="model")


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    scores = {"model": score({"a": [1.0, 2.0]})}
    path = write_scorecard(tmp_path / "out" / "scorecard.md", scores, model="model")
    assert path.read_text().startswith("RMSE by lead")
    write_text_atomic(path, "replaced\n")
    assert path.read_text() == "replaced\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["scorecard.md"]


@pytest.fixture(scope="module")
def small_case() -> tuple[xr.Dataset, xr.Dataset]:
    rng = np.random.default_rng(7)
    times = pd.date_range("2020-01-01", periods=10, freq="6h")
    lat, lon = np.linspace(-60, 60, 5), np.arange(0.0, 360.0, 45.0)
    truth = xr.Dataset(
        {
            "t": (("time", "level", "latitude", "longitude"), rng.normal(size=(10, 2, 5, 8))),
            "t2m": (("time", "latitude", "longitude"), rng.normal(size=(10, 5, 8))),
        },
        coords={"time": times, "level": [500, 850], "latitude": lat, "longitude": lon},
    )
    return truth, persistence_forecast(truth, times[:4], hours(0, 6, 12, 18, 24))


def test_plots_are_written_as_png(tmp_path, small_case):
    truth, forecast = small_case
    model = forecast + 0.1
    scores = {"model": rmse(model, truth), "persistence": rmse(forecast, truth)}
    for path in (
        plot_scores_vs_lead(scores, tmp_path / "rmse.png"),
        plot_maps(
            model, truth, "t", truth["time"].values[0], hours(6, 24), tmp_path / "maps_t.png", level=500
        ),
        plot_maps(model, truth, "t2m", "2020-01-01T06", hours(0), tmp_path / "maps_t2m.png"),
    ):
        assert path.read_bytes()[:8] == PNG_SIGNATURE
    ensemble = xr.concat([model, forecast - 0.1, forecast + 0.3], dim="realization")
    plot_scores_vs_lead({"ensemble": crps(ensemble, truth)}, tmp_path / "crps.png", metric="CRPS")
    plot_spread_skill_vs_lead({"ensemble": spread_skill_ratio(ensemble, truth)}, tmp_path / "ssr.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "crps.png",
        "maps_t.png",
        "maps_t2m.png",
        "rmse.png",
        "ssr.png",
    ]
    with pytest.raises(ValueError, match=r"leads \['7 h'\] are not in the forecast"):
        plot_maps(model, truth, "t2m", truth["time"].values[0], hours(7), tmp_path / "x.png")
    with pytest.raises(ValueError, match="pass level="):
        plot_maps(model, truth, "t", truth["time"].values[0], hours(6), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"forecast.mean\('realization'\)"):
        plot_maps(ensemble, truth, "t2m", truth["time"].values[0], hours(6), tmp_path / "x.png")
