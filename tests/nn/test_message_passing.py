import torch
import torch.nn.functional as F

from vecfield.nn import SplitMLP
from vecfield.nn.message_passing import _SiLULinearNorm, gather, sum_by_receiver


def test_fused_tail_gradcheck_with_and_without_modulation() -> None:
    a = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(2, 1, 4, dtype=torch.float64, requires_grad=True)
    shift = torch.randn(2, 1, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *z: _SiLULinearNorm.apply(*z, 1e-5), (a, w, b, scale, shift))
    assert torch.autograd.gradcheck(lambda *z: _SiLULinearNorm.apply(*z, None, None, 1e-5), (a, w, b))


def test_split_mlp_equals_the_mlp_on_the_concatenation() -> None:
    """The concat trick: Σ_i W_i·x_i = W·concat(x_i); the tail is Linear → SiLU → Linear → adaptive LN."""
    mlp = SplitMLP([3, 5, 2], latent=8, condition_features=4).double()
    parts = [torch.randn(2, 7, width, dtype=torch.float64) for width in (3, 5, 2)]
    cond = torch.randn(2, 4, dtype=torch.float64)
    weight = torch.cat([layer.weight for layer in mlp.first], dim=1)
    hidden = F.silu(F.linear(torch.cat(parts, dim=-1), weight, mlp.first[0].bias))
    scale, shift = mlp.modulation(cond)[:, None].chunk(2, dim=-1)
    expected = F.layer_norm(mlp.second(hidden), (8,)) * (1 + scale) + shift
    torch.testing.assert_close(mlp(*parts, condition=cond), expected)


def test_batched_gather_and_sum_use_offsets_per_sample() -> None:
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 5, 5, 2, 1])
    rows = gather(x, index)
    torch.testing.assert_close(rows, x[:, index])
    (rows * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    expected_grad = torch.zeros(3, 6, 4, dtype=torch.float64)
    expected_grad.index_add_(1, index, torch.arange(4.0, dtype=torch.float64).expand(3, 5, 4))
    torch.testing.assert_close(x.grad, expected_grad)
    receivers = torch.tensor([0, 1, 1, 1, 3])  # sorted; node 2 receives nothing
    summed = sum_by_receiver(rows.detach(), receivers, 4)
    expected = torch.zeros(3, 4, 4, dtype=torch.float64)
    for edge, receiver in enumerate(receivers.tolist()):
        expected[:, receiver] += rows.detach()[:, edge]
    torch.testing.assert_close(summed, expected)


def test_gather_and_sum_gradcheck_with_batch_offsets() -> None:
    index = torch.tensor([3, 0, 3, 1, 1, 3])  # unsorted senders, node 2 sends nothing
    receivers = torch.tensor([0, 0, 1, 1, 1, 2])  # sorted receivers
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: gather(z, index), (x,))
    rows = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: sum_by_receiver(z, receivers, 4), (rows,))  # node 3: none
