"""A UNet that implements the vector-field call on images (in the spirit of diffusers' UNet2DModel).

    net = UNet(in_channels=1, channels=32, channel_mults=(1, 2), attention_levels=(1,), num_classes=10)
    out = net(x_t, t, labels)        # x_t (B, 1, H, W), t (B,), labels (B,) in [0, 10] -> (B, 1, H, W)

Layout (level ℓ works at resolution H/2^ℓ with ``channels·channel_mults[ℓ]`` channels):

    conv_in → [ResBlock (+ self-attention when ℓ ∈ attention_levels)] × blocks_per_level, downsample
            → middle: ResBlock, self-attention (when mid_attention), ResBlock
            → [ResBlock on concat(h, skip) (+ attention)] × (blocks_per_level + 1), upsample
            → GroupNorm+SiLU, conv_out (zero-initialized: the field is 0 at initialization)

Every ResBlock adds a projection of the embedding e = MLP(sinusoidal(t)) + E[class] as a
per-channel bias (DDPM's residual block). The class embedding has K + 1 rows: row K is the null
class that classifier-free guidance trains with and samples against (seed eq. 15.12).

Sizes that are not multiples of 2^(levels − 1) are zero-padded at the bottom and right before the
network and cropped back after it, so 28×28 MNIST works with any number of levels.
"""

import math
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vecfield.nn.embeddings import SinusoidalEmbedding
from vecfield.nn.group_norm_silu import GroupNormSiLU


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count ≤ ``groups`` that divides ``channels``."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def _norm_silu(channels: int, groups: int, double_backward: bool) -> GroupNormSiLU:
    """SiLU(GroupNorm) with the largest group count ≤ ``groups`` that divides ``channels``."""
    return GroupNormSiLU(math.gcd(groups, channels), channels, double_backward=double_backward)


class ResBlock(nn.Module):
    """h (B, C_in, H, W), e (B, E) -> (B, C_out, H, W):
    skip(h) + conv(dropout(SiLU(GN(conv(SiLU(GN(h))) + W·SiLU(e))))).
    """

    def __init__(self, in_channels: int, out_channels: int, embed_features: int, groups: int,
                 dropout: float, double_backward: bool = False) -> None:
        super().__init__()
        self.norm1 = _norm_silu(in_channels, groups, double_backward)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_features, out_channels)
        self.norm2 = _norm_silu(out_channels, groups, double_backward)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        y = self.conv1(self.norm1(h))
        y = y + self.embed(F.silu(e))[:, :, None, None]
        y = self.conv2(self.dropout(self.norm2(y)))
        return self.skip(h) + y


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H·W positions, residual: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, h: Tensor) -> Tensor:
        b, c, height, width = h.shape
        tokens = self.norm(h).reshape(b, c, height * width).transpose(1, 2)  # (B, HW, C)
        out, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return h + out.transpose(1, 2).reshape(b, c, height, width)


class _Stage(nn.Module):
    """One ResBlock followed by optional self-attention."""

    def __init__(self, block: ResBlock, attention: SelfAttention | None) -> None:
        super().__init__()
        self.block = block
        self.attention = attention

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        h = self.block(h, e)
        return self.attention(h) if self.attention is not None else h


class UNet(nn.Module):
    """Vector field on images: ``(x_t: (B, C, H, W), t: (B,), cond) -> (B, C_out, H, W)``.

    in_channels, out_channels: image channels in and out (out defaults to in).
    channels: width of level 0; level ℓ has ``channels·channel_mults[ℓ]``; ``len(channel_mults)``
        levels, with ``len(channel_mults) − 1`` downsamplings (stride-2 conv) and upsamplings
        (nearest neighbour + conv).
    blocks_per_level: ResBlocks per level on the way down (one more on the way up, for the skips).
    attention_levels: levels (0 = full resolution) whose ResBlocks are followed by self-attention;
        mid_attention: self-attention in the middle block (lowest resolution).
    heads: attention heads (must divide the channel count of every attended level).
    time_features: sinusoidal features of t (scale 1000, see ``SinusoidalEmbedding``); the
        embedding width is ``4·channels``.
    num_classes: K > 0 makes ``cond`` a LongTensor (B,) of labels in [0, K], K being the null class;
        K = 0 takes ``cond=None``.
    dropout: inside every ResBlock. groups: GroupNorm groups (reduced to a divisor of each width).
    zero_init_output: start the output convolution at 0, so the initial field is exactly 0.
    double_backward: GroupNorm+SiLU layers with a closed-form second derivative (``GroupNormSiLU``),
        for a network trained through its own input gradient (an energy model's −∇ₓE); the same
        values and gradients, faster there, a few per cent slower in a single backward pass.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        channels: int = 32,
        channel_mults: tuple[int, ...] = (1, 2),
        blocks_per_level: int = 1,
        attention_levels: tuple[int, ...] = (1,),
        mid_attention: bool = True,
        heads: int = 4,
        time_features: int = 64,
        num_classes: int = 0,
        dropout: float = 0.0,
        groups: int = 8,
        zero_init_output: bool = True,
        double_backward: bool = False,
    ) -> None:
        super().__init__()
        channel_mults = tuple(channel_mults)
        attention_levels = tuple(attention_levels)
        if in_channels < 1 or channels < 1:
            raise ValueError(f"in_channels and channels must be ≥ 1, got {in_channels} and {channels}")
        if not channel_mults or any(m < 1 for m in channel_mults):
            raise ValueError(f"channel_mults must be a non-empty list of positive integers, "
                             f"got {channel_mults}")
        if blocks_per_level < 1:
            raise ValueError(f"blocks_per_level must be ≥ 1, got {blocks_per_level}")
        levels = len(channel_mults)
        bad = [level for level in attention_levels if not 0 <= level < levels]
        if bad:
            raise ValueError(f"attention_levels {bad} do not exist; "
                             f"choose among levels {list(range(levels))}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be ≥ 0 (0: unconditional), got {num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if groups < 1:
            raise ValueError(f"groups must be ≥ 1, got {groups}")
        widths = [channels * m for m in channel_mults]
        attended = [widths[level] for level in attention_levels] + ([widths[-1]] if mid_attention else [])
        if any(width % heads for width in attended):
            raise ValueError(f"heads={heads} must divide the width of every attended level "
                             f"{sorted(set(attended))}; change heads or channels")
        self.in_channels = in_channels
        self.out_channels = out_channels if out_channels is not None else in_channels
        self.num_classes = num_classes
        self.levels = levels
        embed = 4 * channels
        self.time_embedding = nn.Sequential(
            SinusoidalEmbedding(time_features), nn.Linear(time_features, embed), nn.SiLU(),
            nn.Linear(embed, embed),
        )
        self.class_embedding = nn.Embedding(num_classes + 1, embed) if num_classes else None

        def stage(c_in: int, c_out: int, attend: bool) -> _Stage:
            return _Stage(ResBlock(c_in, c_out, embed, groups, dropout, double_backward),
                          SelfAttention(c_out, heads, groups) if attend else None)

        self.conv_in = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        skips = [widths[0]]
        width = widths[0]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for level, level_width in enumerate(widths):
            stages = nn.ModuleList()
            for _ in range(blocks_per_level):
                stages.append(stage(width, level_width, level in attention_levels))
                width = level_width
                skips.append(width)
            self.down.append(stages)
            if level < levels - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                skips.append(width)
        self.mid1 = ResBlock(width, width, embed, groups, dropout, double_backward)
        self.mid_attention = SelfAttention(width, heads, groups) if mid_attention else None
        self.mid2 = ResBlock(width, width, embed, groups, dropout, double_backward)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(levels)):
            stages = nn.ModuleList()
            for _ in range(blocks_per_level + 1):
                stages.append(stage(width + skips.pop(), widths[level], level in attention_levels))
                width = widths[level]
            self.up.append(stages)
            if level > 0:
                self.upsample.append(nn.Conv2d(width, width, 3, padding=1))
        assert not skips, "every skip connection is consumed"
        self.norm_out = _norm_silu(width, groups, double_backward)
        self.conv_out = nn.Conv2d(width, self.out_channels, 3, padding=1)
        if zero_init_output:
            nn.init.zeros_(self.conv_out.weight)
            assert self.conv_out.bias is not None, "conv_out is built with a bias"
            nn.init.zeros_(self.conv_out.bias)

    def _embedding(self, t: Tensor, cond: Tensor | None, batch: int, dtype: torch.dtype) -> Tensor:
        if not torch.is_tensor(t) or t.shape != (batch,):
            got = tuple(t.shape) if torch.is_tensor(t) else t
            raise ValueError(f"expected t of shape ({batch},), got {got}")
        e = self.time_embedding(t.to(dtype))
        if self.class_embedding is None:
            if cond is not None:
                raise ValueError("this UNet takes no condition; build it with num_classes=K for class labels")
            return e
        if cond is None:
            raise ValueError(f"this UNet is class-conditional: pass labels in [0, {self.num_classes}] "
                             f"as cond ({self.num_classes} is the null class)")
        if cond.shape != (batch,) or cond.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"expected integer labels of shape ({batch},), "
                             f"got {cond.dtype} {tuple(cond.shape)}")
        if int(cond.min()) < 0 or int(cond.max()) > self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}] "
                             f"({self.num_classes} is the null class)")
        return e + self.class_embedding(cond)

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        if x_t.ndim != 4 or x_t.shape[1] != self.in_channels:
            raise ValueError(f"expected x_t of shape (batch, {self.in_channels}, H, W), "
                             f"got {tuple(x_t.shape)}")
        batch, _, height, width = x_t.shape
        e = self._embedding(t, cond, batch, x_t.dtype)
        multiple = 2 ** (self.levels - 1)
        pad_h, pad_w = -height % multiple, -width % multiple
        h = F.pad(x_t, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x_t  # (B, C, H', W'), H' = k·2^(L−1)
        h = self.conv_in(h)
        skips = [h]
        for level, stages in enumerate(self.down):
            for s in cast(nn.ModuleList, stages):  # __init__ appends one ModuleList per level
                h = s(h, e)
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid1(h, e)
        if self.mid_attention is not None:
            h = self.mid_attention(h)
        h = self.mid2(h, e)
        for i, stages in enumerate(self.up):
            for s in cast(nn.ModuleList, stages):  # __init__ appends one ModuleList per level
                h = s(torch.cat([h, skips.pop()], dim=1), e)
            if i < self.levels - 1:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.conv_out(self.norm_out(h))
        return out[:, :, :height, :width]

    def null_condition(self, cond: Tensor) -> Tensor:
        """Labels replaced by the null class (classifier-free guidance, seed eq. 15.12)."""
        if self.class_embedding is None:
            raise TypeError("null_condition needs a class-conditional UNet (num_classes > 0)")
        return torch.full_like(cond, self.num_classes)
