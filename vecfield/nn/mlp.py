"""A multilayer perceptron that implements the vector-field call on flat vectors."""

from typing import Literal

import torch
from torch import Tensor, nn

from vecfield.nn.embeddings import FourierFeatures, SinusoidalEmbedding

Activation = Literal["silu", "relu", "gelu", "tanh"]  # the hidden-layer nonlinearities MLP offers


class MLP(nn.Module):
    """Vector field on vectors: ``(x_t: (B, D), t: (B,) | None, cond) -> (B, out_features)``.

    The input is ``concat(γ(x_t), emb(t), emb(cond))`` followed by ``depth`` hidden layers of
    ``hidden_features`` units with SiLU and a linear output. γ is the identity, or with
    ``fourier_features = K > 0`` the random Fourier features [x, sin(2πxB), cos(2πxB)] with
    B ~ N(0, fourier_scale²)^{D×K} (:class:`FourierFeatures`), which sharpen low-dimensional fields.

    Conditions (choose at most one kind):
      - ``num_classes = K``: ``cond`` is a LongTensor (B,) of labels in [0, K]; K is the null
        class that classifier-free guidance trains with and samples against;
      - ``cond_features = C``: ``cond`` is a float tensor (B, C), concatenated to the input.

    ``time_features = 0`` drops the time input (``t`` must then be None), which turns the MLP
    into a plain conditioner, e.g. for the coupling layers of a normalizing flow.
    """

    def __init__(
        self,
        features: int,
        out_features: int | None = None,
        hidden_features: int = 256,
        depth: int = 3,
        time_features: int = 64,
        num_classes: int = 0,
        cond_features: int = 0,
        activation: Activation = "silu",
        zero_init_output: bool = False,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if num_classes and cond_features:
            raise ValueError("give either num_classes (labels) or cond_features (vectors), not both")
        if depth < 1:
            raise ValueError(f"depth must be ≥ 1, got {depth}")
        activations = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
        if activation not in activations:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(activations)}")
        self.features = features
        self.out_features = out_features if out_features is not None else features
        self.num_classes = num_classes
        self.cond_features = cond_features
        if fourier_features < 0:
            raise ValueError(f"fourier_features must be ≥ 0, got {fourier_features}")
        self.fourier = None
        if fourier_features:
            self.fourier = FourierFeatures(features, fourier_features, fourier_scale)
        self.time_embedding = SinusoidalEmbedding(time_features) if time_features else None
        self.class_embedding = nn.Embedding(num_classes + 1, hidden_features) if num_classes else None
        x_width = self.fourier.out_features if self.fourier is not None else features
        width_in = x_width + time_features + cond_features + (hidden_features if num_classes else 0)
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [
                nn.Linear(width_in if i == 0 else hidden_features, hidden_features),
                activations[activation](),
            ]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden_features, self.out_features)
        if zero_init_output:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x_t: Tensor, t: Tensor | None = None, cond: Tensor | None = None) -> Tensor:
        if x_t.ndim != 2 or x_t.shape[1] != self.features:
            raise ValueError(f"expected x_t of shape (batch, {self.features}), got {tuple(x_t.shape)}")
        batch = x_t.shape[0]
        parts = [self.fourier(x_t) if self.fourier is not None else x_t]
        if self.time_embedding is not None:
            if t is None or t.shape != (batch,):
                got = None if t is None else tuple(t.shape)
                raise ValueError(f"expected t of shape ({batch},), got {got}")
            parts.append(self.time_embedding(t).to(x_t.dtype))
        elif t is not None:
            raise ValueError("this MLP was built with time_features=0 and takes no time input")
        if self.class_embedding is not None:
            if cond is None:
                raise ValueError(
                    f"this MLP is class-conditional: pass labels in [0, {self.num_classes}] as cond "
                    f"({self.num_classes} is the null class)"
                )
            if cond.shape != (batch,) or cond.dtype not in (torch.int32, torch.int64):
                raise ValueError(
                    f"expected integer labels of shape ({batch},), got {cond.dtype} {tuple(cond.shape)}"
                )
            if int(cond.min()) < 0 or int(cond.max()) > self.num_classes:
                raise ValueError(
                    f"labels must lie in [0, {self.num_classes}] ({self.num_classes} is the null class)"
                )
            parts.append(self.class_embedding(cond).to(x_t.dtype))
        elif self.cond_features:
            if cond is None or cond.shape != (batch, self.cond_features):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"expected cond of shape ({batch}, {self.cond_features}), got {got}")
            parts.append(cond.to(x_t.dtype))
        elif cond is not None:
            raise ValueError("this MLP takes no condition; build it with num_classes or cond_features")
        return self.head(self.body(torch.cat(parts, dim=-1)))

    def null_condition(self, cond: Tensor) -> Tensor:
        """Labels replaced by the null class (classifier-free guidance, seed eq. 15.12)."""
        if self.class_embedding is None:
            raise TypeError("null_condition needs a class-conditional MLP (num_classes > 0)")
        return torch.full_like(cond, self.num_classes)
