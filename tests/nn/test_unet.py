"""The UNet meets the backbone contract, and classifier-free guidance through it follows eq. 15.12."""


import pytest
import torch

from vecfield import VectorFieldModel
from vecfield.core.field import GuidableVectorField, VectorField
from vecfield.nn import UNet

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_unet(**overrides: object) -> UNet:
    settings = {"in_channels": 1, "channels": 8, "channel_mults": (1, 2), "attention_levels": (1,),
                "heads": 2, "time_features": 16, "num_classes": 10, "groups": 4}
    return UNet(**{**settings, **overrides})


def randomize_output(net: UNet) -> None:
    """Give the zero-initialized output layer random weights, so that gradients flow through it."""
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)
    torch.nn.init.normal_(net.conv_out.bias, std=0.1)


@pytest.mark.parametrize(("size", "mults"),
                         [(8, (1, 2)), (28, (1, 2, 2)), (28, (1, 2, 2, 2)), (7, (1, 2, 2))])
def test_shapes_for_digits_and_mnist_sizes(size: int, mults: tuple[int, ...]) -> None:
    net = tiny_unet(channel_mults=mults, attention_levels=(len(mults) - 1,), out_channels=3)
    x = torch.randn(3, 1, size, size)
    out = net(x, torch.rand(3), torch.tensor([0, 4, 10]))
    assert out.shape == (3, 3, size, size)
    assert isinstance(net, VectorField) and isinstance(net, GuidableVectorField)


def test_output_is_exactly_zero_at_initialization() -> None:
    net = tiny_unet()
    out = net(torch.randn(4, 1, 8, 8), torch.rand(4), torch.tensor([1, 2, 3, 10]))
    assert torch.count_nonzero(out) == 0
    nonzero = tiny_unet(zero_init_output=False)(torch.randn(4, 1, 8, 8), torch.rand(4), torch.arange(4))
    assert torch.count_nonzero(nonzero) > 0


@pytest.mark.parametrize("size", [8, 28])
def test_gradients_reach_every_parameter(size: int) -> None:
    mults = (1, 2) if size == 8 else (1, 2, 2)
    net = tiny_unet(channel_mults=mults, attention_levels=(0, len(mults) - 1), blocks_per_level=2,
                    dropout=0.1)
    randomize_output(net)
    labels = torch.tensor([0, 3, 10, 10])  # the null class 10 takes part, so its embedding row learns
    net(torch.randn(4, 1, size, size), torch.rand(4), labels).square().sum().backward()
    missing = [name for name, p in net.named_parameters()
               if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not missing
    assert bool(net.class_embedding.weight.grad[10].abs().sum() > 0)
    assert float(net.class_embedding.weight.grad[5].abs().sum()) == 0.0  # label 5 was not in the batch


def test_null_class_and_conditioning_change_the_output() -> None:
    net = tiny_unet()
    randomize_output(net)
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    labels = torch.tensor([3, 7])
    null = net.null_condition(labels)
    assert torch.equal(null, torch.tensor([10, 10]))
    assert not torch.allclose(net(x, t, labels), net(x, t, null))
    assert not torch.allclose(net(x, t, labels), net(x, t, torch.tensor([4, 7])))
    # each example only sees its own label and time (GroupNorm and attention are per example)
    torch.testing.assert_close(net(x, t, labels)[1], net(x[1:], t[1:], labels[1:])[0])


def test_time_changes_the_output() -> None:
    net = tiny_unet(num_classes=0)
    randomize_output(net)
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(net(x, torch.tensor([0.1])), net(x, torch.tensor([0.6])))


def test_float64_matches_float32() -> None:
    net = tiny_unet()
    randomize_output(net)
    x, t, y = torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([1, 10])
    out32 = net(x, t, y)
    out64 = net.double()(x.double(), t.double(), y)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, rtol=1e-4, atol=1e-5)


def test_user_errors_name_the_problem() -> None:
    net = tiny_unet()
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    with pytest.raises(ValueError, match="class-conditional"):
        net(x, t)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\]"):
        net(x, t, torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="integer labels"):
        net(x, t, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(batch, 1, H, W\)"):
        net(torch.randn(2, 3, 8, 8), t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"t of shape \(2,\)"):
        net(x, torch.rand(3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="takes no condition"):
        tiny_unet(num_classes=0)(x, t, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="class-conditional"):
        tiny_unet(num_classes=0).null_condition(torch.tensor([0]))
    with pytest.raises(ValueError, match=r"attention_levels \[2\] do not exist"):
        tiny_unet(attention_levels=(2,))
    with pytest.raises(ValueError, match="heads=3 must divide"):
        tiny_unet(heads=3)


@pytest.mark.parametrize("method", ["flow_matching", "ddpm"])
def test_guidance_on_images_follows_eq_15_12(method: str) -> None:
    """f_w = f(∅) + w·(f(c) − f(∅)) through VectorFieldModel: w=0 unconditional, w=1 conditional."""
    net = tiny_unet().double().eval()
    randomize_output(net)
    model = VectorFieldModel(net, method, event_shape=(1, 8, 8), t_start=0.1, t_end=0.9)
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    t = torch.rand(4, dtype=torch.float64) * 0.8 + 0.1
    y = torch.tensor([0, 3, 9, 5])
    conditional = model.velocity(x, t, y)
    unconditional = model.velocity(x, t, net.null_condition(y))
    assert not torch.allclose(conditional, unconditional)
    torch.testing.assert_close(model.velocity(x, t, y, guidance=0.0), unconditional, rtol=0, atol=1e-12)
    torch.testing.assert_close(model.velocity(x, t, y, guidance=1.0), conditional, rtol=0, atol=1e-12)
    for w in (0.5, 2.0, 4.0):
        expected = unconditional + w * (conditional - unconditional)
        torch.testing.assert_close(model.velocity(x, t, y, guidance=w), expected, rtol=1e-10, atol=1e-10)
    plain = model.sample(4, y, steps=3, solver="euler" if method == "flow_matching" else "ddim",
                         generator=torch.Generator().manual_seed(1))
    guided = model.sample(4, y, steps=3, solver="euler" if method == "flow_matching" else "ddim",
                          guidance=1.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(guided, plain, rtol=0, atol=1e-10)


def test_loss_with_condition_dropout_is_finite_and_reaches_the_output_layer() -> None:
    net = tiny_unet()
    model = VectorFieldModel(net, "flow_matching", cond_dropout=0.5, event_shape=(1, 8, 8))
    loss = model.loss(torch.rand(6, 1, 8, 8) * 2 - 1, torch.arange(6))
    loss.backward()
    assert torch.isfinite(loss)
    assert bool(net.conv_out.weight.grad.abs().sum() > 0)
