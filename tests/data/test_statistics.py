"""Normalization statistics equal numpy on the same arrays, over the training period only."""

import numpy as np
import pytest

from vecfield.data.sources import open_dataset
from vecfield.data.statistics import compute_statistics, load_statistics, write_statistics


def test_statistics_equal_numpy_on_real_era5(shared_data, tmp_path):
    ds = open_dataset(shared_data / "era5/era5-levels-members.grib", member=2)
    train = ("2017-01-01T00", "2017-01-02T00")  # the first 3 of 4 states
    stats = compute_statistics(ds.chunk({"time": 1}), train)
    for name in ds.data_vars:
        x = ds[name].values[:3].astype(np.float64)  # (time, level, lat, lon)
        for i, level in enumerate(ds["level"].values):
            xi = x[:, i]
            assert stats["mean"][name].sel(level=level) == pytest.approx(xi.mean(), rel=1e-12)
            assert stats["std"][name].sel(level=level) == pytest.approx(xi.std(), rel=1e-12)
            assert stats["diff_std"][name].sel(level=level) == pytest.approx(
                np.diff(xi, axis=0).std(), rel=1e-12
            )
    write_statistics(tmp_path / "s.zarr", stats)
    loaded = load_statistics(tmp_path / "s.zarr")
    for kind in stats:
        np.testing.assert_array_equal(loaded[kind]["temperature"].values, stats[kind]["temperature"].values)


def test_missing_statistics_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no normalization statistics"):
        load_statistics(tmp_path / "none.zarr")
