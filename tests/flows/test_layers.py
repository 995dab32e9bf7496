"""Flow layers against closed forms: problem 15.2.1, ActNorm's initialization, squeeze, masks."""

import math
from pathlib import Path

import pytest
import torch
from scipy import stats
from torch import Tensor, nn

from vecfield.density import TrainSettings, fit, load_checkpoint, save_checkpoint
from vecfield.flows import (
    ActNorm,
    Chain,
    Coupling,
    Flow,
    Glow,
    InvertibleLinearLU,
    Squeeze,
    Unsqueeze,
    channel_mask,
    checkerboard_mask,
)


class FixedConditioner(nn.Module):
    """s(x₁) = 0.5·sin(x₁), t(x₁) = x₁²/2 − 1 on the transformed entry x₂ (closed form)."""

    def forward(self, x: Tensor, t: None, cond: None) -> Tensor:
        x1 = x[:, :1]
        log_scale = torch.cat([torch.zeros_like(x1), 0.5 * torch.sin(x1)], dim=1)
        shift = torch.cat([torch.zeros_like(x1), 0.5 * x1**2 - 1], dim=1)
        return torch.cat([log_scale, shift], dim=1)


def test_problem_15_2_1_triangular_map_density_equals_closed_form() -> None:
    """Problem 15.2.1, as posed here (the seed's exact map is not reproduced in this repository):

    generate x from z ~ N(0, I₂) by the triangular map x₁ = z₁, x₂ = (z₂ − t(z₁))·exp(−s(z₁))
    inverted from the affine coupling f(x) = (x₁, x₂·exp(s(x₁)) + t(x₁)) with s, t above. Its density
    has the closed form x₁ ~ N(0, 1), x₂ | x₁ ~ N(−t(x₁)·e^{−s(x₁)}, e^{−2 s(x₁)}), which the flow
    machinery (coupling layer + eq. 15.2) must reproduce. scale_bound is set high enough that the
    soft clamp is inactive to within float64 rounding of the tanh.
    """
    coupling = Coupling(torch.tensor([1.0, 0.0]), FixedConditioner(), affine=True, scale_bound=1e6)
    flow = Flow(Chain(coupling), (2,), config={})
    x = torch.randn(200, 2, dtype=torch.float64) * 2
    s, t = 0.5 * torch.sin(x[:, 0]), 0.5 * x[:, 0] ** 2 - 1
    closed = stats.norm.logpdf(x[:, 0].numpy()) + stats.norm.logpdf(
        x[:, 1].numpy(), loc=(-t * torch.exp(-s)).numpy(), scale=torch.exp(-s).numpy())
    torch.testing.assert_close(flow.log_prob(x), torch.from_numpy(closed), rtol=0, atol=1e-10)


def test_linear_gaussian_flow_equals_multivariate_normal() -> None:
    """ActNorm then the LU layer is z = A(x + b) with A = W·diag(e^a), so x ~ N(−b, (AᵀA)⁻¹)."""
    act, lu = ActNorm(3).double(), InvertibleLinearLU(3).double()
    with torch.no_grad():
        act.bias.copy_(torch.tensor([0.3, -1.0, 2.0]))
        act.log_scale.copy_(torch.tensor([0.2, -0.4, 0.1]))
        lu.lower.add_(0.3 * torch.randn(3, 3, dtype=torch.float64))
        lu.log_s.add_(torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64))
    flow = Flow(Chain(act, lu), (3,), config={})
    a = lu.weight() @ torch.diag(torch.exp(act.log_scale))  # z = A(x + b)
    cov = torch.linalg.inv(a.T @ a).detach()
    x = torch.randn(50, 3, dtype=torch.float64)
    expected = stats.multivariate_normal(mean=(-act.bias).detach().numpy(), cov=cov.numpy()).logpdf(x.numpy())
    torch.testing.assert_close(flow.log_prob(x).detach(), torch.from_numpy(expected), rtol=0, atol=1e-10)
    torch.testing.assert_close(torch.linalg.slogdet(lu.weight())[1], lu.log_s.sum())


def test_actnorm_data_dependent_initialization_is_explicit() -> None:
    x = torch.randn(256, 3, 4, 4, dtype=torch.float64) * torch.tensor([2.0, 0.5, 3.0]).reshape(1, 3, 1, 1) + 1
    layer = ActNorm(3).double()
    y0, _ = layer(x)
    assert torch.equal(y0, x) and not bool(layer.initialized)  # a forward call changes nothing
    y = layer.initialize(x)
    assert bool(layer.initialized)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="at least 2"):
        layer.initialize(x[:1])


def test_glow_initialize_marks_every_actnorm() -> None:
    flow = Glow((1, 4, 4), num_steps=2, num_scales=2, hidden_features=4, depth=1)
    assert not flow.initialized
    flow.initialize(torch.randn(32, 1, 4, 4))
    assert flow.initialized


def test_squeeze_moves_each_two_by_two_block_into_channels() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float64).reshape(2, 1, 4, 4)
    y, log_det = Squeeze()(x)
    assert y.shape == (2, 4, 2, 2) and torch.equal(log_det, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(y[0, :, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0], dtype=torch.float64))
    assert torch.equal(Unsqueeze()(y)[0], x) and torch.equal(Squeeze().inverse(y), x)
    with pytest.raises(ValueError, match="squeeze"):
        Squeeze()(torch.zeros(1, 1, 3, 4))


def test_masks_are_complementary_and_balanced() -> None:
    for mask_fn in (checkerboard_mask, channel_mask):
        for shape in ((6,), (4, 2, 2)):
            m0, m1 = mask_fn(shape, 0), mask_fn(shape, 1)
            assert m0.shape == shape and torch.equal(m0 + m1, torch.ones(shape))
            assert float(m0.sum()) == math.prod(shape) / 2
    assert torch.equal(checkerboard_mask((1, 2, 2), 0)[0], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="both 0"):
        Coupling(torch.ones(3), nn.Identity())


def test_fit_initializes_actnorm_once_and_never_again_after_a_checkpoint(tmp_path: Path) -> None:
    data = torch.randn(256, 2) * torch.tensor([3.0, 0.2]) + 5
    flow = Glow((2,), num_steps=1, hidden_features=4, depth=1)
    fit(flow, data, TrainSettings(steps=1, learning_rate=1e-12, init_batch_size=256))
    actnorm = flow.transform.layers[0].layers[0]
    assert flow.initialized and float(actnorm.bias[0].detach()) == pytest.approx(-5.0, abs=0.5)
    save_checkpoint(flow, tmp_path / "glow.pt")
    loaded = load_checkpoint(tmp_path / "glow.pt", Glow)
    assert loaded.initialized
    before = loaded.state_dict()["transform.layers.0.layers.0.bias"].clone()
    fit(loaded, data * 10, TrainSettings(steps=1, learning_rate=1e-12))  # other data: no re-initialization
    torch.testing.assert_close(loaded.transform.layers[0].layers[0].bias.detach(), before)
