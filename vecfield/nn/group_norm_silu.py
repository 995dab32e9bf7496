"""GroupNorm followed by SiLU as one layer, optionally with a closed-form second derivative.

    z = silu(y),   y = γ_c·x̂ + β_c,   x̂ = (x − μ_g)·r_g,   r_g = (var_g + ε)^(−1/2)

with μ_g, var_g the mean and (biased) variance over each sample's group g of C/G channels and all
positions (N elements). An energy model (``vecfield.core.energy.EnergyField``: −∇ₓE with
create_graph, then the loss's backward through it) differentiates this layer's backward pass every
training step. PyTorch does that through long decomposed formulas for ``native_group_norm`` and
``silu`` (about seventy small kernels per layer); with ``double_backward=True`` it is the closed form
below (about twenty-eight), while the forward pass and the first derivatives stay PyTorch's own
kernels (``native_group_norm``, ``silu_backward``, ``native_group_norm_backward``), so values and
gradients equal ``F.silu(F.group_norm(x, G, γ, β, ε))`` bit for bit.

First derivative, for an incoming gradient g_z (per group; means over its N elements):

    g_y = g_z·s′(y),  a = γ·g_y,  g_x = r·P(a),  P(u) = u − mean(u) − x̂·mean(u·x̂),
    g_γ = Σ g_y·x̂,   g_β = Σ g_y                     (sums over the batch and positions)

with s′(y) = σ(y)(1 + y(1 − σ(y))). Its derivative for incoming gradients (v, v_γ, v_β) of
(g_x, g_γ, g_β), from L = ⟨v, g_x⟩ + ⟨v_γ, g_γ⟩ + ⟨v_β, g_β⟩ (P is symmetric, ∂r/∂x = −r²x̂/N):

    w = r·P(v),   h = γ·w + v_γ·x̂ + v_β,   Y = g_z·h·s″(y),   s″(y) = σ(1 − σ)(2 + y(1 − 2σ))
    ∂L/∂g_z = h·s′(y)
    ∂L/∂γ = Σ (Y·x̂ + w·g_y),   ∂L/∂β = Σ Y
    ∂L/∂x  = r·P(γ·Y + v_γ·g_y) − r·(mean(a·x̂)·w + mean(v·x̂)·g_x + mean(v·g_x)·x̂)

where r·P(γ·u) is ``native_group_norm_backward`` of u. Higher derivatives (rarely needed) fall back
to PyTorch's composite formulas, so every order stays exact. Under autocast the layer is the
composite, so autocast's dtype policy applies unchanged.
"""

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx
from torch.nn import functional as F

_aten = torch.ops.aten


def _sizes(x: Tensor) -> tuple[int, int, int]:
    """(B, C, H·W…) of x (B, C, …): the sizes PyTorch's group-norm kernels take."""
    batch, channels = x.shape[:2]
    return batch, channels, x.numel() // max(batch * channels, 1)


def _silu_backward(grad_z: Tensor, y: Tensor) -> Tensor:
    """g_z·s′(y), contiguous: the group-norm kernels read gradients in x's (contiguous) layout."""
    return _aten.silu_backward(grad_z, y).contiguous()


def _reference(x: Tensor, weight: Tensor, bias: Tensor, groups: int, eps: float) -> Tensor:
    """PyTorch's composite silu(group_norm(x))."""
    return F.silu(F.group_norm(x, groups, weight, bias, eps))


class _GroupNormSiLUBackward(torch.autograd.Function):
    """(g_z, x, γ, β) -> (g_x, g_γ, g_β), the first derivative, with the closed-form second (module doc).

    y, mean and rstd are the forward pass's (constants here: their dependence on x and γ, β is in the
    closed form).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, grad_z: Tensor, x: Tensor, weight: Tensor, bias: Tensor, y: Tensor,
                mean: Tensor, rstd: Tensor, sizes: tuple[int, int, int], groups: int, eps: float,
                mask: list[bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        grad_y = _silu_backward(grad_z, y)
        grad_x, grad_weight, grad_bias = _aten.native_group_norm_backward(
            grad_y, x, mean, rstd, weight, *sizes, groups, mask)
        ctx.save_for_backward(grad_z, x, weight, bias, y, mean, rstd, grad_y, grad_x)
        ctx.sizes, ctx.groups, ctx.eps = sizes, groups, eps  # type: ignore[attr-defined]
        ctx.set_materialize_grads(False)
        return grad_x, grad_weight, grad_bias

    @staticmethod
    def backward(ctx: FunctionCtx, v: Tensor | None, v_weight: Tensor | None,
                 v_bias: Tensor | None) -> tuple[Tensor | None, ...]:
        grad_z, x, weight, bias, y, mean, rstd, grad_y, grad_x = ctx.saved_tensors  # type: ignore[attr-defined]
        if torch.is_grad_enabled():  # a third derivative: differentiate PyTorch's composite instead
            return _composite_second_derivative(ctx, grad_z, x, weight, bias, v, v_weight, v_bias)
        none = (None,) * 7
        if v is None and v_weight is None and v_bias is None:
            return (None, None, None, None, *none)
        groups: int = ctx.groups  # type: ignore[attr-defined]
        need_z, need_x, need_weight, need_bias = ctx.needs_input_grad[:4]  # type: ignore[attr-defined]
        # Seven buffers of x's size, the rest of the work in place: on the CPU a fresh buffer of this
        # size costs about as much as a pass of arithmetic over it (page faults).
        # Layouts: (B, C, HW) for per-channel factors, (B, G, N) for per-group ones (views of one buffer).
        sizes: tuple[int, int, int] = ctx.sizes  # type: ignore[attr-defined]
        batch, channels, positions = sizes
        by_channel, by_group = (batch, channels, positions), (batch, groups, -1)
        r = rstd.view(batch, groups, 1)
        x_hat = x.view(by_group).sub(mean.view(batch, groups, 1)).mul_(r)
        x_hat3, gamma = x_hat.view(by_channel), weight.view(1, channels, 1)
        y3, grad_y3 = y.view(by_channel), grad_y.view(by_channel)
        w = h = None  # w = r·P(v); h = ∂L/∂g_y
        if v is not None:
            w = _aten.native_group_norm_backward(v.contiguous(), x, mean, rstd, None, *sizes, groups,
                                                 [True, False, False])[0]
            h = w.view(by_channel) * gamma
        if v_weight is not None:
            term = x_hat3 * v_weight.view(1, channels, 1)
            h = term if h is None else h.add_(term)
        if v_bias is not None:
            beta = v_bias.view(1, channels, 1)
            h = beta.expand(by_channel) if h is None else h.add_(beta)
        assert h is not None, "one of v, v_weight, v_bias is given"
        s = torch.sigmoid(y3)
        d_z = _aten.sigmoid_backward(y3, s).add_(s).mul_(h).view(x.shape) if need_z else None  # h·s′(y)
        d_x = d_weight = d_bias = None
        if not (need_x or need_weight or need_bias):
            return (d_z, d_x, d_weight, d_bias, *none)
        big_y = torch.add(y3, 2).addcmul_(y3, s, value=-2.0).mul_(grad_z.reshape(by_channel)).mul_(h)
        big_y = _aten.sigmoid_backward.grad_input(big_y, s, grad_input=big_y)  # g_z·h·s″(y)
        buffer = s  # σ is used up: its buffer holds the products below
        if need_weight:
            product = torch.mul(big_y, x_hat3, out=buffer)
            d_weight = (product if w is None else product.addcmul_(w.view(by_channel), grad_y3)).sum((0, 2))
        if need_bias:
            d_bias = big_y.sum((0, 2))
        if not need_x:
            return (d_z, d_x, d_weight, d_bias, *none)
        d_x = _aten.native_group_norm_backward(big_y.view(x.shape), x, mean, rstd, weight, *sizes, groups,
                                               [True, False, False])[0]  # r·P(γ·Y)
        if v_weight is not None:  # + r·P(v_γ·g_y)
            d_x += _aten.native_group_norm_backward(grad_y, x, mean, rstd, v_weight, *sizes, groups,
                                                    [True, False, False])[0]
        if v is not None:
            assert w is not None, "w is set whenever v is"
            r_n = r / x_hat.shape[-1]
            vg, grad_xg, group_view = v.reshape(by_group), grad_x.view(by_group), buffer.view(by_group)
            m_a = torch.mul(grad_y3, x_hat3, out=buffer).sum(-1).mul_(weight)
            m_a = m_a.view(batch, groups, -1).sum(-1, keepdim=True).mul_(r_n)
            m_v = torch.mul(vg, x_hat, out=group_view).sum(-1, keepdim=True).mul_(r_n)
            m_vg = torch.mul(vg, grad_xg, out=group_view).sum(-1, keepdim=True).mul_(r_n)
            d_x.view(by_group).addcmul_(w.view(by_group), m_a, value=-1.0).addcmul_(
                grad_xg, m_v, value=-1.0).addcmul_(x_hat, m_vg, value=-1.0)
        return (d_z, d_x, d_weight, d_bias, *none)


def _composite_second_derivative(ctx: FunctionCtx, grad_z: Tensor, x: Tensor, weight: Tensor, bias: Tensor,
                                 v: Tensor | None, v_weight: Tensor | None,
                                 v_bias: Tensor | None) -> tuple[Tensor | None, ...]:
    """The same second derivative through PyTorch's composite formulas, differentiable to any order."""
    needs = ctx.needs_input_grad[:4]  # type: ignore[attr-defined]
    with torch.enable_grad():
        grad_z, x, weight, bias = (t if t.requires_grad else t.detach().requires_grad_(True)
                                   for t in (grad_z, x, weight, bias))
        z = _reference(x, weight, bias, ctx.groups, ctx.eps)  # type: ignore[attr-defined]
        first = torch.autograd.grad(z, (x, weight, bias), grad_z, create_graph=True)
        pairs = [(g, u) for g, u in zip(first, (v, v_weight, v_bias), strict=True) if u is not None]
        wanted = [t for t, need in zip((grad_z, x, weight, bias), needs, strict=True) if need]
        grads = iter(torch.autograd.grad([g for g, _ in pairs], wanted, [u for _, u in pairs],
                                         create_graph=True, allow_unused=True))
    return (*(next(grads) if need else None for need in needs), *(None,) * 7)


class _GroupNormSiLU(torch.autograd.Function):
    """(x, γ, β) -> silu(group_norm(x)); its backward is ``_GroupNormSiLUBackward`` when differentiated."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, weight: Tensor, bias: Tensor, groups: int,
                eps: float) -> Tensor:
        sizes = _sizes(x)
        y, mean, rstd = _aten.native_group_norm(x, weight, bias, *sizes, groups, eps)
        ctx.save_for_backward(x, weight, bias, y, mean, rstd)
        ctx.sizes, ctx.groups, ctx.eps = sizes, groups, eps  # type: ignore[attr-defined]
        return F.silu(y)

    @staticmethod
    def backward(ctx: FunctionCtx, grad_z: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias, y, mean, rstd = ctx.saved_tensors  # type: ignore[attr-defined]
        mask = list(ctx.needs_input_grad[:3])  # type: ignore[attr-defined]
        if torch.is_grad_enabled():  # create_graph: a backward pass that can itself be differentiated
            grads = _GroupNormSiLUBackward.apply(
                grad_z, x, weight, bias, y, mean, rstd, ctx.sizes, ctx.groups, ctx.eps,  # type: ignore[attr-defined]
                mask)
        else:
            grads = _aten.native_group_norm_backward(_silu_backward(grad_z, y), x, mean, rstd, weight,
                                                     *ctx.sizes, ctx.groups, mask)  # type: ignore[attr-defined]
        return (*grads, None, None)


class GroupNormSiLU(nn.GroupNorm):
    """silu(GroupNorm(x)) for x (B, C, …) -> (B, C, …), with ``nn.GroupNorm``'s parameters and state dict.

    double_backward=False: the composite ``F.silu(F.group_norm(…))``, fastest for one backward pass.
    double_backward=True: the same values and first derivatives (PyTorch's kernels, bit for bit) with
    the closed-form second derivative of the module docstring, for networks trained through their own
    input gradient (an energy model's −∇ₓE): 1.3–1.6× less time than the composite's there, and
    a few per cent more in a single backward pass (two Python autograd functions per call).
    Always affine (γ, β per channel).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 double_backward: bool = False) -> None:
        super().__init__(num_groups, num_channels, eps, affine=True)
        self.double_backward = double_backward

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"expected x of shape (batch, {self.num_channels}, …), got {tuple(x.shape)}")
        if not self.double_backward or torch.is_autocast_enabled(x.device.type):
            return _reference(x, self.weight, self.bias, self.num_groups, self.eps)
        x = x.contiguous()  # the backward passes update views of (B, C, …)-contiguous buffers in place
        return _GroupNormSiLU.apply(x, self.weight, self.bias, self.num_groups, self.eps)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, double_backward={self.double_backward}"
