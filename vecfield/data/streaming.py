"""Windowed samples for training, streamed from a built zarr dataset.

A sample is one window of ``n_inputs + n_leads`` states spaced ``step`` apart, starting at time
index i (``stride`` = step / the dataset's time step):

    inputs   = X[i], X[i+s], …, X[i+(n_inputs−1)s]                       (n_inputs, nodes, C_state)
    targets  = X[i+n_inputs·s], …, X[i+(n_inputs+n_leads−1)s]            (n_leads, nodes, C_state)
    forcings = F at all n_inputs + n_leads window times                  (n_inputs+n_leads, nodes, C_forcing)
    static   = static fields and sin φ, cos λ, sin λ                     (nodes, C_static)

Grid nodes are ordered latitude-major: node = i_lat · W + i_lon. The :class:`ChannelLayout`
records (variable, level) for every channel, so stacked tensors unstack back to xarray exactly.
Splits are time ranges; a window is in a split only when all of its times are, so no window
crosses a split boundary, nor a change of ``trajectory`` (:mod:`vecfield.data.trajectories`).
Reads go straight to the zarr chunks a window needs (no dask graph per sample); the year/day
progress forcings are recomputed from the window's times (identical to the stored values) instead
of being read one tiny chunk at a time.

In-memory mode (``in_memory=True``, or ``"auto"`` when the estimate fits the memory budget): the
split's contiguous block of times is read once through the same code path, into one float32 array
per layout, (T_block, nodes, C_state) and (T_block, nodes, C_forcing); a window is then a slice
of those arrays, with values identical to the streamed ones.
"""

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import xarray as xr

from vecfield.data.channels import ChannelLayout
from vecfield.data.checks import check_time_axis
from vecfield.data.derived import structural_features
from vecfield.data.forcings import FORCING_VARIABLES, day_progress, year_progress
from vecfield.data.trajectories import run_labels

STRUCTURAL_FEATURES = ("sin_latitude", "cos_longitude", "sin_longitude")
PROGRESS_FORCINGS = ("year_progress_sin", "year_progress_cos", "day_progress_sin", "day_progress_cos")
IN_MEMORY_CHOICES = (True, False, "auto")
MEMORY_BUDGET_BYTES = 4 * 2**30  # "auto" loads a split only below this and half of the available RAM


def available_memory_bytes() -> int | None:
    """Physical memory available now (bytes), or None where the OS does not report it."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class Window(NamedTuple):
    """One sample of :class:`WindowedDataset` (a DataLoader batch stacks a leading batch dim B on
    every field; ``vecfield.train`` moves it to the device as it is).

    inputs (n_inputs, nodes, C_state), targets (n_leads, nodes, C_state), forcings (n_inputs +
    n_leads, nodes, C_forcing), static (nodes, C_static), time_index () the first window time's
    index in the dataset, time (n_inputs + n_leads,) the window's times in ns since 1970.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    forcings: torch.Tensor
    static: torch.Tensor
    time_index: torch.Tensor
    time: torch.Tensor


def split_range(ds: xr.Dataset, split: str | tuple[str, str] | None) -> tuple[np.datetime64, np.datetime64]:
    """Inclusive time range of ``split``: a name stored in the dataset's ``splits`` attribute, an
    explicit (start, end) pair, or None for all times."""
    times = ds["time"].values
    if split is None:
        return times[0], times[-1]
    if isinstance(split, str):
        stored = json.loads(ds.attrs.get("splits", "{}"))
        if stored.get(split) is None:
            raise ValueError(
                f"split {split!r} is not defined in this dataset; defined splits: "
                f"{[k for k, v in stored.items() if v]}. Pass an explicit (start, end) instead"
            )
        split = tuple(stored[split])
    start, end = np.datetime64(split[0], "ns"), np.datetime64(split[1], "ns")
    if end < start:
        raise ValueError(f"split end {split[1]} is before its start {split[0]}")
    return start, end


class WindowedDataset(torch.utils.data.Dataset):
    """Random-access windows over a built dataset (see the module docstring for shapes).

    source: path of a built zarr store, or an opened canonical dataset (time, [level,] lat, lon).
    state_variables: predicted variables (default: the builder's ``state_variables`` attribute,
    else every time-dependent non-forcing variable). static_variables: default the builder's
    ``static_variables``, else every variable without a time dim; the structural features are
    always appended. step_hours: spacing of window states (default: the dataset's step).
    split: a split name stored with the dataset (``train``/``val``/``test``), a (start, end)
    pair, or None. Each item is a :class:`Window`: float32 tensors ``inputs``, ``targets``,
    ``forcings``, ``static`` and int64 ``time_index`` (index of the first window time) and ``time``
    (ns since 1970 of each window time). in_memory: True reads the split's block of times into RAM once
    (windows are then slices), False streams every window from the store, ``"auto"`` loads when
    :attr:`memory_bytes` is below both ``MEMORY_BUDGET_BYTES`` and half the available memory
    (else streams, with a warning); :attr:`in_memory` says which was chosen.
    """

    def __init__(
        self,
        source: str | Path | xr.Dataset,
        n_inputs: int = 2,
        n_leads: int = 1,
        step_hours: int | None = None,
        split: str | tuple[str, str] | None = None,
        state_variables: Sequence[str] | None = None,
        static_variables: Sequence[str] | None = None,
        in_memory: bool | Literal["auto"] = False,
    ) -> None:
        if in_memory not in IN_MEMORY_CHOICES:
            raise ValueError(f"unknown in_memory {in_memory!r}; choose one of {list(IN_MEMORY_CHOICES)}")
        if n_inputs < 1 or n_leads < 0:
            raise ValueError(f"need n_inputs ≥ 1 and n_leads ≥ 0, got {n_inputs}, {n_leads}")
        self._path = None if isinstance(source, xr.Dataset) else str(source)
        ds = source if isinstance(source, xr.Dataset) else self._open()
        if "realization" in ds.dims:
            raise ValueError("windows are built from one trajectory; select a realization first")
        timed = [str(v) for v in ds.data_vars if "time" in ds[v].dims]
        if state_variables is None:  # the builder records the configured order
            state_variables = ds.attrs.get(
                "state_variables", [v for v in timed if v not in FORCING_VARIABLES]
            )
        if static_variables is None:
            untimed = [str(v) for v in ds.data_vars if "time" not in ds[v].dims]
            static_variables = ds.attrs.get("static_variables", untimed)
        self.state_layout = ChannelLayout.from_dataset(ds, state_variables)
        self.forcing_layout = ChannelLayout.from_dataset(ds, [v for v in FORCING_VARIABLES if v in ds])
        self.static_layout = ChannelLayout.from_dataset(ds, static_variables)
        self.n_inputs, self.n_leads = n_inputs, n_leads
        times = ds["time"].values
        base = check_time_axis(ds) or np.timedelta64(1, "h")
        step = base if step_hours is None else np.timedelta64(step_hours, "h")
        if step % base != np.timedelta64(0) or step < base:
            raise ValueError(
                f"step {step_hours} h is not a multiple of the dataset's step {base.astype('timedelta64[h]')}"
            )
        self.stride = int(step // base)
        start, end = split_range(ds, split)
        inside = np.nonzero((times >= start) & (times <= end))[0]
        span = (n_inputs + n_leads - 1) * self.stride
        starts = inside[inside + span <= (inside[-1] if inside.size else -1)]
        labels = run_labels(ds)
        self.starts = starts[labels[starts] == labels[starts + span]]  # no window spans two runs
        if self.starts.size == 0:
            raise ValueError(
                f"no window of {n_inputs}+{n_leads} states {step.astype('timedelta64[h]')} apart fits in "
                f"the split [{start}, {end}] ({inside.size} times); use a longer split or fewer steps"
            )
        self.latitude, self.longitude = ds["latitude"].values, ds["longitude"].values
        static_ds = ds[list(self.static_layout.variables)].expand_dims(time=1)
        static = self.static_layout.stack(static_ds)[0] if len(self.static_layout) else None
        features = structural_features(self.latitude, self.longitude)
        structural = np.stack([features[k].reshape(-1) for k in STRUCTURAL_FEATURES], axis=-1)
        self.static = torch.from_numpy(
            np.concatenate([static, structural], axis=-1) if static is not None else structural
        ).float()
        self.static_channels = (*self.static_layout.channels, *((k, None) for k in STRUCTURAL_FEATURES))
        self._times = times
        self._ds = ds[[*self.state_layout.variables, *self.forcing_layout.variables]]
        # name → (stored dims when already in canonical order else None, levels)
        self._fields: dict[str, tuple[tuple[str, ...] | None, list[int] | None]] = {}
        for name, var in self._ds.data_vars.items():
            order = tuple(d for d in ("time", "level", "latitude", "longitude") if d in var.dims)
            levels = [int(v) for v in var["level"].values] if "level" in var.dims else None
            self._fields[str(name)] = (order if var.dims == order else None, levels)
        self._arrays = self._zarr_arrays()
        self._block: tuple[int, np.ndarray, np.ndarray] | None = None  # (first time index, states, forcings)
        self.in_memory = self._decide_in_memory(in_memory)
        if self.in_memory:
            first, last = int(self.starts[0]), int(self.starts[-1]) + span
            block = np.arange(first, last + 1)
            states, forcings = self._read(self.state_layout, block), self._read(self.forcing_layout, block)
            self._block = (first, states, forcings)

    @property
    def memory_bytes(self) -> int:
        """Bytes the in-memory mode holds: the split's block of times × nodes × (state + forcing
        channels) × 4 (float32)."""
        span = (self.n_inputs + self.n_leads - 1) * self.stride
        times = int(self.starts[-1]) + span - int(self.starts[0]) + 1
        channels = len(self.state_layout) + len(self.forcing_layout)
        return times * self.latitude.size * self.longitude.size * channels * 4

    def _decide_in_memory(self, in_memory: bool | str) -> bool:
        """The mode to use; ``True`` that cannot fit, or ``"auto"`` that does not, says so."""
        need, available = self.memory_bytes, available_memory_bytes()
        fits_ram = available is None or need <= available // 2
        if in_memory is True and available is not None and not fits_ram:
            raise ValueError(
                f"in_memory=True needs {need / 2**20:.0f} MiB for this split but only "
                f"{available / 2**20:.0f} MiB of memory is available; use in_memory='auto' or False to stream"
            )
        if in_memory == "auto":
            if need <= MEMORY_BUDGET_BYTES and fits_ram:
                return True
            warnings.warn(
                f"streaming the split from the store: holding it in memory would take {need / 2**20:.0f} MiB "
                f"(budget {MEMORY_BUDGET_BYTES / 2**20:.0f} MiB, available "
                f"{'unknown' if available is None else f'{available / 2**20:.0f} MiB'}); "
                "pass in_memory=True to force it",
                stacklevel=3,
            )
            return False
        return bool(in_memory)

    def _open(self) -> xr.Dataset:
        return xr.open_zarr(self._path, chunks=None)

    def _zarr_arrays(self) -> dict[str, Any]:
        """name → zarr array for variables stored plainly (canonical dim order, no scale/offset
        encoding), read directly: xarray's lazy indexing costs more than the read for small grids."""
        if self._path is None:
            return {}
        import zarr

        group = zarr.open_group(self._path, mode="r")
        plain = {}
        for name, (order, _) in self._fields.items():
            encoding = self._ds[name].encoding
            if order is not None and not {"scale_factor", "add_offset"} & set(encoding):
                plain[name] = group[name]
        return plain

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._path is not None:  # worker processes reopen the store themselves
            state["_ds"], state["_arrays"] = None, {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._path is not None:
            self._ds = self._open()[list(self._fields)]
            self._arrays = self._zarr_arrays()

    def _progress(self, name: str, indices: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
        """A year/day progress forcing at time ``indices``, computed exactly as the builder stored it
        (``vecfield.data.forcings.compute_forcings``): cheaper than reading 1-element chunks."""
        times = self._times[indices]
        dims: tuple[str, ...]
        if name.startswith("year"):
            angle, dims = 2 * np.pi * year_progress(times), ("time",)
        else:
            angle, dims = 2 * np.pi * day_progress(times, self.longitude), ("time", "longitude")
        return (np.sin(angle) if name.endswith("sin") else np.cos(angle)).astype(np.float32), dims

    def _read(self, layout: ChannelLayout, indices: np.ndarray) -> np.ndarray:
        """(len(indices), nodes, channels) for the channels of ``layout`` at time ``indices``."""
        fields: dict[str, tuple[np.ndarray, tuple[str, ...], list[int] | None]] = {}
        for name in layout.variables:
            order, levels = self._fields[name]
            if name in PROGRESS_FORCINGS:
                values, order = self._progress(name, indices)
            elif name in self._arrays:
                array = self._arrays[name]
                assert order is not None, "_zarr_arrays holds only variables stored in canonical order"
                values = array.get_orthogonal_selection((indices,) + (slice(None),) * (array.ndim - 1))
            else:
                var = self._ds[name].isel(time=indices)
                order = tuple(d for d in ("time", "level", "latitude", "longitude") if d in var.dims)
                values = var.transpose(*order).values
            fields[name] = (values, order, levels)
        return layout.stack_arrays(fields, (indices.size, self.latitude.size, self.longitude.size))

    def __len__(self) -> int:
        return int(self.starts.size)

    def window_times(self, index: int) -> np.ndarray:
        """The time indices of window ``index``: (n_inputs + n_leads,) int."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} is out of range for {len(self)} windows")
        return self.starts[index] + self.stride * np.arange(self.n_inputs + self.n_leads)

    def __getitem__(self, index: int) -> Window:
        indices = self.window_times(index)
        if self._block is not None:
            first, state_block, forcing_block = self._block
            states = torch.from_numpy(state_block[indices - first])
            forcings = torch.from_numpy(forcing_block[indices - first])
        else:
            states = torch.from_numpy(self._read(self.state_layout, indices))
            forcings = torch.from_numpy(self._read(self.forcing_layout, indices))
        return Window(
            inputs=states[: self.n_inputs],
            targets=states[self.n_inputs :],
            forcings=forcings,
            static=self.static,
            time_index=torch.tensor(int(indices[0])),
            time=torch.from_numpy(self._times[indices].astype("datetime64[ns]").astype(np.int64)),
        )


def _worker_init(worker_id: int) -> None:
    """In each DataLoader worker: dask's synchronous scheduler and one torch thread (no oversubscription)."""
    import dask

    dask.config.set(scheduler="synchronous")
    torch.set_num_threads(1)


def make_dataloader(
    dataset: WindowedDataset,
    batch_size: int,
    shuffle: bool = True,
    num_workers: int = 0,
    prefetch_factor: int = 2,
    seed: int = 0,
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` yielding :class:`Window` batches of (batch, ...) tensors;
    workers prefetch ``prefetch_factor`` batches each and run dask synchronously. ``seed`` fixes the
    shuffle order."""
    generator = torch.Generator().manual_seed(seed)
    extra: dict[str, Any] = (
        {"prefetch_factor": prefetch_factor, "persistent_workers": True} if num_workers > 0 else {}
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        generator=generator,
        **extra,
    )
