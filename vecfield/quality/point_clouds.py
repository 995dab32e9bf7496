"""Sample-quality distances between two point clouds, used to judge samplers against data."""

import torch
from torch import Tensor


def _mean_distance(a: Tensor, b: Tensor, chunk: int) -> Tensor:
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    for start in range(0, a.shape[0], chunk):
        total = total + torch.cdist(a[start:start + chunk], b).double().sum()
    return total / (a.shape[0] * b.shape[0])


def energy_distance(x: Tensor, y: Tensor, chunk: int = 2048) -> Tensor:
    """Energy distance 2·E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (Székely & Rizzo), V-statistic, float64.

    Shapes: x (N, D), y (M, D) (events of other shapes are flattened). It is ≥ 0 and 0 only for
    equal distributions; between two independent samples of one law its expectation is the noise
    floor (≈ (1/N + 1/M)·E‖X − X'‖) that a perfect sampler reaches.
    """
    x, y = x.flatten(1).double(), y.flatten(1).double()
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"the point clouds have different dimensions {x.shape[1]} and {y.shape[1]}")
    return 2 * _mean_distance(x, y, chunk) - _mean_distance(x, x, chunk) - _mean_distance(y, y, chunk)


class EnergyDistanceToReference:
    """Energy distance of many sample sets to one fixed reference set (its self term computed once)."""

    def __init__(self, reference: Tensor, chunk: int = 2048) -> None:
        self.reference = reference.flatten(1).double()
        self.chunk = chunk
        self.self_term = _mean_distance(self.reference, self.reference, chunk)

    def __call__(self, x: Tensor) -> Tensor:
        """energy_distance(x, reference) for x (N, D)."""
        x = x.flatten(1).double()
        if x.shape[1] != self.reference.shape[1]:
            raise ValueError(f"samples have dimension {x.shape[1]}, the reference {self.reference.shape[1]}")
        cross = _mean_distance(x, self.reference, self.chunk)
        return 2 * cross - _mean_distance(x, x, self.chunk) - self.self_term
