"""The rollout's fast paths give exactly what the lead-by-lead path gives: one xarray assembly for
all leads, and forcings computed once per distinct valid time."""

import numpy as np
import torch
import xarray as xr

from tests.forecast.helpers import tiny_spec, wave_dataset
from vecfield.data.forcings import compute_forcings
from vecfield.forecast import Forecaster


def _forecaster(ds: xr.Dataset, tmp_path) -> Forecaster:
    spec, _, _ = tiny_spec(ds, n_leads=1)
    torch.manual_seed(0)
    return Forecaster(spec.build(str(tmp_path / "graphs")), spec, chunk_steps=3)


def test_rollout_equals_its_lead_by_lead_chunks(tmp_path):
    ds = wave_dataset(days=4)
    forecaster = _forecaster(ds, tmp_path)
    inits = ds["time"].values[[1, 2, 6]]  # two of them 6 h apart: shared forcing times
    forecast = forecaster.rollout(ds, 7, init_times=inits, batch_size=2)
    leads = list(forecaster.rollout_chunks(ds, 7, init_times=inits, batch_size=2))
    chunks = xr.concat(leads, "prediction_timedelta")
    xr.testing.assert_identical(forecast.drop_attrs(deep=False), chunks)
    assert forecast.sizes["prediction_timedelta"] == 7 and forecast["time"].size == 3


def test_forcings_of_shared_valid_times_equal_a_direct_computation(tmp_path):
    ds = wave_dataset(days=2)
    forecaster = _forecaster(ds, tmp_path)
    current = ds["time"].values[[1, 2, 3]]
    got = forecaster._forcings(current, 4).numpy()  # (3 inits, 6 times, N, F)
    for b, t in enumerate(current):
        times = t + np.arange(-1, 5) * forecaster.step
        direct = forecaster.spec.forcing_layout.stack(compute_forcings(times, ds["latitude"].values,
                                                                      ds["longitude"].values))
        np.testing.assert_array_equal(got[b], direct)
