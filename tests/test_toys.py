import math

import pytest
import torch

from vecfield.toys import SAMPLERS, TRUE_ENTROPY, sample_toy


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_toys_are_seeded_and_shaped(name: str) -> None:
    a = sample_toy(name, 64, torch.Generator().manual_seed(3))
    b = sample_toy(name, 64, torch.Generator().manual_seed(3))
    assert a.shape == (64, 2) and torch.isfinite(a).all() and torch.equal(a, b)


def test_checkerboard_is_uniform_on_eight_squares() -> None:
    x = sample_toy("checkerboard", 80_000, torch.Generator().manual_seed(0))
    cell = ((x[:, 0] + 4) // 2 * 4 + (x[:, 1] + 4) // 2).long()
    counts = torch.bincount(cell, minlength=16).double()
    occupied = counts > 0
    assert int(occupied.sum()) == 8
    # multinomial with p = 1/8: each count within 5 standard deviations of 10,000
    assert torch.all((counts[occupied] - 10_000).abs() < 5 * math.sqrt(80_000 * 1 / 8 * 7 / 8))
    assert TRUE_ENTROPY["checkerboard"] == pytest.approx(math.log(32))


def test_unknown_toy_lists_choices() -> None:
    with pytest.raises(ValueError, match="checkerboard"):
        sample_toy("swirl", 10)


def test_toy_dataset_is_drawn_once_and_the_task_is_the_learners_loss() -> None:
    from vecfield import VectorFieldModel
    from vecfield.nn import MLP
    from vecfield.toys import FieldTask, ToyDataset

    data = ToyDataset("8gaussians", 64, seed=3)
    assert len(data) == 64 and data[5].shape == (2,)
    torch.testing.assert_close(ToyDataset("8gaussians", 64, seed=3).points, data.points)
    model = VectorFieldModel(MLP(2, hidden_features=8, depth=1))
    batch = data.points[:16]
    torch.manual_seed(0)
    expected = model.training_loss(batch).loss
    torch.manual_seed(0)
    torch.testing.assert_close(FieldTask().loss(model, batch), expected)
