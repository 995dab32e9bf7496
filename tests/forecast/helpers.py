"""A tiny forecasting world for tests: travelling waves on an 11.25° grid (16 × 32, no poles)."""

from pathlib import Path

import numpy as np
import xarray as xr

from vecfield.data.forcings import add_forcings
from vecfield.data.statistics import compute_statistics
from vecfield.data.streaming import WindowedDataset
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.config import ModelConfig

RESOLUTION = 11.25
TINY_MODEL = ModelConfig(
    mesh_min_level=0,
    mesh_max_level=2,
    latent=16,
    processor_layers=2,
    time_features=8,
    variable_weights={"2m_temperature": 0.5},
)


def wave_dataset(days: float = 12.0, seed: int = 0) -> xr.Dataset:
    """6-hourly canonical dataset from 2020-01-01: geopotential and u at 500/850 hPa, 2m_temperature,
    static land_sea_mask and geopotential_at_surface, and the computed forcings. Eastward-moving
    zonal waves plus a small seeded perturbation."""
    rng = np.random.default_rng(seed)
    n = int(days * 4)
    time = np.datetime64("2020-01-01T00", "ns") + np.arange(n) * np.timedelta64(6, "h")
    lat = np.arange(-90 + RESOLUTION / 2, 90, RESOLUTION)
    lon = np.arange(0, 360, RESOLUTION)
    level = np.array([500, 850])
    hours = 6.0 * np.arange(n)[:, None, None]
    phase = np.deg2rad(lon)[None, None, :] * 2 - 2 * np.pi * hours / 96.0
    envelope = np.cos(np.deg2rad(lat))[None, :, None]
    wave = envelope * np.sin(phase) + 0.01 * rng.standard_normal((n, lat.size, lon.size))
    z = np.stack([9.81 * (5500 + 80 * wave), 9.81 * (1450 + 40 * wave)], axis=1)
    u = np.stack([15 * envelope + 5 * wave, 5 * envelope + 2 * wave], axis=1)
    t2m = 280 + 20 * envelope - 20 + 3 * np.roll(wave, 2, axis=-1)
    lsm = (np.sin(np.deg2rad(lon))[None, :] * np.cos(np.deg2rad(lat))[:, None] > 0.3).astype(np.float32)
    ds = xr.Dataset(
        {
            "geopotential": (("time", "level", "latitude", "longitude"), z.astype(np.float32)),
            "u_component_of_wind": (("time", "level", "latitude", "longitude"), u.astype(np.float32)),
            "2m_temperature": (("time", "latitude", "longitude"), t2m.astype(np.float32)),
            "land_sea_mask": (("latitude", "longitude"), lsm),
            "geopotential_at_surface": (("latitude", "longitude"), (900.0 * lsm).astype(np.float32)),
        },
        coords={"time": time, "level": level, "latitude": lat, "longitude": lon},
    )
    ds.attrs["state_variables"] = ["geopotential", "u_component_of_wind", "2m_temperature"]
    ds.attrs["static_variables"] = ["land_sea_mask", "geopotential_at_surface"]
    return add_forcings(ds)


def tiny_spec(ds: xr.Dataset, n_leads: int = 2) -> tuple[ForecasterSpec, WindowedDataset, dict]:
    """The spec, training windows and statistics of a tiny forecaster on ``ds``."""
    windows = WindowedDataset(ds, n_inputs=2, n_leads=n_leads)
    statistics = compute_statistics(ds)
    return ForecasterSpec.from_dataset(windows, statistics, TINY_MODEL, 6), windows, statistics


def tiny_pipeline_config(tmp_path: Path, source: Path) -> dict:
    """The plain config of the tiny command-line pipeline: a 15-day dataset built from the zarr
    ``source`` (``wave_dataset(days=16)``), 4 training steps, 4-step rollouts from 3 inits."""
    return {
        "dataset": {
            "output": str(tmp_path / "data.zarr"),
            "sources": [{"kind": "zarr", "path": str(source)}],
            "variables": ["geopotential", "u_component_of_wind", "2m_temperature"],
            "levels": [500, 850],
            "static": ["land_sea_mask", "geopotential_at_surface"],
            "time": {"start": "2020-01-01T00", "end": "2020-01-15T18", "step_hours": 6},
            "splits": {
                "train": ["2020-01-01T00", "2020-01-08T18"],
                "val": ["2020-01-09T00", "2020-01-10T18"],
                "test": ["2020-01-11T00", "2020-01-15T18"],
            },
        },
        "model": {"mesh_max_level": 2, "latent": 16, "processor_layers": 1, "time_features": 4},
        "train": {
            "run_dir": str(tmp_path / "train"),
            "max_steps": 4,
            "batch_size": 4,
            "progress_bar": False,
            "curriculum": [[0, 1], [2, 2]],
            "validate_every": 2,
            "best_metric": "score",
            "ema_decay": 0.9,
        },
        "rollout": {
            "output": str(tmp_path / "out"),
            "steps": 4,
            "init_every_hours": 24,
            "max_inits": 3,
            "validation_steps": 2,
            "map_leads_hours": [12],
        },
    }
