"""Assemble the one-step forecaster from a dataset's description, and describe it for checkpoints.

``ForecasterSpec`` is everything besides the weights that a trained forecaster needs: channel
layouts, grid, time step, normalization, the static fields, the graph spec and the model config.
It travels in the checkpoint's metadata as plain data (``to_metadata``) with a schema version;
``from_metadata`` refuses another version with a message saying what to do.
"""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vecfield.config.typed import from_dict, to_dict
from vecfield.core.model import VectorFieldModel
from vecfield.data.channels import ChannelLayout
from vecfield.data.streaming import WindowedDataset
from vecfield.forecast.boundary import check_rim, rim_mask
from vecfield.forecast.config import CRPS_METHOD, FORECAST_SCHEMA_VERSION, ModelConfig
from vecfield.forecast.generative import (
    GenerativeOneStepForecaster,
    SphereNoise,
    generative_field,
)
from vecfield.forecast.normalization import Normalization
from vecfield.forecast.step import OneStepForecaster
from vecfield.forecast.stochastic import StochasticOneStepForecaster
from vecfield.forecast.weights import loss_weights
from vecfield.graphs import GraphSpec, LatLonGrid, load_or_build_graph
from vecfield.nn.gnn import GridMeshGNN
from vecfield.nn.stencil import GridStencil


def grid_of(latitude: np.ndarray, longitude: np.ndarray) -> LatLonGrid:
    """The regular ``LatLonGrid`` with these increasing latitudes and longitudes (degrees); a regional
    box across 0° (longitudes 335 … 359, 0 … 45) becomes 335 … 405."""
    latitude, longitude = np.asarray(latitude, np.float64), np.asarray(longitude, np.float64)
    longitude = np.where(np.cumsum(np.r_[0.0, np.diff(longitude)] < 0) > 0, longitude + 360.0, longitude)
    if latitude.size < 2 or longitude.size < 2:
        raise ValueError("the grid needs at least 2 latitudes and 2 longitudes")
    resolution = float(latitude[1] - latitude[0])
    regular = np.allclose(np.diff(latitude), resolution, atol=1e-6) and np.allclose(
        np.diff(longitude), resolution, atol=1e-6
    )
    if not regular or resolution <= 0:
        raise ValueError(
            "the forecaster needs a regular grid with increasing latitudes and longitudes of one "
            f"spacing; got latitude steps {np.unique(np.diff(latitude).round(6))} and longitude "
            f"steps {np.unique(np.diff(longitude).round(6))}. Regrid with pipelines/build_dataset.py"
        )
    return LatLonGrid(
        float(latitude[0]),
        float(latitude[-1]),
        float(longitude[0]),
        float(longitude[-1]),
        round(resolution, 9),
    )


def graph_spec_from_json(text: str) -> GraphSpec:
    """Inverse of ``GraphSpec.to_json``."""
    data = json.loads(text)
    data.pop("format", None)
    return GraphSpec(**{**data, "grid": LatLonGrid(**data["grid"])})


@dataclass(frozen=True)
class ForecasterSpec:
    """What besides the weights defines a forecaster (see the module docstring)."""

    state_layout: ChannelLayout
    forcing_layout: ChannelLayout
    static_channels: tuple[tuple[str, int | None], ...]
    latitude: np.ndarray
    longitude: np.ndarray
    step_hours: int
    normalization: Normalization
    static: Tensor  # (nodes, S) physical static fields and structural features
    model: ModelConfig

    @classmethod
    def from_dataset(
        cls, data: WindowedDataset, statistics: dict, model: ModelConfig, step_hours: int
    ) -> "ForecasterSpec":
        """From a training ``WindowedDataset`` (states ``step_hours`` apart) and the dataset's
        statistics (``load_statistics``)."""
        normalization = Normalization.from_statistics(
            statistics, data.state_layout.channels, data.forcing_layout.channels, data.static_channels
        )
        return cls(
            data.state_layout,
            data.forcing_layout,
            tuple(data.static_channels),
            data.latitude,
            data.longitude,
            step_hours,
            normalization,
            data.static,
            model,
        )

    @property
    def graph_spec(self) -> GraphSpec:
        m = self.model
        return GraphSpec(
            grid_of(self.latitude, self.longitude),
            mesh_min_level=m.mesh_min_level,
            mesh_max_level=m.mesh_max_level,
            radius_fraction=m.radius_fraction,
        )

    def build(self, graph_cache: str | None = None) -> OneStepForecaster:
        """The (untrained) one-step forecaster of ``model.method`` (deterministic, generative:
        ``GenerativeOneStepForecaster``, or ``crps``: ``StochasticOneStepForecaster``); the graph comes
        from the cache or is built once."""
        m = self.model
        check_rim(m.boundary_rim, self.latitude.size, self.longitude.size, self.graph_spec.grid.is_global)
        graph = load_or_build_graph(self.graph_spec, graph_cache)
        c, f, s = len(self.state_layout), len(self.forcing_layout), len(self.static_channels)
        grid = self.graph_spec.grid
        stencil = GridStencil(grid.shape, m.grid_stencil, grid.is_global) if m.grid_stencil else None
        net = GridMeshGNN(
            graph,
            c,
            c,
            cond_channels=2 * c + 3 * f + s,
            latent=m.latent,
            processor_layers=m.processor_layers,
            time_features=m.time_features,
            checkpoint_layers=m.checkpoint_layers,
            noise_features=m.noise_features if m.method == CRPS_METHOD else 0,
            stencil=stencil,
            mesh_noise_features=m.mesh_noise_features if m.method == CRPS_METHOD else 0,
        )
        weight = loss_weights(
            self.latitude, self.longitude.size, self.state_layout.channels, m.variable_weights
        )
        rim = None
        if m.boundary_rim > 0:
            rim = rim_mask(m.boundary_rim, self.latitude.size, self.longitude.size)
            weight[rim] = 0.0  # the rim is overwritten by boundary data: the loss is on the interior
        if m.method == "deterministic":
            field = VectorFieldModel(net, method="deterministic")
            return OneStepForecaster(field, self.normalization, weight, rim, m.input_noise)
        if m.method == CRPS_METHOD:
            field = VectorFieldModel(net, method="deterministic")
            return StochasticOneStepForecaster(field, self.normalization, weight, m.crps_members,
                                               m.crps_alpha, rim, m.input_noise)
        noise = SphereNoise.on_grid(self.latitude, self.longitude.size)
        field = generative_field(net, m.method, noise, (self.latitude.size * self.longitude.size, c),
                                 m.sampling_steps, m.sampling_churn, m.sampling_churn_noise)
        return GenerativeOneStepForecaster(field, self.normalization, weight, noise, rim, m.input_noise)

    def to_metadata(self) -> dict[str, Any]:
        """Plain checkpoint metadata (tensors, strings, numbers), with the schema version."""
        return {
            "forecast_schema_version": FORECAST_SCHEMA_VERSION,
            "state_channels": self.state_layout.to_json(),
            "forcing_channels": self.forcing_layout.to_json(),
            "static_channels": ChannelLayout(self.static_channels).to_json(),
            "latitude": torch.tensor(np.asarray(self.latitude), dtype=torch.float64),
            "longitude": torch.tensor(np.asarray(self.longitude), dtype=torch.float64),
            "step_hours": self.step_hours,
            "normalization": self.normalization.to_plain(),
            "static": self.static,
            "model": to_dict(self.model),
            "graph_spec": self.graph_spec.to_json(),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], where: str = "the checkpoint") -> "ForecasterSpec":
        """Inverse of :meth:`to_metadata`; another schema version is refused."""
        version = metadata.get("forecast_schema_version")
        if version != FORECAST_SCHEMA_VERSION:
            raise ValueError(
                f"{where} holds a forecaster of schema version {version}, but this vecfield reads "
                f"version {FORECAST_SCHEMA_VERSION}; load it with the vecfield version that wrote "
                "it, or retrain with pipelines/train_forecaster.py"
            )
        return cls(
            ChannelLayout.from_json(metadata["state_channels"]),
            ChannelLayout.from_json(metadata["forcing_channels"]),
            ChannelLayout.from_json(metadata["static_channels"]).channels,
            metadata["latitude"].numpy(),
            metadata["longitude"].numpy(),
            int(metadata["step_hours"]),
            Normalization.from_plain(metadata["normalization"]),
            metadata["static"].float(),
            from_dict(ModelConfig, metadata["model"], "model"),
        )
