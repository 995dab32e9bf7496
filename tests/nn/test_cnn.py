"""The small CNN backbone used as the coupling conditioner on images (vecfield.nn.ConvNet)."""

import pytest
import torch

from vecfield.core import VectorField
from vecfield.nn import ConvNet


def test_convnet_plain_conditioner_and_time_conditioned_field() -> None:
    plain = ConvNet(2, 4, hidden_channels=8, depth=2, zero_init_output=True)
    x = torch.randn(3, 2, 6, 4)
    assert torch.equal(plain(x, None, None), torch.zeros(3, 4, 6, 4))
    timed = ConvNet(2, hidden_channels=8, depth=1, time_features=8)
    assert isinstance(timed, VectorField)
    out_a, out_b = timed(x, torch.zeros(3)), timed(x, torch.ones(3))
    assert out_a.shape == (3, 2, 6, 4) and not torch.allclose(out_a, out_b)
    out_a.sum().backward()
    assert all(p.grad is not None for p in timed.parameters())


def test_convnet_rejects_bad_input() -> None:
    net = ConvNet(1, hidden_channels=4, depth=1)
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="time_features=0"):
        net(torch.zeros(2, 1, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="expected t"):
        ConvNet(1, hidden_channels=4, depth=1, time_features=4)(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="choose one of"):
        ConvNet(1, activation="swish")  # type: ignore[arg-type]
