"""A small convolutional network that implements the vector-field call on images."""

from typing import Literal

from torch import Tensor, nn

from vecfield.nn.embeddings import SinusoidalEmbedding


class ConvNet(nn.Module):
    """Vector field on images: ``(x_t: (B, C, H, W), t: (B,) | None, cond=None) -> (B, C_out, H, W)``.

    ``depth`` hidden 3×3 convolutions of ``hidden_channels`` with SiLU (same padding, so any
    H, W work), then a 3×3 output convolution. With ``time_features > 0`` the sinusoidal time
    embedding is projected to a per-channel bias added after the first convolution;
    ``time_features = 0`` makes it a plain conditioner called as ``net(x, None, None)``, e.g. for
    the coupling layers of a normalizing flow. ``zero_init_output`` starts the output at 0
    (a coupling layer then starts as the identity).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        hidden_channels: int = 64,
        depth: int = 2,
        time_features: int = 0,
        activation: Literal["silu", "relu", "gelu"] = "silu",
        zero_init_output: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        activations = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}
        if activation not in activations:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(activations)}")
        self.in_channels = in_channels
        self.out_channels = out_channels if out_channels is not None else in_channels
        self.first = nn.Conv2d(in_channels, hidden_channels, 3, padding=1)
        self.time_embedding = (
            nn.Sequential(SinusoidalEmbedding(time_features), nn.Linear(time_features, hidden_channels))
            if time_features else None
        )
        self.act = activations[activation]()
        hidden: list[nn.Module] = []
        for _ in range(depth - 1):
            hidden += [nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1), activations[activation]()]
        self.body = nn.Sequential(*hidden)
        self.head = nn.Conv2d(hidden_channels, self.out_channels, 3, padding=1)
        if zero_init_output:
            nn.init.zeros_(self.head.weight)
            assert self.head.bias is not None, "head is built with a bias"
            nn.init.zeros_(self.head.bias)

    def forward(self, x_t: Tensor, t: Tensor | None = None, cond: None = None) -> Tensor:
        if x_t.ndim != 4 or x_t.shape[1] != self.in_channels:
            raise ValueError(f"expected x_t of shape (batch, {self.in_channels}, H, W), "
                             f"got {tuple(x_t.shape)}")
        if cond is not None:
            raise ValueError("ConvNet takes no condition; pass cond=None")
        h = self.first(x_t)
        if self.time_embedding is not None:
            if t is None or t.shape != (x_t.shape[0],):
                got = None if t is None else tuple(t.shape)
                raise ValueError(f"expected t of shape ({x_t.shape[0]},), got {got}")
            h = h + self.time_embedding(t).to(h.dtype)[:, :, None, None]
        elif t is not None:
            raise ValueError("this ConvNet was built with time_features=0 and takes no time input")
        return self.head(self.body(self.act(h)))
