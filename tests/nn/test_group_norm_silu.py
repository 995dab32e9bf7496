"""GroupNormSiLU: the composite's values and gradients, and a closed-form second derivative equal to it."""

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from vecfield.core import EnergyField, EnergyHead, energy_model
from vecfield.nn import GroupNormSiLU, UNet

pytestmark = pytest.mark.usefixtures("one_thread")


def layer(dtype: torch.dtype = torch.float64, groups: int = 3, channels: int = 6) -> GroupNormSiLU:
    """A closed-form layer with random γ, β (some γ negative, so no sign is assumed)."""
    torch.manual_seed(0)
    module = GroupNormSiLU(groups, channels, double_backward=True).to(dtype)
    with torch.no_grad():
        module.weight.normal_()
        module.bias.normal_()
    return module


def composite(module: GroupNormSiLU, x: Tensor) -> Tensor:
    return F.silu(F.group_norm(x, module.num_groups, module.weight, module.bias, module.eps))


def second_derivatives(forward: object, module: GroupNormSiLU, x: Tensor, grad_z: Tensor,
                       v: tuple[Tensor | None, ...]) -> tuple[Tensor, ...]:
    """d⟨v, (g_x, g_γ, g_β)⟩ / d(g_z, x, γ, β), g = the first derivative of forward(x) for upstream g_z."""
    inputs = (grad_z, x, module.weight, module.bias)
    first = torch.autograd.grad(forward(x), (x, module.weight, module.bias), grad_z,  # type: ignore[operator]
                                create_graph=True)
    pairs = [(g, u) for g, u in zip(first, v, strict=True) if u is not None]
    return torch.autograd.grad([g for g, _ in pairs], inputs, [u for _, u in pairs])


def test_values_and_first_derivatives_are_the_composites_bit_for_bit() -> None:
    module = layer(torch.float32)
    x = torch.randn(4, 6, 5, 3, requires_grad=True)
    grad_z = torch.randn(4, 6, 3, 5).transpose(2, 3)  # a non-contiguous incoming gradient
    ours, theirs = module(x), composite(module, x)
    assert torch.equal(ours, theirs)
    for create_graph in (False, True):  # the energy field's pass (create_graph) and the plain backward
        params = (x, module.weight, module.bias)
        a = torch.autograd.grad(ours, params, grad_z, retain_graph=True, create_graph=create_graph)
        b = torch.autograd.grad(theirs, params, grad_z, retain_graph=True)
        assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("given", ["v", "v_weight", "v_bias", "all"])
def test_second_derivative_equals_the_composites_in_float64(given: str) -> None:
    """Every input's derivative, for each incoming gradient alone and all together."""
    module = layer()
    x = torch.randn(3, 6, 4, 4, dtype=torch.float64, requires_grad=True)
    grad_z = torch.randn(3, 6, 4, 4, dtype=torch.float64, requires_grad=True)
    v = (torch.randn_like(x) if given in ("v", "all") else None,
         torch.randn(6, dtype=torch.float64) if given in ("v_weight", "all") else None,
         torch.randn(6, dtype=torch.float64) if given in ("v_bias", "all") else None)
    ours = second_derivatives(module, module, x, grad_z, v)
    theirs = second_derivatives(lambda t: composite(module, t), module, x, grad_z, v)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_gradcheck_gradgradcheck_and_the_third_derivative() -> None:
    """Finite differences in float64 to third order (the third through the composite fallback)."""
    module = layer()
    x = torch.randn(2, 6, 3, 2, dtype=torch.float64, requires_grad=True)
    params = (x, module.weight, module.bias)

    def forward(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return torch.func.functional_call(module, {"weight": weight, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(forward, params)
    assert torch.autograd.gradgradcheck(forward, params)

    def first(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, ...]:
        z = forward(x, weight, bias)
        return torch.autograd.grad((z * torch.sin(z)).sum(), (x, weight, bias), create_graph=True)

    assert torch.autograd.gradgradcheck(first, params)


def test_non_contiguous_inputs_and_incoming_gradients() -> None:
    module = layer()
    x = torch.randn(3, 4, 6, 5, dtype=torch.float64).transpose(1, 2).requires_grad_(True)  # (3, 6, 4, 5)
    assert not x.is_contiguous()
    grad_z = torch.randn(3, 6, 5, 4, dtype=torch.float64).transpose(2, 3).requires_grad_(True)
    v = (torch.randn(3, 6, 5, 4, dtype=torch.float64).transpose(2, 3), None, None)
    ours = second_derivatives(module, module, x, grad_z, v)
    theirs = second_derivatives(lambda t: composite(module, t), module, x, grad_z, v)
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_autocast_runs_the_composite_and_bad_shapes_raise() -> None:
    module = layer(torch.float32)
    x = torch.randn(2, 6, 4, 4).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, theirs = module(x), composite(module, x)
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, 6"):
        module(torch.randn(2, 5, 4, 4))


def test_state_dict_is_group_norms_and_the_switch_keeps_the_function() -> None:
    module = layer(torch.float32)
    reference = torch.nn.GroupNorm(3, 6)
    reference.load_state_dict(module.state_dict())
    x = torch.randn(2, 6, 3, 3)
    assert torch.equal(module(x), F.silu(reference(x)))
    module.double_backward = False
    assert torch.equal(module(x), F.silu(reference(x)))


def test_unet_energy_training_gradients_agree_with_the_composite_layers() -> None:
    """An energy model's loss through −∇ₓE: the same loss and parameter gradients either way (float64)."""
    torch.manual_seed(4)
    settings = {"channels": 8, "channel_mults": (1, 2), "attention_levels": (), "mid_attention": False,
                "time_features": 8, "num_classes": 3, "groups": 4, "zero_init_output": False}
    nets = [UNet(1, double_backward=flag, **settings).double() for flag in (True, False)]  # type: ignore[arg-type]
    nets[1].load_state_dict(nets[0].state_dict())
    x0, labels = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    grads, losses = [], []
    for net in nets:
        model = energy_model(EnergyHead(net), event_shape=(1, 8, 8))
        torch.manual_seed(5)
        loss = model.loss(x0, labels)
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, list(net.parameters())))
        assert isinstance(model.net, EnergyField)
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=0)
    for p, q in zip(*grads, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    assert sum(isinstance(m, GroupNormSiLU) and m.double_backward for m in nets[0].modules()) == 17
