"""Where the path starts: source distributions and how source points are paired with data.

A coupling answers two questions:
  - ``source(shape, …)``: unpaired source points at t = 0, to start sampling from;
  - ``pair(x1, …)``: source points paired with a training batch x₁ (B, …), row i with row i.

Couplings here:
  - ``IndependentCoupling``: x₀ from a noise sampler, independent of x₁ (the standard choice);
  - ``MinibatchOTCoupling``: the same noise, re-ordered by the exact optimal assignment of the batch
    under squared Euclidean cost (scipy's ``linear_sum_assignment``), as in OT-CFM / multisample FM;
  - ``ZeroCoupling``: x₀ = 0, the deterministic forecaster's source in normalized-residual space.
A caller-supplied source (e.g. the current weather state) needs no coupling: pass ``x0`` to the loss.

The noise sampler is pluggable: any callable ``(shape, generator, dtype, device) -> Tensor``, so
that e.g. noise that is white on the sphere can replace i.i.d. Gaussian noise.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

NoiseSampler = Callable[[tuple[int, ...], torch.Generator | None, torch.dtype, torch.device], Tensor]


def standard_normal(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
                    device: torch.device) -> Tensor:
    """i.i.d. N(0, 1) noise of ``shape``; drawn on the generator's device, then moved to ``device``."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, dtype=dtype, device=where).to(device)


class Coupling(ABC):
    """Source points for sampling and source–data pairs for training."""

    @abstractmethod
    def source(self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
               device: torch.device) -> Tensor:
        """Unpaired source points of ``shape`` = (B, …)."""

    def pair(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Source points x₀ (B, …) paired row by row with the data x₁ (B, …)."""
        return self.source(tuple(x1.shape), generator, x1.dtype, x1.device)


class IndependentCoupling(Coupling):
    """x₀ ~ noise, independent of x₁."""

    def __init__(self, noise: NoiseSampler = standard_normal) -> None:
        if not callable(noise):
            raise TypeError("noise must be a callable (shape, generator, dtype, device) -> Tensor")
        self.noise = noise

    def source(self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
               device: torch.device) -> Tensor:
        x0 = self.noise(shape, generator, dtype, device)
        if tuple(x0.shape) != tuple(shape):
            raise ValueError(f"the noise sampler returned shape {tuple(x0.shape)} for requested shape "
                             f"{tuple(shape)}; it must return exactly the requested shape")
        return x0


class MinibatchOTCoupling(IndependentCoupling):
    """Noise re-ordered so that Σ_i ‖x₁[i] − x₀[i]‖² is minimal over permutations of the batch.

    The assignment is exact (Hungarian / Jonker–Volgenant via scipy), O(B³) on the CPU; batches of a
    few hundred cost milliseconds. Events of any shape are compared flattened.
    """

    def pair(self, x1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x0 = self.source(tuple(x1.shape), generator, x1.dtype, x1.device)
        distance = torch.cdist(x1.detach().flatten(1).double(), x0.flatten(1).double())  # (B, B)
        cost = (distance**2).cpu().numpy()
        if not np.isfinite(cost).all():
            raise ValueError("the training data x1 contains NaN or infinite values; "
                             "drop or impute those examples before training")
        rows, cols = linear_sum_assignment(cost)
        assert np.array_equal(rows, np.arange(len(rows)))
        return x0[torch.as_tensor(cols, device=x1.device)]


class ZeroCoupling(Coupling):
    """x₀ = 0: the path degenerates to x_t = α_t·x₁ (the deterministic forecaster's source)."""

    def source(self, shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
               device: torch.device) -> Tensor:
        return torch.zeros(shape, dtype=dtype, device=device)


COUPLINGS: dict[str, Callable[[NoiseSampler], Coupling]] = {
    "independent": IndependentCoupling,
    "ot": MinibatchOTCoupling,
    "zero": lambda noise: ZeroCoupling(),
}


def get_coupling(coupling: str | Coupling, noise: NoiseSampler = standard_normal) -> Coupling:
    """A coupling from its name (using ``noise`` as the source sampler) or the instance itself."""
    if isinstance(coupling, Coupling):
        return coupling
    if coupling not in COUPLINGS:
        raise ValueError(f"unknown coupling {coupling!r}; choose one of {sorted(COUPLINGS)} "
                         "or pass a Coupling instance")
    return COUPLINGS[coupling](noise)
