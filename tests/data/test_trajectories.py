"""Independent runs on one time axis: the ``trajectory`` coordinate survives the build, and no
window, statistic or initialization relates two times of different runs."""

import json

import numpy as np
import pytest
import xarray as xr

from vecfield.data.build import build_dataset
from vecfield.data.statistics import compute_statistics
from vecfield.data.streaming import WindowedDataset
from vecfield.data.trajectories import TRAJECTORY_COORD, run_labels, same_run
from vecfield.forecast.config import load_forecast_config
from vecfield.pipelines.forecast_evaluation import initialization_times


def _with_runs(ds: xr.Dataset, ids: np.ndarray) -> xr.Dataset:
    return ds.assign_coords({TRAJECTORY_COORD: ("time", ids)})


def test_run_labels_count_changes_not_values():
    times = np.arange(6) * np.timedelta64(6, "h") + np.datetime64("2000-01-01", "ns")
    ds = xr.Dataset(coords={"time": times})
    np.testing.assert_array_equal(run_labels(ds), np.zeros(6))
    ds = _with_runs(ds, np.array([3, 3, 5, 5, 5, 1]))
    np.testing.assert_array_equal(run_labels(ds), [0, 0, 1, 1, 1, 2])
    first, last = times[[0, 1, 2, 4]], times[[1, 2, 4, 5]]
    np.testing.assert_array_equal(same_run(ds, first, last), [True, False, True, False])
    # past the end of the data: the last run continues
    assert same_run(ds, times[5:], times[5:] + np.timedelta64(1, "D")).all()


def test_build_keeps_runs_and_windows_and_statistics_respect_them(tmp_path, synthetic_era5, dataset_config):
    source = synthetic_era5()
    hours = source.sizes["time"]
    ids = (np.arange(hours) >= 36).astype(np.int64)  # two runs: hours 0–35 and 36–71
    source_path = tmp_path / "runs.zarr"
    _with_runs(source, ids).to_zarr(source_path, zarr_format=2, consolidated=False)
    config = dataset_config(tmp_path, source_path, output=str(tmp_path / "out" / "runs.zarr"))
    built = xr.open_zarr(build_dataset(config, progress=False))
    stored = built[TRAJECTORY_COORD].values
    expected = (built["time"].values >= np.datetime64("2020-01-02T12", "ns")).astype(np.int64)
    np.testing.assert_array_equal(stored, expected)

    data = WindowedDataset(built, n_inputs=2, n_leads=2, step_hours=6, split=None)
    labels = run_labels(built)
    span = 3
    assert all(labels[s] == labels[s + span] for s in data.starts)
    everywhere = np.arange(built.sizes["time"] - span)
    assert set(everywhere) - set(data.starts) == {s for s in everywhere if labels[s] != labels[s + span]}
    assert len(data.starts) == len(everywhere) - span  # exactly the 3 windows over the junction are gone

    z = built["geopotential"].sel(level=500).values.astype(np.float64)
    differences = np.diff(z, axis=0)[labels[1:] == labels[:-1]]
    diff_std = compute_statistics(built[["geopotential"]])["diff_std"]["geopotential"].sel(level=500)
    assert float(diff_std) == pytest.approx(differences.std(), rel=1e-10)
    across = np.diff(z, axis=0).std()
    assert abs(float(diff_std) - across) > 1e-6 * across  # the junction's jump would have changed it


def test_initializations_keep_predecessor_and_every_lead_in_one_run():
    times = np.datetime64("2002-03-01T00", "ns") + np.arange(120) * np.timedelta64(6, "h")
    ids = np.repeat([0, 1, 2], 40)  # runs of 10 days
    truth = _with_runs(xr.Dataset(coords={"time": times}), ids)
    truth.attrs["splits"] = json.dumps({"test": ["2002-03-01T00", "2002-03-30T18"]})
    overrides = ["rollout.steps=8", "rollout.init_every_hours=6"]
    config = load_forecast_config("configs/quickstart.yaml", overrides)
    inits = initialization_times(truth, config)
    step = np.timedelta64(6, "h")
    index = {t: i for i, t in enumerate(times)}
    for t in inits:
        assert ids[index[t - step]] == ids[index[t]] == ids[index[t + 8 * step]]
    per_run = 40 - 1 - 8  # a predecessor, then 8 leads inside the run
    assert inits.size == 3 * per_run
