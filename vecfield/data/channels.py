"""The tensor ↔ xarray codec of grid fields: which (variable, level) each channel is.

A state, forcing or static tensor has shape (…, nodes, channels) with nodes latitude-major
(node = i_lat · n_lon + i_lon); :class:`ChannelLayout` stacks a canonical dataset's variables into
such arrays and unstacks tensors back into a dataset with the variables' own dims.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from vecfield.data.catalogue import cf_attributes, unknown_name_error


@dataclass(frozen=True)
class ChannelLayout:
    """The (variable, level) of each channel; level is None for single-level variables."""

    channels: tuple[tuple[str, int | None], ...]

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, variables: Sequence[str]) -> "ChannelLayout":
        """Channels of ``variables`` in the given order, each pressure-level variable level by level."""
        channels: list[tuple[str, int | None]] = []
        for name in variables:
            if name not in ds:
                raise unknown_name_error(name, [str(v) for v in ds.data_vars])
            if "level" in ds[name].dims:
                channels.extend((name, int(level)) for level in ds[name]["level"].values)
            else:
                channels.append((name, None))
        return cls(tuple(channels))

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables in channel order, each once."""
        return tuple(dict.fromkeys(name for name, _ in self.channels))

    def __len__(self) -> int:
        return len(self.channels)

    def stack(self, ds: xr.Dataset) -> np.ndarray:
        """(time, nodes, channels) float32 from ``ds`` with dims (time, [level,] latitude, longitude).

        Each variable is read once. Variables without a latitude/longitude dim (e.g. year
        progress, (time,)) are broadcast over the grid.
        """
        fields = {}
        for name in self.variables:
            var = ds[name]
            var = var.transpose(*[d for d in ("time", "level", "latitude", "longitude") if d in var.dims])
            levels = [int(v) for v in var["level"].values] if "level" in var.dims else None
            fields[name] = (np.asarray(var.values), var.dims, levels)
        return self.stack_arrays(fields, (ds.sizes["time"], ds.sizes["latitude"], ds.sizes["longitude"]))

    def stack_arrays(
        self, fields: dict[str, tuple[np.ndarray, tuple, list[int] | None]], shape: tuple[int, int, int]
    ) -> np.ndarray:
        """(time, nodes, channels) float32 from name → (values, dims, levels) with dims in canonical order.

        shape: (time, latitude, longitude) sizes of the output grid.
        """
        out = np.empty((shape[0], shape[1] * shape[2], len(self)), dtype=np.float32)
        for channel, (name, level) in enumerate(self.channels):
            values, dims, levels = fields[name]
            if level is not None and levels is None:
                raise ValueError(f"{name!r} has pressure-level channels; give its levels in fields[{name!r}]")
            field = values if level is None or levels is None else values[:, levels.index(level)]
            flat_dims = [d for d in dims if d != "level"]
            expand = tuple(i for i, d in enumerate(("time", "latitude", "longitude")) if d not in flat_dims)
            out[..., channel] = np.broadcast_to(np.expand_dims(field, expand), shape).reshape(shape[0], -1)
        return out

    def unstack(
        self,
        array: np.ndarray | torch.Tensor,
        latitude: np.ndarray,
        longitude: np.ndarray,
        coords: dict[str, Any] | None = None,
    ) -> xr.Dataset:
        """Inverse of :meth:`stack`: (..., nodes, channels) → Dataset (..., [level,] latitude, longitude),
        with the catalogue's units, long and CF standard names (``catalogue.cf_attributes``).

        coords: names and values of the leading dimensions, e.g. ``{"time": times}``; unnamed leading
        dimensions are an error.
        """
        values = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
        coords = dict(coords or {})
        leading = values.shape[:-2]
        if len(coords) != len(leading):
            raise ValueError(
                f"array has {len(leading)} leading dims {leading}; name each in coords, got {list(coords)}"
            )
        if values.shape[-1] != len(self) or values.shape[-2] != len(latitude) * len(longitude):
            raise ValueError(
                f"array shape {values.shape} does not match (..., {len(latitude) * len(longitude)} nodes, "
                f"{len(self)} channels)"
            )
        grid = values.reshape(*leading, len(latitude), len(longitude), len(self))
        dims = (*coords, "latitude", "longitude")
        data: dict[str, tuple[tuple[str, ...], np.ndarray] | xr.DataArray] = {}
        for name in self.variables:
            index = [i for i, (n, _) in enumerate(self.channels) if n == name]
            levels = [self.channels[i][1] for i in index]
            if levels == [None]:
                data[name] = (dims, grid[..., index[0]])
            else:
                stacked = np.moveaxis(grid[..., index], -1, len(leading))
                data[name] = xr.DataArray(
                    stacked, dims=(*coords, "level", "latitude", "longitude"), coords={"level": levels}
                )
        out = xr.Dataset(data, coords={**coords, "latitude": latitude, "longitude": longitude})
        return cf_attributes(out)

    def to_json(self) -> str:
        """A JSON string (for checkpoints); :meth:`from_json` reads it back."""
        return json.dumps([list(c) for c in self.channels])

    @classmethod
    def from_json(cls, text: str) -> "ChannelLayout":
        """The layout saved by :meth:`to_json`."""
        return cls(
            tuple((str(name), None if level is None else int(level)) for name, level in json.loads(text))
        )
