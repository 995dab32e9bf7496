"""The forecaster's config sections: ``model:`` (graph and network), ``rollout:`` (inference and
evaluation) and ``train:`` (:class:`vecfield.train.TrainerConfig`), next to ``dataset:``.

    config = load_forecast_config("configs/quickstart.yaml", ["train.max_steps=200"])
    config.model.latent, config.train.lr, config.dataset.output

Unknown keys are errors listing the valid keys; ``key=value`` overrides use dotted paths
(see :mod:`vecfield.config.typed`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vecfield.config.typed import from_dict, load_config, read_config_file, to_dict
from vecfield.data.config import DatasetConfig
from vecfield.train.config import TrainerConfig

#: bump when the meaning of a stored forecaster checkpoint changes (layout of metadata, inputs)
FORECAST_SCHEMA_VERSION = 1
#: how the forecaster is trained and sampled (checkpoints without the key are deterministic)
#: the forecaster's learner methods (presets of ``vecfield.core.model.METHODS``): the generative ones
#: sample the 6-hour change from noise; "deterministic" is GraphCast's one Euler step
GENERATIVE_METHODS: tuple[str, ...] = ("flow_matching", "edm")
#: the push-forward ensemble forecaster: one forward pass per member, trained by the (almost-)fair CRPS
CRPS_METHOD = "crps"
MODEL_METHODS: tuple[str, ...] = ("deterministic", *GENERATIVE_METHODS, CRPS_METHOD)


@dataclass(frozen=True)
class ModelConfig:
    """The GraphCast-style network and its loss weights.

    mesh_min_level, mesh_max_level, radius_fraction: the multimesh (``vecfield.graphs.GraphSpec``).
    latent, processor_layers, time_features, checkpoint_layers: ``vecfield.nn.GridMeshGNN``.
    variable_weights: loss weight per state variable (missing ones weigh 1); GraphCast uses
    2m_temperature 1, 10 m winds, MSLP and precipitation 0.1.
    method: ``deterministic`` (GraphCast: the MSE of the residual), or a generative path from sphere
    noise to the residual: ``flow_matching`` or ``edm`` (GenCast); see docs/ensembles.md.
    sampling_steps: Heun steps per generated state (GenCast: 20 noise levels); ignored when deterministic.
    sampling_churn: S_churn of the sampler: 0 integrates the probability-flow ODE; > 0 is Heun with
    churn, with GenCast's S_min 0.75 and S_max ∞ (GenCast: 2.5); ignored when deterministic.
    sampling_churn_noise: S_noise of the churn, the added noise as a multiple of the noise level it
    restores (GenCast 1.05; larger widens the ensemble); ignored without churn.
    boundary_rim: width in grid cells of the rim of a limited-area box that boundary data overwrite
    after every step (``vecfield.forecast.boundary``): the truth in training, the truth or a coarser
    forecast at inference (``rollout.boundary``); the loss and the scores are on the interior.
    0 (default): no boundary data, a free boundary (what a user with one file has).
    grid_stencil: radius r in grid cells of the neighbourhood whose inputs each grid node embeds
    (``vecfield.nn.stencil.GridStencil``: its (2r + 1)² nodes, so the first layer sees local
    gradients); 0 (default): the node's own inputs only, as GraphCast. docs/forecast.md measures it.
    input_noise: η, training noise on the input states in units of each channel's σ^Δ (the training
    rollout starts from S + η σ^Δ ε and is scored against the truth, so the network learns to pull an
    erring state back; Sanchez-Gonzalez et al. 2020); 0 (default): none. Inference never adds it.
    ``crps`` (AIFS-CRPS, FGN): the deterministic network with a noise vector z ~ N(0, I) of
    ``noise_features`` dims per member entering its adaptive LayerNorms, trained by the almost-fair
    CRPS with α = ``crps_alpha`` (1: fair; AIFS-CRPS 0.95) over ``crps_members`` members per
    initialization, each rolled out on its own noise (docs/ensembles.md); ``mesh_noise_features``
    adds k noise values per mesh node to the mesh embedding (0: the global z only); these keys are
    ignored by the other methods.
    """

    mesh_min_level: int = 0
    mesh_max_level: int = 4
    radius_fraction: float = 0.6
    latent: int = 64
    processor_layers: int = 4
    time_features: int = 16
    checkpoint_layers: bool = False
    variable_weights: dict[str, float] = field(default_factory=dict)
    method: str = "deterministic"
    sampling_steps: int = 20
    sampling_churn: float = 0.0
    sampling_churn_noise: float = 1.05
    boundary_rim: int = 0
    grid_stencil: int = 0
    input_noise: float = 0.0
    noise_features: int = 32
    mesh_noise_features: int = 0
    crps_members: int = 2
    crps_alpha: float = 0.95

    def __post_init__(self) -> None:
        if self.boundary_rim < 0:
            raise ValueError(f"model.boundary_rim must be ≥ 0 grid cells (0: no boundary forcing), "
                             f"got {self.boundary_rim}")
        if self.grid_stencil < 0:
            raise ValueError(f"model.grid_stencil must be ≥ 0 grid cells (0: each node's own inputs; 1: its "
                             f"3 × 3 neighbourhood), got {self.grid_stencil}")
        if not self.input_noise >= 0:
            raise ValueError(f"model.input_noise must be ≥ 0 (a multiple of each channel's σ^Δ; 0: none), "
                             f"got {self.input_noise}")
        if self.method not in MODEL_METHODS:
            raise ValueError(f"model.method {self.method!r} is unknown; choose one of {list(MODEL_METHODS)}")
        if self.sampling_steps < 1:
            raise ValueError(f"model.sampling_steps must be ≥ 1, got {self.sampling_steps}")
        if not self.sampling_churn >= 0:
            raise ValueError(f"model.sampling_churn must be ≥ 0 (0: the ODE; GenCast 2.5), "
                             f"got {self.sampling_churn}")
        if not self.sampling_churn_noise > 0:
            raise ValueError(f"model.sampling_churn_noise must be > 0 (GenCast 1.05), "
                             f"got {self.sampling_churn_noise}")
        if self.method != "deterministic" and self.time_features < 2:
            raise ValueError(f"model.method={self.method!r} conditions the network's adaptive LayerNorms on "
                             "its noise: set model.time_features to an even number ≥ 2 (e.g. 16)")
        if self.method == CRPS_METHOD:
            if min(self.noise_features, self.mesh_noise_features) < 0:
                raise ValueError("model.noise_features and model.mesh_noise_features must be ≥ 0 (noise "
                                 f"values per member and per mesh node), got {self.noise_features} and "
                                 f"{self.mesh_noise_features}")
            if self.noise_features + self.mesh_noise_features < 1 or self.crps_members < 2:
                raise ValueError(f"model.method=crps needs a noise input, model.noise_features ≥ 1 (e.g. 32) "
                                 f"or model.mesh_noise_features ≥ 1, and model.crps_members ≥ 2 (the fair "
                                 f"CRPS compares members), got {self.noise_features}, "
                                 f"{self.mesh_noise_features} and {self.crps_members}")
            if not 0 <= self.crps_alpha <= 1:
                raise ValueError(f"model.crps_alpha must lie in [0, 1] (1: the fair CRPS; AIFS-CRPS 0.95), "
                                 f"got {self.crps_alpha}")
        for name, value in self.variable_weights.items():
            if not value >= 0:
                raise ValueError(f"model.variable_weights.{name} must be ≥ 0, got {value}")


@dataclass(frozen=True)
class RolloutConfig:
    """How forecasts are made and scored.

    steps: autoregressive steps per forecast (20 × 6 h = 5 days). split: the dataset split whose
    times are initializations. inits: ``complete`` keeps the initializations whose whole forecast
    lies in the split (every lead scored over the same initializations); ``all`` takes every
    initialization of the split, and the evaluation scores the leads that run past the data only
    where the truth has their valid time (it says how many initializations each lead used).
    init_every_hours: spacing of initialization times; max_inits caps their number (None: all).
    batch_size: initializations rolled out together. map_leads_hours:
    leads drawn as maps by the evaluation. output: run folder for the forecast, scorecard and plots.
    validation_steps: leads rolled out and scored at each validation during training (windows of
    the ``val`` split, one every ``init_every_hours``). members: ensemble size of a generative
    forecaster (adds the ``realization`` dim); member_chunk: (initialization, member) rows sampled
    together through the network (null: batch_size × members), which caps memory; seed: the ensemble's
    noise seed (the same seed gives the same ensemble). sampling_steps, sampling_churn,
    sampling_churn_noise: the generative sampler of this rollout (null: the checkpoint's
    ``model.sampling_*``). boundary: the boundary data of a forecaster trained with
    ``model.boundary_rim`` > 0: ``truth`` (the states of ``dataset.output``) or the path of a dataset
    (zarr, netCDF or GRIB; e.g. a coarser global forecast, canonical or WeatherBench2 forecast layout)
    holding the state variables over the box at every valid time; null for a free boundary.
    """

    output: str = "runs/forecast"
    steps: int = 20
    split: str = "test"
    inits: Literal["complete", "all"] = "complete"
    init_every_hours: int = 24
    max_inits: int | None = None
    batch_size: int = 8
    map_leads_hours: tuple[int, ...] = (24, 120)
    validation_steps: int = 4
    members: int = 1
    member_chunk: int | None = None
    seed: int = 0
    sampling_steps: int | None = None
    sampling_churn: float | None = None
    sampling_churn_noise: float | None = None
    boundary: str | None = None

    def __post_init__(self) -> None:
        if self.boundary == "":
            raise ValueError("rollout.boundary is empty; give 'truth', a dataset path, or null (no boundary)")
        if self.sampling_steps is not None and self.sampling_steps < 1:
            raise ValueError(f"rollout.sampling_steps must be ≥ 1 or null, got {self.sampling_steps}")
        if self.sampling_churn is not None and not self.sampling_churn >= 0:
            raise ValueError(f"rollout.sampling_churn must be ≥ 0 or null, got {self.sampling_churn}")
        if self.sampling_churn_noise is not None and not self.sampling_churn_noise > 0:
            raise ValueError(f"rollout.sampling_churn_noise must be > 0 or null, "
                             f"got {self.sampling_churn_noise}")
        if self.members < 1 or (self.member_chunk is not None and self.member_chunk < 1):
            raise ValueError("rollout.members and rollout.member_chunk must be ≥ 1 "
                             "(member_chunk may be null)")
        if min(self.steps, self.init_every_hours, self.batch_size, self.validation_steps) < 1:
            raise ValueError("rollout.steps, init_every_hours, batch_size and validation_steps must be ≥ 1")
        if self.max_inits is not None and self.max_inits < 1:
            raise ValueError(f"rollout.max_inits must be ≥ 1 or null, got {self.max_inits}")


@dataclass(frozen=True)
class ForecastConfig:
    """A whole forecasting experiment: the four sections of a config file."""

    dataset: DatasetConfig
    model: ModelConfig
    train: TrainerConfig
    rollout: RolloutConfig = field(default_factory=RolloutConfig)


SECTIONS: dict[str, type] = {
    "dataset": DatasetConfig,
    "model": ModelConfig,
    "train": TrainerConfig,
    "rollout": RolloutConfig,
}


def load_forecast_config(path: str | Path, overrides: Sequence[str] = ()) -> ForecastConfig:
    """The experiment in the YAML file ``path`` with ``section.key=value`` overrides applied.

    The ``rollout:`` section may be omitted (defaults); the others are required.
    """
    present = set(read_config_file(path))
    wanted = "rollout" in present or any(o.startswith("rollout.") for o in overrides)
    sections = {name: cls for name, cls in SECTIONS.items() if name != "rollout" or wanted}
    return ForecastConfig(**load_config(path, sections, overrides))


def forecast_config_to_dict(config: ForecastConfig) -> dict[str, Any]:
    """Plain YAML-safe data (for checkpoints); :func:`forecast_config_from_dict` reads it back."""
    return {
        "dataset": to_dict(config.dataset),
        "model": to_dict(config.model),
        "train": config.train.to_dict(),
        "rollout": to_dict(config.rollout),
    }


def forecast_config_from_dict(data: Mapping[str, Any]) -> ForecastConfig:
    """The config stored by :func:`forecast_config_to_dict` (validated again)."""
    return ForecastConfig(**{name: from_dict(cls, data[name], name) for name, cls in SECTIONS.items()})
