import pytest
import torch

from vecfield.core import GuidableVectorField, VectorField
from vecfield.nn import MLP, SinusoidalEmbedding


def test_sinusoidal_embedding_shape_and_float64() -> None:
    emb = SinusoidalEmbedding(8).double()
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    out = emb(t)
    assert out.shape == (3, 8) and out.dtype == torch.float64
    # sin² + cos² = 1 for each frequency
    torch.testing.assert_close(out[:, :4] ** 2 + out[:, 4:] ** 2, torch.ones(3, 4, dtype=torch.float64))


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
