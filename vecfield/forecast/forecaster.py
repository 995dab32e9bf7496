"""``Forecaster``: roll a trained forecaster out from xarray initial conditions.

    forecaster = Forecaster.load("runs/quickstart/checkpoints/best.pt")
    forecast = forecaster.rollout(initial, steps=20)          # WeatherBench2 forecast layout
    forecaster.rollout_to_zarr(initial, 40, "forecast.zarr")   # streamed lead by lead, resumable

``initial`` is a canonical dataset (time = valid time, [level,] latitude, longitude) holding the
state variables at each initialization time t and at t − Δt. Forcings are computed from the valid
times (``vecfield.data.forcings``); static fields come from the checkpoint. The output has dims
(time = initialization time, prediction_timedelta, [level,] latitude, longitude), leads Δt … kΔt.

Memory: all initializations advance together lead by lead (in batches of ``batch_size`` through
the network), holding two states per initialization and the forcings of ``chunk_steps`` steps, so
the memory does not grow with the number of steps. ``rollout_to_zarr`` writes each lead into a
store laid out in advance and records the number of finished leads after each write; a rerun
reads the last two finished leads back and continues with identical values.
"""

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import zarr

import vecfield
from vecfield.data.forcings import compute_forcings
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.rollout import autoregressive
from vecfield.forecast.step import OneStepForecaster
from vecfield.train.checkpoint import load_checkpoint

COMPLETED = "completed_leads"


class Forecaster:
    """A trained one-step forecaster with its spec; see the module docstring."""

    def __init__(
        self,
        module: OneStepForecaster,
        spec: ForecasterSpec,
        provenance: dict[str, Any] | None = None,
        chunk_steps: int = 8,
    ) -> None:
        if chunk_steps < 1:
            raise ValueError(f"chunk_steps must be ≥ 1, got {chunk_steps}")
        self.module = module.eval()
        self.spec = spec
        self.provenance = dict(provenance or {})
        self.chunk_steps = chunk_steps
        self.step = np.timedelta64(spec.step_hours, "h").astype("timedelta64[ns]")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        device: str = "cpu",
        graph_cache: str | None = None,
        prefer_ema: bool = True,
    ) -> "Forecaster":
        """A forecaster from a checkpoint of ``pipelines/train_forecaster.py`` (weights-only load;
        the EMA weights when present and ``prefer_ema``)."""
        checkpoint = load_checkpoint(path)
        spec = ForecasterSpec.from_metadata(checkpoint.get("metadata", {}), str(path))
        module = spec.build(graph_cache)
        use_ema = prefer_ema and checkpoint.get("ema") is not None
        module.load_state_dict(checkpoint["ema"]["weights"] if use_ema else checkpoint["model"])
        provenance = {
            "checkpoint": str(path),
            "checkpoint_step": int(checkpoint["step"]),
            "weights": "ema" if use_ema else "raw",
        }
        return cls(module.to(device), spec, provenance)

    # ------------------------------------------------------------------ inputs
    def _check(self, initial: xr.Dataset) -> None:
        spec = self.spec
        if not isinstance(initial, xr.Dataset):
            raise TypeError(
                f"initial must be an xarray.Dataset in the canonical layout, got {type(initial).__name__}"
            )
        missing = [name for name in spec.state_layout.variables if name not in initial]
        if missing:
            raise ValueError(
                f"the initial dataset lacks the state variable(s) {missing}; the forecaster "
                f"needs {list(spec.state_layout.variables)} (it has {sorted(initial.data_vars)})"
            )
        for dim in ("time", "latitude", "longitude"):
            if dim not in initial.dims:
                raise ValueError(
                    f"the initial dataset has no {dim!r} dimension; open it with "
                    "vecfield.data.sources.open_dataset for the canonical layout"
                )
        for name, values in (("latitude", spec.latitude), ("longitude", spec.longitude)):
            given = initial[name].values
            if given.shape != values.shape or not np.allclose(given, values, atol=1e-3):
                raise ValueError(
                    f"the initial dataset's {name}s ({given.size} from {given.min():g} to "
                    f"{given.max():g}) differ from the forecaster's grid ({values.size} from "
                    f"{values.min():g} to {values.max():g}); regrid it (pipelines/build_dataset.py)"
                )
        levels = sorted({level for _, level in spec.state_layout.channels if level is not None})
        if levels:
            have = set(initial["level"].values.tolist()) if "level" in initial.coords else set()
            lacking = [level for level in levels if level not in have]
            if lacking:
                raise ValueError(
                    f"the initial dataset lacks pressure level(s) {lacking} hPa; "
                    f"the forecaster needs {levels}"
                )

    def init_times(self, initial: xr.Dataset) -> np.ndarray:
        """Every time of ``initial`` whose predecessor t − Δt is also in it (possible initializations)."""
        times = initial["time"].values.astype("datetime64[ns]")
        return times[np.isin(times - self.step, times)]

    def _states(self, initial: xr.Dataset, inits: np.ndarray) -> torch.Tensor:
        """(B, 2, N, C) states at t − Δt and t for each initialization t."""
        times = np.stack([inits - self.step, inits], axis=1).reshape(-1)
        selected = initial[list(self.spec.state_layout.variables)].sel(time=times)
        if self.spec.state_layout.channels and any(
            level is not None for _, level in self.spec.state_layout.channels
        ):
            levels = sorted({lv for _, lv in self.spec.state_layout.channels if lv is not None})
            selected = selected.sel(level=levels)
        stacked = self.spec.state_layout.stack(selected)
        if not np.isfinite(stacked).all():
            raise ValueError("the initial states contain NaN or infinite values; fill or drop those times")
        return torch.from_numpy(stacked).reshape(len(inits), 2, *stacked.shape[1:])

    def _forcings(self, current_times: np.ndarray, steps: int) -> torch.Tensor:
        """(B, steps + 2, N, F) forcings at t − Δt … t + steps·Δt for each current time t.

        Each distinct valid time is computed once (initializations Δt apart share most of them)."""
        offsets = np.arange(-1, steps + 1) * self.step
        times = (current_times[:, None] + offsets[None, :]).reshape(-1)
        unique, inverse = np.unique(times, return_inverse=True)
        forcings = compute_forcings(unique, self.spec.latitude, self.spec.longitude)
        stacked = torch.from_numpy(self.spec.forcing_layout.stack(forcings))[torch.from_numpy(inverse)]
        return stacked.reshape(len(current_times), steps + 2, *stacked.shape[1:])

    # ------------------------------------------------------------------ rollout
    @torch.no_grad()
    def _leads(
        self,
        previous: torch.Tensor,
        current: torch.Tensor,
        current_times: np.ndarray,
        steps: int,
        batch_size: int,
    ) -> Iterator[torch.Tensor]:
        """Yield the next ``steps`` states (B, N, C) of all initializations, one lead at a time."""
        device = next(self.module.parameters()).device
        static = self.spec.static[None].to(device)
        done = 0
        while done < steps:
            chunk = min(self.chunk_steps, steps - done)
            forcings = self._forcings(current_times + done * self.step, chunk)
            batches = []
            for start in range(0, len(current_times), batch_size):
                part = slice(start, start + batch_size)
                inputs = torch.stack([previous[part], current[part]], dim=1).to(device)
                batches.append(autoregressive(self.module, inputs, forcings[part].to(device), static, chunk))
            for _ in range(chunk):
                state = torch.cat([next(batch).state.cpu() for batch in batches])
                previous, current = current, state
                yield state
            done += chunk

    def _forecast_dataset(self, states: torch.Tensor, inits: np.ndarray, first_lead: int) -> xr.Dataset:
        """Leads ``first_lead`` … (1-based) as one dataset (time, prediction_timedelta, [level,] latitude,
        longitude) from states (B, leads, N, C): a single unstacking for all leads."""
        leads = (first_lead + np.arange(states.shape[1])) * self.step
        return self.spec.state_layout.unstack(
            states, self.spec.latitude, self.spec.longitude, {"time": inits, "prediction_timedelta": leads}
        )

    def _lead_dataset(self, state: torch.Tensor, inits: np.ndarray, lead: int) -> xr.Dataset:
        """One lead (1-based) as a dataset (time, prediction_timedelta=1, [level,] latitude, longitude)."""
        return self._forecast_dataset(state[:, None], inits, lead)

    def _attrs(self, steps: int) -> dict[str, Any]:
        return {
            "vecfield_version": vecfield.__version__,
            "step_hours": self.spec.step_hours,
            "steps": steps,
            "layout": "WeatherBench2 forecast: time = initialization time, valid time = time + "
            "prediction_timedelta",
            **{f"source_{k}": v for k, v in self.provenance.items()},
        }

    def _prepare(
        self, initial: xr.Dataset, init_times: Sequence[Any] | None, steps: int, batch_size: int
    ) -> np.ndarray:
        self._check(initial)
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be ≥ 1, got {steps}, {batch_size}")
        possible = self.init_times(initial)
        if init_times is None:
            if possible.size == 0:
                raise ValueError(
                    f"the initial dataset needs two states {self.spec.step_hours} h apart "
                    f"(t − Δt and t); it has times {initial['time'].values}"
                )
            return possible
        inits = np.atleast_1d(np.asarray(init_times, dtype="datetime64[ns]"))
        lacking = inits[~np.isin(inits, possible)]
        if lacking.size:
            raise ValueError(
                f"initialization times {lacking} need the states at t and t − {self.spec.step_hours} h "
                "in the initial dataset"
            )
        return inits

    def rollout_chunks(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None = None, batch_size: int = 8
    ) -> Iterator[xr.Dataset]:
        """Yield the forecast one lead at a time (each a dataset with prediction_timedelta of size 1)."""
        inits = self._prepare(initial, init_times, steps, batch_size)
        states = self._states(initial, inits)
        for lead, state in enumerate(self._leads(states[:, 0], states[:, 1], inits, steps, batch_size), 1):
            yield self._lead_dataset(state, inits, lead)

    def rollout(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None = None, batch_size: int = 8
    ) -> xr.Dataset:
        """The forecast from each initialization time (default: every time of ``initial`` whose
        predecessor is present), ``steps`` leads, in WeatherBench2's forecast layout."""
        inits = self._prepare(initial, init_times, steps, batch_size)
        states = self._states(initial, inits)
        leads = list(self._leads(states[:, 0], states[:, 1], inits, steps, batch_size))
        forecast = self._forecast_dataset(torch.stack(leads, dim=1), inits, 1)  # xarray assembled once
        forecast.attrs.update(self._attrs(steps))
        return forecast

    def rollout_to_zarr(
        self,
        initial: xr.Dataset,
        steps: int,
        path: str | os.PathLike[str],
        init_times: Sequence[Any] | None = None,
        batch_size: int = 8,
    ) -> Path:
        """Stream the forecast to the zarr store ``path`` lead by lead; rerunning after an interruption
        continues after the last finished lead (same initial data, times and batch size) and
        gives identical values. Returns the path."""
        path = Path(path)
        inits = self._prepare(initial, init_times, steps, batch_size)
        done = 0
        if path.exists():
            existing = xr.open_zarr(path)
            same = existing.sizes.get("prediction_timedelta") == steps and np.array_equal(
                existing["time"].values, inits
            )
            if not same:
                raise ValueError(
                    f"{path} holds another forecast (different initializations or steps); "
                    "choose a new output path or delete it"
                )
            done = int(existing.attrs.get(COMPLETED, 0))
        if done == 0:
            self._template(inits, steps).to_zarr(path, mode="w", compute=False, zarr_format=2)
        if done == steps:
            return path
        states = self._states(initial, inits)
        previous, current = states[:, 0], states[:, 1]
        if done >= 1:  # continue from the stored leads (float32, exactly what the network produced)
            current = self._stored_state(path, done - 1)
            previous = self._stored_state(path, done - 2) if done >= 2 else states[:, 1]
        group = zarr.open_group(str(path), mode="r+")
        current_times = inits + done * self.step
        for lead, state in enumerate(
            self._leads(previous, current, current_times, steps - done, batch_size), done + 1
        ):
            lead_ds = self._lead_dataset(state, inits, lead).drop_vars(
                ["time", "latitude", "longitude", "level"], errors="ignore"
            )
            lead_ds.drop_vars("prediction_timedelta").to_zarr(
                path, region={"prediction_timedelta": slice(lead - 1, lead)}, zarr_format=2
            )
            group.attrs[COMPLETED] = lead
        return path

    def _stored_state(self, path: Path, index: int) -> torch.Tensor:
        """(B, N, C) state of the stored lead ``index`` (0-based)."""
        return torch.from_numpy(
            self.spec.state_layout.stack(xr.open_zarr(path).isel(prediction_timedelta=index))
        )

    def _template(self, inits: np.ndarray, steps: int) -> xr.Dataset:
        """The lazy (dask) layout of the full forecast, written before any lead."""
        import dask.array

        leads = np.arange(1, steps + 1) * self.step
        shape = (len(inits), steps, self.spec.latitude.size, self.spec.longitude.size)
        data = {}
        for name in self.spec.state_layout.variables:
            levels = [lv for n, lv in self.spec.state_layout.channels if n == name and lv is not None]
            if levels:
                dims = ("time", "prediction_timedelta", "level", "latitude", "longitude")
                full = (shape[0], shape[1], len(levels), shape[2], shape[3])
                chunks = (shape[0], 1, len(levels), shape[2], shape[3])
            else:
                dims, full, chunks = (
                    ("time", "prediction_timedelta", "latitude", "longitude"),
                    shape,
                    (shape[0], 1, shape[2], shape[3]),
                )
            data[name] = (dims, dask.array.zeros(full, chunks=chunks, dtype=np.float32))
        levels = sorted({lv for _, lv in self.spec.state_layout.channels if lv is not None})
        coords = {
            "time": inits,
            "prediction_timedelta": leads,
            "latitude": self.spec.latitude,
            "longitude": self.spec.longitude,
            **({"level": levels} if levels else {}),
        }
        return xr.Dataset(data, coords=coords, attrs={**self._attrs(steps), COMPLETED: 0})
