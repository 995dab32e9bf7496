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

Ensembles (generative forecasters, ``vecfield.forecast.ensemble``): ``members=M`` rolls out M members
per initialization as batch rows, each fed its own previous states, in chunks of ``member_chunk`` rows
(default batch_size × M) through the network; the output gains the dim ``realization`` (0 … M−1)
after ``prediction_timedelta``. The noise of each member depends only on (seed, initialization,
member, lead), so results do not depend on the chunking and resumed streams are identical.
"""

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import zarr

from vecfield._version import __version__
from vecfield.data.catalogue import cf_attributes
from vecfield.data.checks import check_physical_units
from vecfield.data.forcings import compute_forcings
from vecfield.files import file_sha256
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.ensemble import ENSEMBLE_DIM, MemberStepper, member_keys
from vecfield.forecast.generative import GenerativeOneStepForecaster
from vecfield.forecast.rollout import Stepper, autoregressive
from vecfield.forecast.step import OneStepForecaster
from vecfield.train.checkpoint import load_checkpoint, preferred_weights

COMPLETED = "completed_leads"
#: coordinates closer than this to the forecaster's grid are the same point (float noise)
GRID_NOISE_DEGREES = 1e-6


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
        weights, use_ema = preferred_weights(checkpoint, prefer_ema)
        module.load_state_dict(weights)
        provenance = {
            "checkpoint": str(path),
            "checkpoint_sha256": file_sha256(path),
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
                f"needs {list(spec.state_layout.variables)} (it has {sorted(map(str, initial.data_vars))})"
            )
        for dim in ("time", "latitude", "longitude"):
            if dim not in initial.dims:
                raise ValueError(
                    f"the initial dataset has no {dim!r} dimension; open it with "
                    "vecfield.data.sources.open_dataset for the canonical layout"
                )
        for name, values in (("latitude", spec.latitude), ("longitude", spec.longitude)):
            _check_coordinate(name, initial[name].values, values)
        levels = sorted({level for _, level in spec.state_layout.channels if level is not None})
        if levels:
            have = set(initial["level"].values.tolist()) if "level" in initial.coords else set()
            lacking = [level for level in levels if level not in have]
            if lacking:
                raise ValueError(
                    f"the initial dataset lacks pressure level(s) {lacking} hPa; "
                    f"the forecaster needs {levels}"
                )
        check_physical_units(initial[list(spec.state_layout.variables)], "the initial dataset")

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
        ensemble: "_Ensemble | None" = None,
    ) -> Iterator[torch.Tensor]:
        """Yield the next ``steps`` states (B, N, C) of all rows, one lead at a time; with ``ensemble``
        the rows are its (initialization, member) pairs, each part stepped by its own MemberStepper."""
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
                stepper = self.module if ensemble is None else ensemble.stepper(self.module, part, done + 1)
                batches.append(autoregressive(stepper, inputs, forcings[part].to(device), static, chunk))
            for _ in range(chunk):
                state = torch.cat([next(batch).state.cpu() for batch in batches])
                previous, current = current, state
                yield state
            done += chunk

    def _forecast_dataset(self, states: torch.Tensor, inits: np.ndarray, first_lead: int) -> xr.Dataset:
        """Leads ``first_lead`` … (1-based) as one dataset (time, prediction_timedelta, [realization,]
        [level,] latitude, longitude) from states (R, leads, N, C): a single unstacking for all leads.
        An ensemble's M > 1 rows per initialization, i·M + m, become the ``realization`` dim."""
        layout, lat, lon = self.spec.state_layout, self.spec.latitude, self.spec.longitude
        leads = (first_lead + np.arange(states.shape[1])) * self.step
        members = states.shape[0] // len(inits)
        if members == 1:
            return layout.unstack(states, lat, lon, {"time": inits, "prediction_timedelta": leads})
        grouped = states.reshape(len(inits), members, *states.shape[1:]).transpose(1, 2)
        dims = {"time": inits, "prediction_timedelta": leads, ENSEMBLE_DIM: np.arange(members)}
        return layout.unstack(grouped, lat, lon, dims)

    def _lead_dataset(self, state: torch.Tensor, inits: np.ndarray, lead: int) -> xr.Dataset:
        """One lead (1-based) as a dataset (time, prediction_timedelta=1, [realization,] [level,]
        latitude, longitude)."""
        return self._forecast_dataset(state[:, None], inits, lead)

    def _attrs(self, steps: int, seed: int) -> dict[str, Any]:
        return {
            "vecfield_version": __version__,
            "step_hours": self.spec.step_hours,
            "steps": steps,
            "layout": "WeatherBench2 forecast: time = initialization time, valid time = time + "
            "prediction_timedelta",
            **{f"source_{k}": v for k, v in self.provenance.items()},
            **self._sampler_attrs(seed),
        }

    def _sampler_attrs(self, seed: int) -> dict[str, Any]:
        """The generative sampler and noise seed the forecast was made with (none for a deterministic
        one)."""
        module = self.module
        if not isinstance(module, GenerativeOneStepForecaster):
            return {}
        return {"sampling_steps": module.sampling_steps, "sampling_churn": module.sampling_churn,
                "sampling_churn_noise": module.sampling_churn_noise, "noise_seed": seed}

    def _prepare(
        self, initial: xr.Dataset, init_times: Sequence[Any] | None, steps: int, batch_size: int,
        members: int = 1,
    ) -> np.ndarray:
        self._check(initial)
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be ≥ 1, got {steps}, {batch_size}")
        if members < 1:
            raise ValueError(f"members must be ≥ 1, got {members}")
        if members > 1 and not isinstance(self.module, GenerativeOneStepForecaster):
            raise ValueError(
                f"members={members} needs a generative forecaster (model.method flow_matching or edm); "
                "this one is deterministic and would give identical members"
            )
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

    def _rows(
        self, states: torch.Tensor, inits: np.ndarray, batch_size: int, members: int,
        member_chunk: int | None, seed: int,
    ) -> tuple[torch.Tensor, np.ndarray, int, "_Ensemble | None"]:
        """The (rows, 2, N, C) initial states, each row's current time, the rows per network batch and
        the ensemble (None for a deterministic forecaster, whose rows are the initializations)."""
        if member_chunk is not None and member_chunk < 1:
            raise ValueError(f"member_chunk must be ≥ 1 or None, got {member_chunk}")
        if members == 1 and not isinstance(self.module, GenerativeOneStepForecaster):
            return states, inits, batch_size, None
        ensemble = _Ensemble(member_keys(inits, members), seed)
        rows = member_chunk if member_chunk is not None else batch_size * members
        return states.repeat_interleave(members, dim=0), np.repeat(inits, members), rows, ensemble

    def _lead_states(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None, batch_size: int,
        members: int, member_chunk: int | None, seed: int,
    ) -> tuple[np.ndarray, Iterator[torch.Tensor]]:
        """The initialization times and an iterator over the (rows, N, C) state of each lead."""
        inits = self._prepare(initial, init_times, steps, batch_size, members)
        states, times, rows, ensemble = self._rows(
            self._states(initial, inits), inits, batch_size, members, member_chunk, seed
        )
        return inits, self._leads(states[:, 0], states[:, 1], times, steps, rows, ensemble)

    def rollout_chunks(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None = None, batch_size: int = 8,
        members: int = 1, member_chunk: int | None = None, seed: int = 0,
    ) -> Iterator[xr.Dataset]:
        """Yield the forecast one lead at a time (each a dataset with prediction_timedelta of size 1).

        members, member_chunk, seed: ensemble size, rows per network batch and noise seed of a
        generative forecaster (see the module docstring); ignored by a deterministic one (members=1).
        """
        inits, leads = self._lead_states(initial, steps, init_times, batch_size, members, member_chunk, seed)
        for lead, state in enumerate(leads, 1):
            yield self._lead_dataset(state, inits, lead)

    def rollout(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None = None, batch_size: int = 8,
        members: int = 1, member_chunk: int | None = None, seed: int = 0,
    ) -> xr.Dataset:
        """The forecast from each initialization time (default: every time of ``initial`` whose
        predecessor is present), ``steps`` leads, in WeatherBench2's forecast layout; ``members`` > 1
        (generative forecasters) adds the ensemble dim ``realization``."""
        inits, leads = self._lead_states(initial, steps, init_times, batch_size, members, member_chunk, seed)
        forecast = self._forecast_dataset(torch.stack(list(leads), dim=1), inits, 1)  # xarray assembled once
        forecast.attrs.update(self._attrs(steps, seed))
        return forecast

    def rollout_to_zarr(
        self,
        initial: xr.Dataset,
        steps: int,
        path: str | os.PathLike[str],
        init_times: Sequence[Any] | None = None,
        batch_size: int = 8,
        members: int = 1,
        member_chunk: int | None = None,
        seed: int = 0,
    ) -> Path:
        """Stream the forecast to the zarr store ``path`` lead by lead; rerunning after an interruption
        continues after the last finished lead (same initial data, times and batch size) and
        gives identical values. ``members`` > 1 streams an ensemble (see :meth:`rollout_chunks`).
        Returns the path."""
        path = Path(path)
        inits = self._prepare(initial, init_times, steps, batch_size, members)
        states = self._states(initial, inits)  # checks the values (NaNs) before any store is created
        done = 0
        if path.exists():
            existing = xr.open_zarr(path)
            same = (
                existing.sizes.get("prediction_timedelta") == steps
                and existing.sizes.get(ENSEMBLE_DIM, 1) == members
                and np.array_equal(existing["time"].values, inits)
                and all(existing.attrs.get(k) == v for k, v in self._sampler_attrs(seed).items())
            )
            if not same:
                raise ValueError(
                    f"{path} holds another forecast (different initializations, steps, members, "
                    "sampler or noise seed); "
                    "choose a new output path or delete it"
                )
            done = int(existing.attrs.get(COMPLETED, 0))
        if done == 0:
            self._template(inits, steps, members, seed).to_zarr(path, mode="w", compute=False, zarr_format=2)
        if done == steps:
            return path
        states, times, rows, ensemble = self._rows(states, inits, batch_size, members, member_chunk, seed)
        previous, current = states[:, 0], states[:, 1]
        if done >= 1:  # continue from the stored leads (float32, exactly what the network produced)
            current = self._stored_state(path, done - 1)
            previous = self._stored_state(path, done - 2) if done >= 2 else states[:, 1]
        if ensemble is not None:
            ensemble.first_lead = done + 1
        group = zarr.open_group(str(path), mode="r+")
        current_times = times + done * self.step
        for lead, state in enumerate(
            self._leads(previous, current, current_times, steps - done, rows, ensemble), done + 1
        ):
            lead_ds = self._lead_dataset(state, inits, lead).drop_vars(
                ["time", "latitude", "longitude", "level", ENSEMBLE_DIM], errors="ignore"
            )
            lead_ds.drop_vars("prediction_timedelta").to_zarr(
                path, region={"prediction_timedelta": slice(lead - 1, lead)}, zarr_format=2
            )
            group.attrs[COMPLETED] = lead
        return path

    def _stored_state(self, path: Path, index: int) -> torch.Tensor:
        """(B, N, C) state of the stored lead ``index`` (0-based); ensemble rows i·M + m."""
        lead = xr.open_zarr(path).isel(prediction_timedelta=index)
        if ENSEMBLE_DIM not in lead.dims:
            return torch.from_numpy(self.spec.state_layout.stack(lead))
        per_member = [self.spec.state_layout.stack(lead.isel({ENSEMBLE_DIM: m}))
                      for m in range(lead.sizes[ENSEMBLE_DIM])]
        stacked = np.stack(per_member, axis=1)  # (B, M, N, C)
        return torch.from_numpy(stacked.reshape(-1, *stacked.shape[2:]))

    def _template(self, inits: np.ndarray, steps: int, members: int, seed: int) -> xr.Dataset:
        """The lazy (dask) layout of the full forecast, written before any lead."""
        import dask.array

        leads = np.arange(1, steps + 1) * self.step
        ensemble = (ENSEMBLE_DIM,) if members > 1 else ()
        outer = (len(inits), steps, *((members,) if members > 1 else ()))
        grid = (self.spec.latitude.size, self.spec.longitude.size)
        data = {}
        for name in self.spec.state_layout.variables:
            levels = [lv for n, lv in self.spec.state_layout.channels if n == name and lv is not None]
            level_dim, level_size = (("level",), (len(levels),)) if levels else ((), ())
            dims = ("time", "prediction_timedelta", *ensemble, *level_dim, "latitude", "longitude")
            full = (*outer, *level_size, *grid)
            chunks = (outer[0], 1, *outer[2:], *level_size, *grid)
            data[name] = (dims, dask.array.zeros(full, chunks=chunks, dtype=np.float32))
        levels = sorted({lv for _, lv in self.spec.state_layout.channels if lv is not None})
        coords = {
            "time": inits,
            "prediction_timedelta": leads,
            "latitude": self.spec.latitude,
            "longitude": self.spec.longitude,
            **({"level": levels} if levels else {}),
            **({ENSEMBLE_DIM: np.arange(members)} if members > 1 else {}),
        }
        template = xr.Dataset(data, coords=coords, attrs={**self._attrs(steps, seed), COMPLETED: 0})
        return cf_attributes(template)

    def first_lead_log_score(self, initial: xr.Dataset, truth: xr.Dataset, init_times: np.ndarray,
                             steps: int = 8, probes: int = 1, seed: int = 0) -> torch.Tensor:
        """log p(S(t + Δt) | inputs) in nats (B,) of the verifying states in ``truth`` (canonical layout)
        one step after each initialization t of ``init_times`` (whose t − Δt and t are in ``initial``),
        under a generative forecaster; see ``GenerativeOneStepForecaster.log_score``."""
        module, spec = self.module, self.spec
        if not isinstance(module, GenerativeOneStepForecaster):
            raise ValueError("the log-score needs a generative forecaster "
                             "(model.method flow_matching or edm)")
        inits = np.asarray(init_times, dtype="datetime64[ns]")
        states = self._states(initial, inits)
        valid = truth[list(spec.state_layout.variables)].sel(time=inits + self.step)
        levels = sorted({level for _, level in spec.state_layout.channels if level is not None})
        if levels:
            valid = valid.sel(level=levels)
        target = torch.from_numpy(spec.state_layout.stack(valid))
        return module.log_score(states[:, 0], states[:, 1], self._forcings(inits, 1), spec.static[None],
                                target, steps=steps, probes=probes,
                                generator=torch.Generator().manual_seed(seed))


def _check_coordinate(name: str, given: np.ndarray, expected: np.ndarray) -> None:
    """ValueError unless ``given`` equals the forecaster's ``expected`` coordinate up to float noise
    (within :data:`GRID_NOISE_DEGREES`, or equal once rounded to float32, as coordinates stored in
    float32 are); the message shows the first point that differs and by how much."""
    if given.shape != expected.shape:
        raise ValueError(
            f"the initial dataset's {name}s ({given.size}, from {given.min():g} to {given.max():g}) differ "
            f"from the forecaster's grid ({expected.size}, from {expected.min():g} to {expected.max():g}); "
            "regrid it to the forecaster's grid (pipelines/build_dataset.py with the training config's grid)"
        )
    offset = np.abs(given.astype(np.float64) - expected.astype(np.float64))
    differs = (offset > GRID_NOISE_DEGREES) & (given.astype(np.float32) != expected.astype(np.float32))
    if differs.any():
        i = int(np.argmax(differs))
        raise ValueError(
            f"the initial dataset's {name}s differ from the forecaster's grid: {name}[{i}] is "
            f"{given[i]:.6f}° against {expected[i]:.6f}° (off by {offset[i]:.3g}°; {int(differs.sum())} of "
            f"{given.size} differ by more than float noise, {GRID_NOISE_DEGREES:g}°); regrid it to the "
            "forecaster's grid"
        )


class _Ensemble:
    """The (initialization, member) keys of an ensemble rollout's rows and its noise seed; hands each
    network batch its MemberStepper (``first_lead``: the lead of the rollout's first step)."""

    def __init__(self, keys: list[tuple[int, int]], seed: int, first_lead: int = 1) -> None:
        self.keys, self.seed, self.first_lead = keys, seed, first_lead

    def stepper(self, module: Any, part: slice, done: int) -> Stepper:
        """The stepper of rows ``part`` whose first step makes lead ``first_lead − 1 + done``."""
        return MemberStepper(module, self.keys[part], self.seed, self.first_lead - 1 + done)
