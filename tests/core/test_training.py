"""Short training on a 2-D Gaussian mixture: flow matching and DDPM reach the data's noise floor."""

import pytest
import torch

from vecfield import VectorFieldModel
from vecfield.nn import MLP
from vecfield.quality.point_clouds import energy_distance
from vecfield.toys import sample_toy


def _train(method: str, steps: int, seed: int = 0) -> VectorFieldModel:
    torch.manual_seed(seed)
    model = VectorFieldModel(MLP(2, hidden_features=128, depth=3), method)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    data = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        loss = model.loss(sample_toy("8gaussians", 512, data))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model


def test_energy_distance_is_zero_only_for_equal_laws() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(3000, 2, generator=gen), torch.randn(3000, 2, generator=gen)
    floor = energy_distance(a, b)
    assert 0 <= floor < 2e-3
    assert energy_distance(a, b + 0.5) > 50 * floor
    assert abs(energy_distance(a, a)) < 1e-6


@pytest.mark.parametrize(("method", "solver", "steps"), [("flow_matching", "heun", 8), ("ddpm", "ddpm", 250)])
def test_short_training_reaches_the_noise_floor(method: str, solver: str, steps: int) -> None:
    model = _train(method, steps=1500)
    gen = torch.Generator().manual_seed(9)
    samples = model.sample(2000, solver=solver, steps=steps, generator=gen)
    fresh, other = sample_toy("8gaussians", 2000, gen), sample_toy("8gaussians", 2000, gen)
    floor = float(energy_distance(fresh, other))
    achieved = float(energy_distance(samples, fresh))
    untrained = float(energy_distance(torch.randn(2000, 2, generator=gen), fresh))
    print(f"{method}: energy distance {achieved:.5f}, data-vs-data floor {floor:.5f}, source {untrained:.3f}")
    # seeded: flow matching lands at the floor, DDPM (ε-loss, 250 ancestral steps) within ~3× of it
    assert achieved < 3 * floor + 2e-3, (achieved, floor)
    assert untrained > 50 * achieved
