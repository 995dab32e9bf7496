"""Scorecards and figures: contents, ratios, atomic writes, PNG output."""

import os
import stat

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from evalhelpers import hours

from vecfield.evaluate import acc, compute_climatology, crps, persistence_forecast, rmse, spread_skill_ratio
from vecfield.evaluate.plots import (
    plot_acc_vs_lead,
    plot_maps,
    plot_scores_vs_lead,
    plot_spread_skill_vs_lead,
)
from vecfield.evaluate.scorecard import evaluation_period, scorecard_markdown, write_scorecard
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
    assert "| variable | level | units | system | 6 h | 24 h |" in lines
    assert "| t | 500 | K | **vecfield** | 1 | 2 |" in lines  # catalogue units of the alias t
    assert "| t | 500 | K | persistence | 2 (0.50) | 4 (0.50) |" in lines
    assert "| t | 850 | K | persistence | 4 (0.50) | 6 (0.50) |" in lines
    assert "| t2m |  | K | persistence | 1 (0.50) | 4 (0.25) |" in lines
    only_day = scorecard_markdown(scores, model="vecfield", leads=hours(24))
    assert "| t2m |  | K | **vecfield** | 1 |" in only_day.splitlines()
    with pytest.raises(ValueError, match="not among the scored systems"):
        scorecard_markdown(scores, model="graphcast")


def test_missing_entries_print_as_a_dash_and_bad_inputs_raise():
    scores = {"model": score({"a": [1.0, 2.0], "b": [1.0, 1.0]}), "baseline": score({"a": [2.0, np.nan]})}
    lines = scorecard_markdown(scores, model="model").splitlines()
    assert "| a |  | ? | baseline | 2 (0.50) | – |" in lines  # no units attribute, not in the catalogue
    assert "| b |  | ? | baseline | – | – |" in lines
    with pytest.raises(ValueError, match="besides lead and level"):
        scorecard_markdown({"model": score({"a": [1.0, 2.0]}).expand_dims(time=2)}, model="model")


def test_every_row_states_its_units_and_acc_and_bias_have_no_ratios():
    z = {"geopotential": [[60.0], [120.0]], "u_component_of_wind": [[1.0], [2.0]], "q": [[1e-4], [2e-4]]}
    doubled = {name: [[2 * value for value in row] for row in rows] for name, rows in z.items()}
    model, baseline = score(z, levels=[500]), score(doubled, levels=[500])
    model["u_component_of_wind"].attrs["units"] = "knots"  # a units attribute wins over the catalogue
    lines = scorecard_markdown({"m": model, "b": baseline}, model="m").splitlines()
    assert "| geopotential | 500 | m² s⁻² | **m** | 60 | 120 |" in lines
    assert "| u_component_of_wind | 500 | knots | b | 2 (0.50) | 4 (0.50) |" in lines
    assert "| q | 500 | kg kg⁻¹ | **m** | 0.0001 | 0.0002 |" in lines
    acc = scorecard_markdown({"m": model, "b": baseline}, model="m", metric="ACC", units="1", ratios=False)
    assert "| geopotential | 500 | 1 | b | 120 | 240 |" in acc.splitlines() and "model / baseline" not in acc


def test_the_evaluation_period_names_the_initializations_and_leads():
    inits = np.datetime64("2020-01-11T06", "ns") + np.arange(3) * np.timedelta64(24, "h")
    assert evaluation_period(inits[::-1], hours(6, 12, 18, 24)) == (
        "Evaluation period: 3 initializations from 2020-01-11 06:00 to 2020-01-13 06:00 UTC (every 24 h); "
        "leads 6 h to 24 h; valid times to 2020-01-14 06:00 UTC."
    )
    assert "1 initialization from" in evaluation_period(inits[:1], hours(6))
    with pytest.raises(ValueError, match="at least one initialization"):
        evaluation_period(inits[:0], hours(6))


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    scores = {"model": score({"a": [1.0, 2.0]})}
    previous = os.umask(0o022)
    try:
        path = write_scorecard(tmp_path / "out" / "scorecard.md", scores, model="model")
        png = plot_scores_vs_lead(scores, tmp_path / "out" / "rmse.png")
    finally:
        os.umask(previous)
    # readable by others as any file the user writes (mkstemp made them 0600)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(png.stat().st_mode) == 0o644
    assert path.read_text().startswith("RMSE by lead")
    write_text_atomic(path, "replaced\n")
    assert path.read_text() == "replaced\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["rmse.png", "scorecard.md"]


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


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The figures the plot functions save, in order (each still written to its file)."""
    import vecfield.evaluate.plots as plots

    figures, save = [], plots.save_figure_atomic

    def keep(figure, path, **kwargs):
        figures.append(figure)
        return save(figure, path, **kwargs)

    monkeypatch.setattr(plots, "save_figure_atomic", keep)
    return figures


def weather_case() -> tuple[xr.Dataset, xr.Dataset]:
    """Geopotential (500 hPa, a pole-to-equator gradient plus a wave) and 2 m temperature on a 10° grid,
    with a land-sea mask; a forecast of 3 days from persistence plus a small offset."""
    rng = np.random.default_rng(3)
    times = pd.date_range("2020-01-01", periods=16, freq="6h")
    lat, lon = np.arange(-85.0, 90.0, 10.0), np.arange(0.0, 360.0, 10.0)
    gradient = 9.81 * (5500 + 300 * np.cos(np.deg2rad(lat)))[:, None] + 500 * np.sin(np.deg2rad(2 * lon))
    z = gradient[None, None] + rng.normal(0, 20, (16, 1, lat.size, lon.size))
    t2m = 280 + rng.normal(0, 3, (16, lat.size, lon.size))
    land = ((lon[None, :] > 60) & (lon[None, :] < 150) & (np.abs(lat)[:, None] < 50)).astype(np.float32)
    truth = xr.Dataset(
        {"geopotential": (("time", "level", "latitude", "longitude"), z),
         "2m_temperature": (("time", "latitude", "longitude"), t2m),
         "land_sea_mask": (("latitude", "longitude"), land)},
        coords={"time": times, "level": [500], "latitude": lat, "longitude": lon},
    )
    state = truth[["geopotential", "2m_temperature"]]
    forecast = persistence_forecast(state, times[1:3], hours(*range(6, 78, 6)))
    return truth, forecast + 1.0


def test_score_plots_name_levels_in_hpa_state_units_and_tick_every_24_hours(tmp_path, drawn):
    truth, forecast = weather_case()
    scores = {"model": rmse(forecast, truth[["geopotential", "2m_temperature"]])}
    plot_scores_vs_lead(scores, tmp_path / "rmse.png")
    axes = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["500 hPa geopotential", "2 m temperature"]
    assert [ax.get_ylabel() for ax in axes] == ["RMSE (m² s⁻²)", "RMSE (K)"]
    assert all(ax.get_xlabel() == "lead time (h)" for ax in axes)
    ticks = [tick for tick in axes[0].get_xticks() if 0 <= tick <= 72]
    assert ticks == [0, 24, 48, 72]


def test_acc_plot_has_the_useful_line_at_0_6_and_one_y_range(tmp_path, drawn):
    truth, forecast = weather_case()
    climatology = compute_climatology(truth[["geopotential", "2m_temperature"]], window_days=1)
    scores = {"model": acc(forecast, truth, climatology),
              "persistence": acc(forecast - 1.0, truth, climatology)}
    plot_acc_vs_lead(scores, tmp_path / "acc.png")
    axes = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert len(axes) == 2 and len({ax.get_ylim() for ax in axes}) == 1 and axes[0].get_ylim()[1] == 1.0
    for ax in axes:
        assert ax.get_ylabel() == "ACC"
        assert any(list(line.get_ydata()) == [0.6, 0.6] for line in ax.get_lines())


def test_maps_show_times_units_degrees_contoured_geopotential_and_the_coast(tmp_path, drawn):
    from matplotlib.contour import ContourSet

    truth, forecast = weather_case()
    init = truth["time"].values[1]
    plot_maps(forecast, truth, "geopotential", init, hours(24, 72), tmp_path / "z500.png", level=500)
    figure = drawn[0]
    assert figure.get_suptitle().startswith("500 hPa geopotential, initialized 2020-01-01 06:00 UTC")
    maps = [ax for ax in figure.axes if ax.get_title()]
    assert maps[0].get_title() == "truth, valid 2020-01-02 06:00 UTC (+24h)"
    assert maps[5].get_title() == "forecast − truth, valid 2020-01-04 06:00 UTC (+72h)"
    bars = [ax.get_ylabel() for ax in figure.axes if not ax.get_title()]  # the colour bars
    assert bars == ["departure from the zonal mean (m² s⁻²)"] * 2 + ["forecast − truth (m² s⁻²)"] + \
        ["departure from the zonal mean (m² s⁻²)"] * 2 + ["forecast − truth (m² s⁻²)"]
    labels = maps[0].yaxis.get_major_formatter()
    assert [labels(v, 0) for v in (-30, 0, 60)] == ["30°S", "0°", "60°N"]
    assert [maps[0].xaxis.get_major_formatter()(v, 0) for v in (90, 180, 270)] == ["90°E", "180°", "90°W"]
    for ax in maps:
        contour_sets = [c for c in ax.collections if isinstance(c, ContourSet)]
        coast = [c for c in contour_sets if list(c.levels) == [0.5]]
        assert len(coast) == 1  # the land-sea outline on every panel
        contoured = ax.get_title().startswith(("truth,", "forecast,"))  # the field's own contours
        assert len(contour_sets) == (2 if contoured else 1)
        shading = ax.collections[0].get_clim()
        assert shading[0] == -shading[1]  # anomalies and errors on a symmetric scale, not raw Φ
    without_mask = truth.drop_vars("land_sea_mask")
    plot_maps(forecast, without_mask, "2m_temperature", init, hours(24), tmp_path / "t.png")
    maps = [ax for ax in drawn[1].axes if ax.get_title()]
    assert not any(isinstance(c, ContourSet) for ax in maps for c in ax.collections)  # no mask: no outline
    assert [ax.get_ylabel() for ax in drawn[1].axes if not ax.get_title()] == [
        "2 m temperature (K)", "2 m temperature (K)", "forecast − truth (K)"]
