"""Ensemble rollouts of the generative and the CRPS forecasters: M members as batch rows, each fed its
own states.

The rows of an ensemble rollout are (initialization, member) pairs, initialization-major:
row = i·M + m. Every row advances autoregressively on its own previous states
(``vecfield.forecast.rollout.autoregressive``), so members diverge as their noise differs.

Noise: member m of the initialization at time T draws, at lead ℓ, the standard normal z of the
forecaster's ``noise_shape`` (the generative one: a field (nodes, C); the CRPS one: a vector (K,)) from
a generator seeded by numpy's ``SeedSequence([seed, hours(T), m, ℓ])``
(hours since 1900), and a sampler with churn draws its further fields from the same generator.
The ensemble therefore depends only on (seed, T, m, ℓ): not on how rows are
chunked through the network (``member_chunk``), on which other initializations are rolled out with
it, or on whether a streamed rollout was interrupted and resumed. Different members, leads or
seeds give independent noise; the same seed gives the same ensemble.
"""

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from vecfield.forecast.generative import GenerativeOneStepForecaster
from vecfield.forecast.rollout import StepResult
from vecfield.forecast.stochastic import StochasticOneStepForecaster

_EPOCH = np.datetime64("1900-01-01T00", "h")
#: forecasters whose members differ (their ``step_from_noise`` takes each row's standard normal noise)
EnsembleForecaster = GenerativeOneStepForecaster | StochasticOneStepForecaster


def is_ensemble_forecaster(module: torch.nn.Module) -> bool:
    """Whether ``module`` samples members (generative or CRPS), rather than one deterministic forecast."""
    return isinstance(module, EnsembleForecaster)


def member_keys(inits: np.ndarray, members: int) -> list[tuple[int, int]]:
    """(hours since 1900 of the initialization, member) of every row, initialization-major."""
    hours = ((np.asarray(inits, dtype="datetime64[h]") - _EPOCH) // np.timedelta64(1, "h")).astype(np.int64)
    if (hours < 0).any():
        raise ValueError("ensemble initializations must lie after 1900-01-01 "
                         "(the noise seeds count hours from it)")
    return [(int(h), m) for h in hours for m in range(members)]


def member_generators(keys: Sequence[tuple[int, int]], lead: int, seed: int) -> list[torch.Generator]:
    """One CPU generator per row, seeded by its (initialization, member), ``lead`` and ``seed``."""
    generators = []
    for init_hours, member in keys:
        state = np.random.SeedSequence([seed, init_hours, member, lead]).generate_state(2, np.uint64)[0]
        generators.append(torch.Generator().manual_seed(int(state) >> 1))  # manual_seed takes < 2**63
    return generators


def draw_rows(generators: Sequence[torch.Generator], shape: tuple[int, ...],
              dtype: torch.dtype = torch.float32) -> Tensor:
    """(rows, nodes, C) standard normal noise, row r from ``generators[r]`` (which advance)."""
    return torch.stack([torch.randn(shape, generator=generator, dtype=dtype) for generator in generators])


def member_noise(keys: Sequence[tuple[int, int]], lead: int, seed: int, shape: tuple[int, int],
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """(rows, nodes, C) standard normal noise z of each row's (initialization, member) at ``lead``."""
    return draw_rows(member_generators(keys, lead, seed), shape, dtype)


class MemberStepper:
    """A stepper (``vecfield.forecast.rollout.Stepper``) for some rows of an ensemble rollout, drawing
    each row's noise as the module docstring says; ``first_lead`` is the lead its first step makes."""

    def __init__(self, module: EnsembleForecaster, keys: Sequence[tuple[int, int]], seed: int,
                 first_lead: int) -> None:
        self.module, self.keys, self.seed, self.lead = module, list(keys), seed, first_lead

    def step(self, previous: Tensor, current: Tensor, forcings: Tensor, static: Tensor,
             target: Tensor | None = None) -> StepResult:
        """The next state of every row (rows, N, C); sampling only (``target`` must be None)."""
        if target is not None:
            raise ValueError("ensemble rollouts sample; train with the module itself")
        if current.shape[0] != len(self.keys):
            raise ValueError(f"{len(self.keys)} (initialization, member) keys for {current.shape[0]} rows")
        generators = member_generators(self.keys, self.lead, self.seed)
        shape = self.module.noise_shape(current)
        self.lead += 1

        def draw_normal() -> Tensor:
            return draw_rows(generators, shape, current.dtype).to(current.device)

        z = draw_normal()
        return StepResult(self.module.step_from_noise(previous, current, forcings, static, z, draw_normal))


class EnsemblePlan:
    """The rows of an ensemble rollout: their (initialization, member) keys and the noise seed; it
    hands each network batch of rows its :class:`MemberStepper` (``first_lead``: the lead that the
    rollout's first step makes, > 1 when a stored rollout is resumed)."""

    def __init__(self, inits: np.ndarray, members: int, seed: int, first_lead: int = 1) -> None:
        self.keys, self.seed, self.first_lead = member_keys(inits, members), seed, first_lead

    def stepper(self, module: EnsembleForecaster, part: slice, done: int) -> MemberStepper:
        """The stepper of rows ``part`` whose first step makes lead ``first_lead − 1 + done``."""
        return MemberStepper(module, self.keys[part], self.seed, self.first_lead - 1 + done)


def plan_rows(module: torch.nn.Module, states: Tensor, inits: np.ndarray, batch_size: int, members: int,
              member_chunk: int | None, seed: int) -> tuple[Tensor, np.ndarray, int, EnsemblePlan | None]:
    """The rows of a rollout from (B, 2, N, C) initial states: the (rows, 2, N, C) states, each
    row's current time, the rows per network batch and the ensemble plan (None for a deterministic
    forecaster, whose rows are the initializations). An ensemble forecaster's rows are the
    (initialization, member) pairs, i·M + m, ``member_chunk`` (default batch_size × M) at a time."""
    if member_chunk is not None and member_chunk < 1:
        raise ValueError(f"member_chunk must be ≥ 1 or None, got {member_chunk}")
    if not is_ensemble_forecaster(module):
        return states, inits, batch_size, None
    rows = member_chunk if member_chunk is not None else batch_size * members
    return (states.repeat_interleave(members, dim=0), np.repeat(inits, members), rows,
            EnsemblePlan(inits, members, seed))
