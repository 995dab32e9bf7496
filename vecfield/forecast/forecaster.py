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

Boundary forcing (a limited-area forecaster trained with ``model.boundary_rim`` > 0,
``vecfield.forecast.boundary``): ``boundary`` is the dataset whose states overwrite the rim after
every step (the truth, or a coarser global forecast in canonical or WeatherBench2 forecast layout);
it is required by such a forecaster and refused by one with a free boundary. The output's rim then
holds the boundary data; the attribute ``boundary_rim`` says how wide it is.

Ensembles (generative and CRPS forecasters, ``vecfield.forecast.ensemble``): ``members=M`` rolls out M
members per initialization as batch rows, each fed its own previous states, in chunks of
``member_chunk`` rows (default batch_size × M) through the network; the output gains the dim
``realization`` (0 … M−1) after ``prediction_timedelta``. The noise of each member depends only on
(seed, initialization, member, lead), so results do not depend on the chunking and resumed streams
are identical.
"""

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from vecfield._version import __version__
from vecfield.data.checks import check_physical_units
from vecfield.data.forcings import compute_forcings
from vecfield.data.trajectories import same_run
from vecfield.files import file_sha256
from vecfield.forecast.boundary import BoundarySource
from vecfield.forecast.build import ForecasterSpec
from vecfield.forecast.ensemble import EnsembleForecaster, EnsemblePlan, is_ensemble_forecaster, plan_rows
from vecfield.forecast.generative import GenerativeOneStepForecaster
from vecfield.forecast.rollout import Stepper, autoregressive
from vecfield.forecast.step import OneStepForecaster
from vecfield.forecast.stochastic import StochasticOneStepForecaster
from vecfield.forecast.store import ForecastStore, forecast_dataset, forecast_template
from vecfield.train.checkpoint import load_checkpoint, preferred_weights

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

    def _boundary_source(self, boundary: xr.Dataset | None) -> BoundarySource | None:
        """The boundary data the forecaster needs (see the module docstring), checked."""
        rim = self.spec.model.boundary_rim
        if rim == 0 and boundary is not None:
            raise ValueError("this forecaster was trained with a free boundary (model.boundary_rim=0); it "
                             "takes no boundary data: pass boundary=None (rollout.boundary: null)")
        if rim > 0 and boundary is None:
            raise ValueError(
                f"this forecaster was trained with boundary forcing in a rim of {rim} cells; give the "
                "boundary data (boundary=<dataset>, rollout.boundary: truth or a dataset path), or train one "
                "with model.boundary_rim=0 for use without boundary data"
            )
        if boundary is None:
            return None
        return BoundarySource(boundary, self.spec.state_layout, self.spec.latitude, self.spec.longitude,
                              self.spec.step_hours)

    def init_times(self, initial: xr.Dataset) -> np.ndarray:
        """Every time of ``initial`` whose predecessor t − Δt is also in it, in the same run
        (possible initializations; :mod:`vecfield.data.trajectories`)."""
        times = initial["time"].values.astype("datetime64[ns]")
        times = times[np.isin(times - self.step, times)]
        return times[same_run(initial, times - self.step, times)]

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
        ensemble: EnsemblePlan | None = None,
        boundary: BoundarySource | None = None,
        first_lead: int = 1,
    ) -> Iterator[torch.Tensor]:
        """Yield the next ``steps`` states (B, N, C) of all rows, one lead at a time; with ``ensemble``
        the rows are its (initialization, member) pairs, each part stepped by its own MemberStepper;
        with ``boundary`` the rim is forced (the first yielded state is lead ``first_lead``)."""
        device = next(self.module.parameters()).device
        static = self.spec.static[None].to(device)
        inits = current_times - (first_lead - 1) * self.step
        done = 0
        while done < steps:
            chunk = min(self.chunk_steps, steps - done)
            forcings = self._forcings(current_times + done * self.step, chunk)
            rim = None if boundary is None else boundary.values(inits, first_lead + done, chunk)
            batches = []
            for start in range(0, len(current_times), batch_size):
                part = slice(start, start + batch_size)
                inputs = torch.stack([previous[part], current[part]], dim=1).to(device)
                stepper: Stepper = self.module
                if ensemble is not None:
                    module = self.module
                    assert isinstance(module, EnsembleForecaster)
                    stepper = ensemble.stepper(module, part, done + 1)  # plan_rows made the plan
                forced = None if rim is None else self.module.boundary(rim[part].to(device))
                batches.append(autoregressive(stepper, inputs, forcings[part].to(device), static, chunk,
                                              boundary=forced))
            for _ in range(chunk):
                state = torch.cat([next(batch).state.cpu() for batch in batches])
                previous, current = current, state
                yield state
            done += chunk

    def _lead_dataset(self, state: torch.Tensor, inits: np.ndarray, lead: int) -> xr.Dataset:
        """One lead (1-based) of rows (R, N, C) as a forecast dataset with one prediction_timedelta."""
        spec = self.spec
        return forecast_dataset(spec.state_layout, spec.latitude, spec.longitude, state[:, None], inits,
                                np.array([lead]) * self.step)

    def _attrs(self, steps: int, seed: int) -> dict[str, Any]:
        return {
            "vecfield_version": __version__,
            "step_hours": self.spec.step_hours,
            "steps": steps,
            "boundary_rim": self.spec.model.boundary_rim,
            "layout": "WeatherBench2 forecast: time = initialization time, valid time = time + "
            "prediction_timedelta",
            **{f"source_{k}": v for k, v in self.provenance.items()},
            **self._sampler_attrs(seed),
        }

    def _sampler_attrs(self, seed: int) -> dict[str, Any]:
        """The generative sampler and noise seed the forecast was made with (none for a deterministic
        one)."""
        module = self.module
        if isinstance(module, StochasticOneStepForecaster):
            return {"noise_seed": seed}
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
        if members > 1 and not is_ensemble_forecaster(self.module):
            raise ValueError(
                f"members={members} needs a generative forecaster (model.method flow_matching or edm) or the "
                "CRPS one (model.method crps); this one is deterministic and would give identical members"
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

    def _lead_states(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None, batch_size: int,
        members: int, member_chunk: int | None, seed: int, boundary: xr.Dataset | None,
    ) -> tuple[np.ndarray, Iterator[torch.Tensor]]:
        """The initialization times and an iterator over the (rows, N, C) state of each lead."""
        inits = self._prepare(initial, init_times, steps, batch_size, members)
        source = self._boundary_source(boundary)
        states, times, rows, ensemble = plan_rows(self.module, self._states(initial, inits), inits,
                                                  batch_size, members, member_chunk, seed)
        return inits, self._leads(states[:, 0], states[:, 1], times, steps, rows, ensemble, source)

    def rollout_chunks(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None = None, batch_size: int = 8,
        members: int = 1, member_chunk: int | None = None, seed: int = 0, boundary: xr.Dataset | None = None,
    ) -> Iterator[xr.Dataset]:
        """Yield the forecast one lead at a time (each a dataset with prediction_timedelta of size 1).

        members, member_chunk, seed: ensemble size, rows per network batch and noise seed of a
        generative forecaster (see the module docstring); ignored by a deterministic one (members=1).
        boundary: the boundary data of a forecaster with boundary forcing (see the module docstring).
        """
        inits, leads = self._lead_states(initial, steps, init_times, batch_size, members, member_chunk, seed,
                                         boundary)
        for lead, state in enumerate(leads, 1):
            yield self._lead_dataset(state, inits, lead)

    def rollout(
        self, initial: xr.Dataset, steps: int, init_times: Sequence[Any] | None = None, batch_size: int = 8,
        members: int = 1, member_chunk: int | None = None, seed: int = 0, boundary: xr.Dataset | None = None,
    ) -> xr.Dataset:
        """The forecast from each initialization time (default: every time of ``initial`` whose
        predecessor is present), ``steps`` leads, in WeatherBench2's forecast layout; ``members`` > 1
        (generative forecasters) adds the ensemble dim ``realization``; ``boundary``: the boundary
        data of a forecaster with boundary forcing (see the module docstring)."""
        inits, leads = self._lead_states(initial, steps, init_times, batch_size, members, member_chunk, seed,
                                         boundary)
        spec = self.spec
        lead_times = np.arange(1, steps + 1) * self.step
        forecast = forecast_dataset(spec.state_layout, spec.latitude, spec.longitude,  # assembled once
                                    torch.stack(list(leads), dim=1), inits, lead_times)
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
        boundary: xr.Dataset | None = None,
    ) -> Path:
        """Stream the forecast to the zarr store ``path`` lead by lead; rerunning after an interruption
        continues after the last finished lead (same initial data, times and batch size) and
        gives identical values. ``members`` > 1 streams an ensemble and ``boundary`` forces the rim
        (see :meth:`rollout_chunks`). Returns the path."""
        inits = self._prepare(initial, init_times, steps, batch_size, members)
        source = self._boundary_source(boundary)
        states = self._states(initial, inits)  # checks the values (NaNs) before any store is created
        spec = self.spec
        store = ForecastStore(path, spec.state_layout)
        template = forecast_template(spec.state_layout, spec.latitude, spec.longitude, inits,
                                     np.arange(1, steps + 1) * self.step, members, self._attrs(steps, seed))
        done = store.completed(template, self._sampler_attrs(seed))
        if done == steps:
            return store.path
        states, times, rows, ensemble = plan_rows(self.module, states, inits, batch_size, members,
                                                  member_chunk, seed)
        previous, current = states[:, 0], states[:, 1]
        if done >= 1:  # continue from the stored leads (float32, exactly what the network produced)
            current = store.state(done - 1)
            previous = store.state(done - 2) if done >= 2 else states[:, 1]
        if ensemble is not None:
            ensemble.first_lead = done + 1
        leads = self._leads(previous, current, times + done * self.step, steps - done, rows, ensemble, source,
                            done + 1)
        for lead, state in enumerate(leads, done + 1):
            store.write_lead(self._lead_dataset(state, inits, lead), lead)
        return store.path

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
