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

from typing import NamedTuple

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
        width = normed.shape[-1]
        d_scale = d_shift = None
        if ctx.has_modulation:
            gain = (1.0 + scale).transpose(1, 2)  # (B, L, 1)
            g_normed = g * normed
            d_scale = g_normed.sum(dim=1, keepdim=True).to(scale.dtype)
            d_shift = g.sum(dim=1, keepdim=True).to(scale.dtype)
            # row means of g·(1 + scale) and g·(1 + scale)·x̂ as matrix-vector products
            mean_g = torch.matmul(g, gain).div_(width)
            mean_gx = torch.matmul(g_normed, gain).div_(width)
            del g_normed
            g = g * (1.0 + scale)
        else:
            mean_g = g.mean(dim=-1, keepdim=True)
            mean_gx = (g * normed).mean(dim=-1, keepdim=True)
        # LayerNorm backward: dy = rstd·(g − mean(g) − x̂·mean(g·x̂))
        dy = torch.addcmul(g - mean_g, normed, mean_gx, value=-1.0).mul_(rstd)
        del g, mean_g, mean_gx
        d_bias = dy.sum(dim=tuple(range(dy.ndim - 1))).to(weight.dtype)
        dy = dy.to(a.dtype).reshape(-1, width)
        hidden = F.silu(a).reshape(-1, a.shape[-1])
        d_weight = (dy.t() @ hidden).to(weight.dtype)
        del hidden
        d_a = torch.ops.aten.silu_backward((dy @ weight.to(a.dtype)).view(a.shape), a)
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
            a = _accumulate(a, self.project(i, part))
        return self.finish(a, condition)


class EdgeIndex(NamedTuple):
    """Index tensors of one edge set, edges sorted by receiver.

    senders, receivers: (E,) int64; sender_order: (E,) stable argsort of senders;
    sender_counts: (N_s,) and receiver_counts: (N_r,) edges per node (``bincount``).
    """

    senders: Tensor
    receivers: Tensor
    sender_order: Tensor
    sender_counts: Tensor
    receiver_counts: Tensor

    @classmethod
    def from_edges(cls, senders: Tensor, receivers: Tensor, num_senders: int,
                   num_receivers: int) -> "EdgeIndex":
        """Sort (senders, receivers) by receiver and precompute the segment tables."""
        order = torch.argsort(receivers * num_senders + senders)
        senders, receivers = senders[order].contiguous(), receivers[order].contiguous()
        return cls(senders, receivers, torch.argsort(senders, stable=True),
                   torch.bincount(senders, minlength=num_senders),
                   torch.bincount(receivers, minlength=num_receivers))


def _flat_index(index: Tensor, batch: int, num: int) -> Tensor:
    """Index into the flat (batch·num, C) view of a per-sample index (E,): (batch·E,)."""
    if batch == 1:
        return index
    offsets = (torch.arange(batch, device=index.device) * num)[:, None]
    return (index[None] + offsets).reshape(-1)


def _segment_sum(rows: Tensor, counts: Tensor, batch: int) -> Tensor:
    """Sums of consecutive row segments: (batch·Σcounts, C) → (batch·len(counts), C); empty → 0.

    ``segment_reduce`` over sorted segments is much faster on CPU than ``index_add_``, whose
    multi-threaded path expands the index to the full (rows, C) shape.
    """
    lengths = counts if batch == 1 else counts.repeat(batch)
    return torch.segment_reduce(rows, "sum", lengths=lengths, axis=0)


class _Gather(torch.autograd.Function):
    """rows = table[index] (table (B·N, C)); the backward sums the rows' gradients per table row as
    segment sums (after sorting the rows by index when ``order`` is given)."""

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor, order: Tensor | None, counts: Tensor,
                batch: int) -> Tensor:
        ctx.save_for_backward(order, counts)
        ctx.batch = batch
        return table.index_select(0, index)

    @staticmethod
    def backward(ctx, grad_rows: Tensor):
        order, counts = ctx.saved_tensors
        if order is not None:
            grad_rows = grad_rows.index_select(0, _flat_index(order, ctx.batch, order.shape[0]))
        return _segment_sum(grad_rows, counts, ctx.batch), None, None, None, None


class _SumByReceiver(torch.autograd.Function):
    """Segment sums of messages sorted by receiver; the backward gathers by receiver."""

    @staticmethod
    def forward(ctx, messages: Tensor, index: Tensor, counts: Tensor, batch: int) -> Tensor:
        ctx.save_for_backward(index)
        return _segment_sum(messages, counts, batch)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (index,) = ctx.saved_tensors
        return grad_out.index_select(0, index), None, None, None


def gather(x: Tensor, index: Tensor, counts: Tensor, order: Tensor | None = None) -> Tensor:
    """Rows of x at index, per sample: (B, N, C), (E,) → (B, E, C) through the flat view with offsets.

    counts: (N,) ``bincount(index)``; order: stable argsort of index, or None if index is sorted.
    """
    batch, num, channels = x.shape
    flat = _flat_index(index, batch, num)
    rows = _Gather.apply(x.reshape(batch * num, channels), flat, order, counts, batch)
    return rows.view(batch, -1, channels)


def sum_by_receiver(messages: Tensor, index: Tensor, counts: Tensor) -> Tensor:
    """Σ over edges of messages into their receivers: (B, E, C), sorted index (E,), counts (N_r,)
    → (B, N_r, C)."""
    batch, num_edges, channels = messages.shape
    flat = _flat_index(index, batch, counts.shape[0])
    out = _SumByReceiver.apply(messages.reshape(batch * num_edges, channels), flat, counts, batch)
    return out.view(batch, counts.shape[0], channels)


def _accumulate(total: Tensor, term: Tensor) -> Tensor:
    """total + term, in place when the shapes allow (total must be a fresh, unsaved tensor)."""
    return total.add_(term) if total.shape == term.shape else total + term


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
                edges: EdgeIndex, condition: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        mlp = self.edge_mlp
        from_senders = gather(mlp.project(1, senders_latent), edges.senders, edges.sender_counts,
                              edges.sender_order)
        a = _accumulate(mlp.project(0, edges_latent), from_senders)
        a = _accumulate(a, gather(mlp.project(2, receivers_latent), edges.receivers, edges.receiver_counts))
        edges_latent = edges_latent + mlp.finish(a, condition)
        aggregated = sum_by_receiver(edges_latent, edges.receivers, edges.receiver_counts)
        receivers_latent = receivers_latent + self.receiver_mlp(receivers_latent, aggregated,
                                                                condition=condition)
        if self.sender_mlp is not None:
            senders_latent = senders_latent + self.sender_mlp(senders_latent, condition=condition)
        return senders_latent, receivers_latent, edges_latent
