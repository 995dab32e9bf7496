"""Standard 2-D toy densities (the FFJORD generators' definitions), as torch tensors.

Each sampler returns ``(n, 2)`` float tensors drawn with an explicit ``torch.Generator`` so that
every experiment is reproducible. ``TRUE_ENTROPY`` gives the differential entropy in nats where it
is known (the best achievable held-out NLL).
"""

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor

from vecfield.train.datasets import TensorRows

if TYPE_CHECKING:
    from vecfield.core.model import VectorFieldModel


def checkerboard(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniform on the 8 dark squares of side 2 of a 4×4 board on [−4, 4]²; entropy ln 32."""
    x1 = torch.rand(n, generator=generator) * 4 - 2
    x2 = torch.rand(n, generator=generator) - torch.randint(0, 2, (n,), generator=generator) * 2.0
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], dim=1) * 2


def eight_gaussians(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Equal mixture of 8 isotropic Gaussians (σ = 0.5/√2) on a circle of radius 4/√2."""
    angles = torch.randint(0, 8, (n,), generator=generator) * (math.pi / 4)
    centers = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1) * 4
    return (centers + 0.5 * torch.randn(n, 2, generator=generator)) / math.sqrt(2)


def two_moons(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaving half circles with Gaussian noise 0.1, scaled by 2 and centred."""
    upper = torch.rand(n, generator=generator) < 0.5
    theta = torch.rand(n, generator=generator) * math.pi
    x = torch.where(upper, torch.cos(theta), 1 - torch.cos(theta))
    y = torch.where(upper, torch.sin(theta), 0.5 - torch.sin(theta))
    pts = torch.stack([x, y], dim=1) + 0.1 * torch.randn(n, 2, generator=generator)
    return (pts - torch.tensor([0.5, 0.25])) * 2


def two_spirals(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Two interleaved Archimedean spirals with Gaussian noise 0.1 (FFJORD's 2spirals)."""
    r = torch.sqrt(torch.rand(n, generator=generator)) * 540 * (2 * math.pi) / 360
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    d1x = -torch.cos(r) * r + torch.rand(n, generator=generator) * 0.5
    d1y = torch.sin(r) * r + torch.rand(n, generator=generator) * 0.5
    pts = torch.stack([d1x, d1y], dim=1) * sign[:, None] / 3
    return pts + 0.1 * torch.randn(n, 2, generator=generator)


def pinwheel(n: int, generator: torch.Generator | None = None) -> Tensor:
    """Five curved Gaussian arms (FFJORD's pinwheel: radial σ 0.3, tangential σ 0.05, rate 0.25)."""
    num_classes, radial_std, tangential_std, rate = 5, 0.3, 0.05, 0.25
    rads = torch.linspace(0, 2 * math.pi, num_classes + 1)[:-1]
    features = torch.randn(n, 2, generator=generator) * torch.tensor([radial_std, tangential_std])
    features[:, 0] += 1.0
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    angles = rads[labels] + rate * torch.exp(features[:, 0])
    cos, sin = torch.cos(angles), torch.sin(angles)
    rotations = torch.stack([cos, -sin, sin, cos], dim=1).reshape(n, 2, 2)
    return 2 * torch.einsum("ni,nji->nj", features, rotations)


SAMPLERS: dict[str, Callable[[int, torch.Generator | None], Tensor]] = {
    "checkerboard": checkerboard,
    "8gaussians": eight_gaussians,
    "moons": two_moons,
    "spirals": two_spirals,
    "pinwheel": pinwheel,
}

#: Differential entropy (nats) where it is known: the best achievable held-out NLL.
TRUE_ENTROPY: dict[str, float] = {
    "checkerboard": math.log(32.0),
    # no closed form: the modes overlap slightly, so the entropy is below ln 8 + ln(2πe·0.125) = 2.83788.
    # Midpoint-rule quadrature of −p ln p over [−5, 5]² (h = 0.01; h = 0.02 and [−6, 6]² agree to
    # 1e-8), checked by tests/core/test_core_toy_entropy.py.
    "8gaussians": 2.831578,
}


def sample_toy(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``n`` points (n, 2) from the named toy density."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {sorted(SAMPLERS)}")
    if n < 1:
        raise ValueError(f"n must be a positive number of points, got {n}")
    return SAMPLERS[name](n, generator)


class ToyDataset(TensorRows):
    """``n`` points of a toy density drawn once with ``seed``, as a map-style dataset of (2,)
    tensors (what ``vecfield.train.Trainer`` iterates, shuffles and resumes exactly)."""

    def __init__(self, name: str, n: int, seed: int = 0) -> None:
        super().__init__(sample_toy(name, n, torch.Generator().manual_seed(seed)))

    @property
    def points(self) -> Tensor:
        """The drawn points (n, 2)."""
        return self.rows


class FieldTask:
    """The ``vecfield.train`` task of a ``VectorFieldModel`` on unlabelled data: the learner's own
    training loss of each batch (B, …). The model must reach the task bare (no DDP or compile
    wrapper, whose call is the network's forward, not the learner's loss)."""

    def loss(self, model: torch.nn.Module, batch: Tensor) -> Tensor:
        return cast("VectorFieldModel", model).training_loss(batch).loss

