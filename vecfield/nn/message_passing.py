"""Building blocks of typed-graph message passing: fused MLP tails, gathers and sum aggregation.

Node and edge latents are (batch, items, channels). A graph's index tensors are shared by the
whole batch: gathers and scatters work on the flattened (batch·items, channels) view with
per-sample index offsets, so no per-sample copy of the graph is ever made. A latent that does not
depend on the sample (e.g. the embedding of static edge features) keeps batch size 1 and
broadcasts.

Every MLP here is GraphCast's: Linear → SiLU → Linear → LayerNorm, with one hidden layer of the
latent width. Its first linear is split per input part (the PhysicsNeMo "concat trick"): for an
edge MLP on concat(e, v_sender, v_receiver),
    W·[e, v_s, v_r] = W_e·e + (W_s·v)[sender] + (W_r·v)[receiver],
so the node parts cost one matmul per node instead of per edge. The tail
    out = LN(W₂·silu(a) + b₂) ⊙ (1 + scale) + shift
runs as one autograd function that keeps only a and the normalized output for the backward pass
(recomputing silu(a)), half the activation memory of the unfused chain.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _SiLULinearNorm(torch.autograd.Function):
    """out = LN(silu(a) Wᵀ + b) ⊙ (1 + scale) + shift, LN without affine; fp32 statistics."""

    @staticmethod
    def forward(ctx, a: Tensor, weight: Tensor, bias: Tensor, scale: Tensor | None,
                shift: Tensor | None, eps: float) -> Tensor:
        y = F.linear(F.silu(a), weight, bias)
        y = y.to(torch.promote_types(y.dtype, torch.float32))  # statistics in ≥ fp32
        normed, _, rstd = torch.native_layer_norm(y, [y.shape[-1]], None, None, eps)
        del y
        out = normed if scale is None else torch.addcmul(shift, normed, 1.0 + scale)
        ctx.save_for_backward(a, normed, rstd, weight, scale)
        ctx.has_modulation = scale is not None
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        a, normed, rstd, weight, scale = ctx.saved_tensors
        g = grad_out.to(normed.dtype)
        d_scale = d_shift = None
        if ctx.has_modulation:
            d_scale = (g * normed).sum(dim=1, keepdim=True).to(scale.dtype)
            d_shift = g.sum(dim=1, keepdim=True).to(scale.dtype)
            g = g * (1.0 + scale)
        # LayerNorm backward: dy = rstd·(g − mean(g) − x̂·mean(g·x̂))
        dy = g - g.mean(dim=-1, keepdim=True)
        dy -= normed * (g * normed).mean(dim=-1, keepdim=True)
        dy *= rstd
        del g
        d_bias = dy.sum(dim=tuple(range(dy.ndim - 1))).to(weight.dtype)
        dy = dy.to(a.dtype)
        hidden = F.silu(a)
        d_weight = (dy.reshape(-1, dy.shape[-1]).t() @ hidden.reshape(-1, hidden.shape[-1])).to(weight.dtype)
        del hidden
        d_a = torch.ops.aten.silu_backward(dy @ weight.to(a.dtype), a)
        return d_a, d_weight, d_bias, d_scale, d_shift, None


class SplitMLP(nn.Module):
    """GraphCast MLP on a concatenation of parts, with the first linear split per part.

    ``project(i, x)`` gives W_i·x for part i (so node parts can be projected per node and gathered
    per edge); ``finish(a, modulation)`` applies silu, the second linear and the (adaptive)
    LayerNorm to the summed pre-activation a = Σ_i W_i·x_i + b₁.
    Shapes: parts (B, M, part_features[i]) → (B, M, latent).
    With ``condition_features > 0`` the LayerNorm is adaptive: (scale, shift) = Linear(c) per sample.
    """

    def __init__(self, part_features: list[int], latent: int, condition_features: int = 0) -> None:
        super().__init__()
        if not part_features or min(part_features) < 1:
            raise ValueError(f"part_features must be positive widths, got {part_features}")
        self.first = nn.ModuleList(nn.Linear(width, latent, bias=(i == 0))
                                   for i, width in enumerate(part_features))
        self.second = nn.Linear(latent, latent)
        self.modulation = nn.Linear(condition_features, 2 * latent) if condition_features else None
        self.eps = 1e-5

    def project(self, part: int, x: Tensor) -> Tensor:
        """W_part·x (+ b₁ for part 0): (B, M, part_features[part]) → (B, M, latent)."""
        return self.first[part](x)

    def finish(self, a: Tensor, condition: Tensor | None = None) -> Tensor:
        """(Adaptive) LN(W₂·silu(a) + b₂): a (B, M, latent), condition (B, condition_features)."""
        scale = shift = None
        if self.modulation is not None:
            if condition is None:
                raise ValueError("this MLP has an adaptive LayerNorm and needs a condition (B, features)")
            scale, shift = self.modulation(condition)[:, None, :].chunk(2, dim=-1)
            a = a.expand(scale.shape[0], -1, -1)  # a sample-independent input gets per-sample outputs
        return _SiLULinearNorm.apply(a, self.second.weight, self.second.bias, scale, shift, self.eps)

    def forward(self, *parts: Tensor, condition: Tensor | None = None) -> Tensor:
        """The MLP on concat(parts) for parts that are already aligned item by item."""
        a = self.project(0, parts[0])
        for i, part in enumerate(parts[1:], start=1):
            a = a + self.project(i, part)
        return self.finish(a, condition)


class _Gather(torch.autograd.Function):
    """rows = table[index] with the backward as one ``index_add_`` (faster on CPU than autograd's
    scatter-based backward of ``index_select``). table (N, C), index (E,) → (E, C)."""

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.num_rows = table.shape[0]
        return table.index_select(0, index)

    @staticmethod
    def backward(ctx, grad_rows: Tensor):
        (index,) = ctx.saved_tensors
        grad_table = grad_rows.new_zeros(ctx.num_rows, grad_rows.shape[1]).index_add_(0, index, grad_rows)
        return grad_table, None


def _flat_index(index: Tensor, batch: int, num: int) -> Tensor:
    """Index into the flat (batch·num, C) view of a per-sample index (E,): (batch·E,)."""
    if batch == 1:
        return index
    offsets = (torch.arange(batch, device=index.device) * num)[:, None]
    return (index[None] + offsets).reshape(-1)


def gather(x: Tensor, index: Tensor) -> Tensor:
    """Rows of x at index, per sample: (B, N, C), (E,) → (B, E, C) through the flat view with offsets."""
    batch, num, channels = x.shape
    rows = _Gather.apply(x.reshape(batch * num, channels), _flat_index(index, batch, num))
    return rows.view(batch, -1, channels)


def sum_by_receiver(messages: Tensor, index: Tensor, num_receivers: int) -> Tensor:
    """Σ over edges of messages into their receivers: (B, E, C), (E,) → (B, num_receivers, C)."""
    batch, _, channels = messages.shape
    out = messages.new_zeros(batch * num_receivers, channels)
    out.index_add_(0, _flat_index(index, batch, num_receivers), messages.reshape(-1, channels))
    return out.view(batch, num_receivers, channels)


class InteractionNetwork(nn.Module):
    """One message-passing step on one edge set (Battaglia et al. 2018, as in GraphCast):

        e'ᵢⱼ = eᵢⱼ + MLP_e([eᵢⱼ, v_s[i], v_r[j]])
        v_r'ⱼ = v_rⱼ + MLP_v([v_rⱼ, Σᵢ e'ᵢⱼ])

    and, with ``update_senders`` (the encoder's grid nodes), v_s' = v_s + MLP_s(v_s).
    Shapes: v_s (B|1, N_s, L), v_r (B|1, N_r, L), e (B|1, E, L) → same (batch broadcast to B).
    """

    def __init__(self, latent: int, condition_features: int = 0, update_senders: bool = False) -> None:
        super().__init__()
        self.edge_mlp = SplitMLP([latent, latent, latent], latent, condition_features)
        self.receiver_mlp = SplitMLP([latent, latent], latent, condition_features)
        self.sender_mlp = SplitMLP([latent], latent, condition_features) if update_senders else None

    def forward(self, senders_latent: Tensor, receivers_latent: Tensor, edges_latent: Tensor,
                senders: Tensor, receivers: Tensor, condition: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        mlp = self.edge_mlp
        a = mlp.project(0, edges_latent)
        a = a + gather(mlp.project(1, senders_latent), senders)
        a = a + gather(mlp.project(2, receivers_latent), receivers)
        edges_latent = edges_latent + mlp.finish(a, condition)
        aggregated = sum_by_receiver(edges_latent, receivers, receivers_latent.shape[1])
        receivers_latent = receivers_latent + self.receiver_mlp(receivers_latent, aggregated,
                                                                condition=condition)
        if self.sender_mlp is not None:
            senders_latent = senders_latent + self.sender_mlp(senders_latent, condition=condition)
        return senders_latent, receivers_latent, edges_latent
