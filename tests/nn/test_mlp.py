import math

import pytest
import torch

from vecfield.core import GuidableVectorField, VectorField
from vecfield.nn import MLP, FourierFeatures, SinusoidalEmbedding


def test_sinusoidal_embedding_shape_and_float64() -> None:
    emb = SinusoidalEmbedding(8).double()
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    out = emb(t)
    assert out.shape == (3, 8) and out.dtype == torch.float64
    # sin² + cos² = 1 for each frequency
    torch.testing.assert_close(out[:, :4] ** 2 + out[:, 4:] ** 2, torch.ones(3, 4, dtype=torch.float64))


def test_fourier_features_are_the_stated_map_and_round_trip() -> None:
    torch.manual_seed(0)
    gamma = FourierFeatures(2, 5, scale=0.5).double()
    x = torch.randn(7, 2, dtype=torch.float64)
    out = gamma(x)
    assert out.shape == (7, 2 + 10) == (7, gamma.out_features)
    phase = x @ gamma.frequencies
    torch.testing.assert_close(out, torch.cat([x, phase.sin(), phase.cos()], dim=1), rtol=0, atol=0)
    # B's columns are N(0, scale²) in cycles per unit: 2π·scale on the angular frequency
    assert 0.5 < float(FourierFeatures(2, 20_000, scale=0.5).frequencies.std()) / (2 * math.pi * 0.5) < 1.5
    # the frequencies are a persistent buffer: an MLP rebuilt from the state dict gives the same field
    net = MLP(2, hidden_features=8, depth=1, fourier_features=4)
    torch.manual_seed(1)
    twin = MLP(2, hidden_features=8, depth=1, fourier_features=4)
    assert not torch.equal(net.fourier.frequencies, twin.fourier.frequencies)
    twin.load_state_dict(net.state_dict())
    x, t = torch.randn(3, 2), torch.rand(3)
    assert torch.equal(net(x, t), twin(x, t))
    with pytest.raises(ValueError, match="positive"):
        FourierFeatures(2, 4, scale=0.0)
    with pytest.raises(ValueError, match="fourier_features"):
        MLP(2, fourier_features=-1)


def test_mlp_contract_and_null_class() -> None:
    net = MLP(2, hidden_features=16, depth=2, num_classes=3)
    assert isinstance(net, VectorField) and isinstance(net, GuidableVectorField)
    x, t, y = torch.randn(5, 2), torch.rand(5), torch.tensor([0, 1, 2, 3, 0])
    out = net(x, t, y)
    assert out.shape == (5, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert torch.equal(net.null_condition(y), torch.full((5,), 3))


def test_mlp_rejects_bad_input() -> None:
    net = MLP(2, hidden_features=8, depth=1)
    with pytest.raises(ValueError, match="shape"):
        net(torch.randn(4, 3), torch.rand(4))
    with pytest.raises(ValueError, match="t of shape"):
        net(torch.randn(4, 2), torch.rand(3))
    with pytest.raises(ValueError, match="no condition"):
        net(torch.randn(4, 2), torch.rand(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="null class"):
        MLP(2, num_classes=2)(torch.randn(2, 2), torch.rand(2), torch.tensor([0, 5]))
