"""GridMeshGNN: GraphCast's encoder → multimesh processor → decoder, as a vector field.

    net(x_t: (B, N_grid, C_in), t: (B,) | None, cond: (B, N_grid, C_cond) | None) -> (B, N_grid, C_out)

1. Embed: grid nodes concat(x_t, cond, static grid features) and the static mesh-node and edge
   features, each by its own MLP (Linear → SiLU → Linear → LayerNorm). With a ``stencil``
   (``vecfield.nn.stencil.GridStencil``) a grid node embeds x_t and cond of its whole lat-lon
   neighbourhood, not only its own.
2. Encoder: one interaction-network step on the grid → mesh edges, updating the g2m edges, the
   mesh nodes (sum over incoming edges) and, by their own MLP, the grid nodes.
3. Processor: ``processor_layers`` unshared interaction-network steps on the multimesh, with
   residual node and edge updates.
4. Decoder: one step on the mesh → grid edges; a linear map of the grid latents gives the output.

Flow time / noise level t enters through adaptive LayerNorm in every MLP acting on sample-dependent
latents: LN(y) ⊙ (1 + scale(c)) + shift(c) with c = MLP(sinusoidal(t)) (GenCast's conditional
LayerNorm). A stochastic generator (``noise_features`` > 0, FGN's choice) adds a per-sample noise
vector z (B, noise_features) to the same condition: c = MLP(sinusoidal(t)) + MLP(z), so one global
z modulates every latent of every layer and one forward pass gives one sample. With
``mesh_noise_features`` = k > 0 every mesh node also gets its own noise ζ (k values, AIFS-CRPS's
choice of noise on the processor's nodes), added to its embedding: m_n = embed(mesh_n) + W ζ_n, so
a member can differ locally, not only through one global modulation. The network's noise input is
then the flat vector (z, ζ) of ``noise_size`` = noise_features + N_mesh · k values per sample.
The embeddings of static features do not depend on the sample or on t: they are computed once per
forward with batch size 1 and broadcast, whatever the batch size.

The graph is given at construction (``vecfield.graphs.build_graph`` / ``load_or_build_graph``) and
stored as non-persistent buffers; it is never built lazily. Edges are reordered by receiver.
"""

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.data import HeteroData

from vecfield.nn.embeddings import SinusoidalEmbedding
from vecfield.nn.message_passing import EdgeIndex, InteractionNetwork, SplitMLP
from vecfield.nn.stencil import GridStencil

_EDGE_SETS = {"g2m": ("grid", "to", "mesh"), "m2m": ("mesh", "to", "mesh"), "m2g": ("mesh", "to", "grid")}


def _shape(x: Tensor | None) -> tuple[int, ...] | None:
    return None if x is None else tuple(x.shape)


class GridMeshGNN(nn.Module):
    """GraphCast-style encode-process-decode GNN on a grid ↔ multimesh graph.

    graph:            HeteroData from ``vecfield.graphs.build_graph`` (node features ``x``, edge
                      ``edge_index`` and ``edge_attr`` for the three edge types)
    in_channels:      channels of x_t per grid node
    out_channels:     output channels per grid node
    cond_channels:    channels of the grid condition (previous states, forcings, static fields); 0: none
    latent:           width of every latent and MLP hidden layer (GraphCast: 512)
    processor_layers: unshared message-passing steps on the multimesh (GraphCast: 16)
    time_features:    width of the sinusoidal t embedding feeding the adaptive LayerNorms; 0 makes
                      the network time-independent (plain LayerNorm, t must be None)
    checkpoint_layers: recompute each processor layer in the backward pass (less memory)
    noise_features:   width of the noise vector z entering the adaptive LayerNorms (0: none); needs
                      time_features > 0 (the condition's width)
    mesh_noise_features: noise values ζ per mesh node, added to the mesh embedding by a linear map
                      (0: none); without any noise ``noise`` must be None
    stencil:          a ``GridStencil`` of the graph's grid: each grid node embeds x_t and cond of its
                      (2r + 1)² neighbourhood (None: its own only, as GraphCast)
    """

    grid_features: Tensor  # (N_grid, F_grid) buffer
    mesh_features: Tensor  # (N_mesh, F_mesh) buffer

    def __init__(
        self,
        graph: HeteroData,
        in_channels: int,
        out_channels: int,
        cond_channels: int = 0,
        latent: int = 512,
        processor_layers: int = 16,
        time_features: int = 64,
        checkpoint_layers: bool = False,
        noise_features: int = 0,
        stencil: GridStencil | None = None,
        mesh_noise_features: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(graph, HeteroData):
            raise TypeError(f"graph must be the HeteroData of vecfield.graphs.build_graph, got "
                            f"{type(graph).__name__}")
        missing = [str(t) for t in _EDGE_SETS.values() if t not in graph.edge_types]
        if missing:
            raise ValueError(f"graph lacks edge types {missing}; build it with vecfield.graphs.build_graph")
        for name, value in {"in_channels": in_channels, "out_channels": out_channels, "latent": latent,
                            "processor_layers": processor_layers}.items():
            if value < 1:
                raise ValueError(f"{name} must be ≥ 1, got {value}")
        if min(cond_channels, time_features, noise_features, mesh_noise_features) < 0:
            raise ValueError("cond_channels, time_features, noise_features and mesh_noise_features "
                             "must be ≥ 0")
        if noise_features and not time_features:
            raise ValueError("noise_features enter the adaptive LayerNorms, whose width is time_features: "
                             "set time_features ≥ 2")
        self.in_channels, self.out_channels, self.cond_channels = in_channels, out_channels, cond_channels
        self.checkpoint_layers = checkpoint_layers
        self.num_grid, self.num_mesh = graph["grid"].num_nodes, graph["mesh"].num_nodes
        if stencil is not None and stencil.shape[0] * stencil.shape[1] != self.num_grid:
            raise ValueError(f"the stencil's grid {stencil.shape} does not have the graph's {self.num_grid} "
                             "grid nodes")
        self.stencil = stencil

        self.register_buffer("grid_features", graph["grid"].x.float(), persistent=False)
        self.register_buffer("mesh_features", graph["mesh"].x.float(), persistent=False)
        self._edge_index_names: dict[str, list[str]] = {}
        for name, edge_type in _EDGE_SETS.items():
            senders, receivers = graph[edge_type].edge_index
            num_senders = graph[edge_type[0]].num_nodes
            order = EdgeIndex.receiver_order(senders, receivers, num_senders)
            index = EdgeIndex(senders[order].contiguous(), receivers[order].contiguous())
            self._edge_index_names[name] = [f"{name}_{field}" for field in EdgeIndex._fields]
            for buffer, tensor in zip(self._edge_index_names[name], index, strict=True):
                self.register_buffer(buffer, tensor, persistent=False)
            features = graph[edge_type].edge_attr[order].float()
            self.register_buffer(f"{name}_features", features, persistent=False)

        condition = time_features  # width of c = MLP(sinusoidal(t)), as GenCast's small noise encoder
        self.time_embedding = nn.Sequential(
            SinusoidalEmbedding(time_features), nn.Linear(time_features, time_features), nn.SiLU(),
            nn.Linear(time_features, time_features),
        ) if time_features else None
        self.noise_features = noise_features
        self.noise_embedding = nn.Sequential(
            nn.Linear(noise_features, time_features), nn.SiLU(), nn.Linear(time_features, time_features),
        ) if noise_features else None
        self.mesh_noise_features = mesh_noise_features
        self.mesh_noise_embedding = nn.Linear(mesh_noise_features, latent) if mesh_noise_features else None
        neighbourhood = stencil.size if stencil is not None else 1
        grid_width = (in_channels + cond_channels) * neighbourhood + self.grid_features.shape[1]
        self.grid_embedding = SplitMLP([grid_width], latent, condition)
        self.mesh_embedding = SplitMLP([self.mesh_features.shape[1]], latent)
        self.edge_embeddings = nn.ModuleDict({
            name: SplitMLP([getattr(self, f"{name}_features").shape[1]], latent) for name in _EDGE_SETS
        })
        self.encoder = InteractionNetwork(latent, condition, update_senders=True)
        self.processor = nn.ModuleList(InteractionNetwork(latent, condition) for _ in range(processor_layers))
        self.decoder = InteractionNetwork(latent, condition)
        self.output = nn.Linear(latent, out_channels)

    @property
    def noise_size(self) -> int:
        """Values of one sample's noise input: noise_features (z) + N_mesh · mesh_noise_features (ζ)."""
        return self.noise_features + self.num_mesh * self.mesh_noise_features

    def _edges(self, name: str) -> EdgeIndex:
        return EdgeIndex(*(getattr(self, buffer) for buffer in self._edge_index_names[name]))

    def _check_inputs(self, x_t: Tensor, t: Tensor | None, cond: Tensor | None, noise: Tensor | None) -> None:
        if x_t.ndim != 3 or x_t.shape[1:] != (self.num_grid, self.in_channels):
            raise ValueError(f"expected x_t of shape (batch, {self.num_grid}, {self.in_channels}), "
                             f"got {tuple(x_t.shape)}")
        batch = x_t.shape[0]
        if self.time_embedding is not None:
            if t is None or t.shape != (batch,):
                raise ValueError(f"expected t of shape ({batch},), got {_shape(t)}")
        elif t is not None:
            raise ValueError("this GridMeshGNN was built with time_features=0: pass t=None")
        if self.cond_channels:
            expected = (batch, self.num_grid, self.cond_channels)
            if cond is None or cond.shape != expected:
                raise ValueError(f"expected cond of shape {expected}, got {_shape(cond)}")
        elif cond is not None:
            raise ValueError("this GridMeshGNN takes no condition; build it with cond_channels > 0")
        if self.noise_size:
            if noise is None or noise.shape != (batch, self.noise_size):
                raise ValueError(f"expected noise of shape ({batch}, {self.noise_size}), got {_shape(noise)}")
        elif noise is not None:
            raise ValueError("this GridMeshGNN takes no noise; build it with noise_features or "
                             "mesh_noise_features > 0")

    def forward(self, x_t: Tensor, t: Tensor | None = None, cond: Tensor | None = None,
                noise: Tensor | None = None) -> Tensor:
        """Encode onto the multimesh, process, decode back to the grid.

        Args:
            x_t: (B, N_grid, in_channels), the state (or noised state) per grid node, in the
                graph's grid-node order (latitude-major, as ``vecfield.graphs.build_graph``).
            t: (B,) flow time or noise level, required when ``time_features > 0``, else None.
            cond: (B, N_grid, cond_channels) grid condition, required when ``cond_channels > 0``.
            noise: (B, noise_size), a member's noise (z, then ζ node-major), required when
                ``noise_size > 0``.

        Returns:
            (B, N_grid, out_channels): the network output per grid node.
        """
        self._check_inputs(x_t, t, cond, noise)
        batch = x_t.shape[0]
        c = self.time_embedding(t) if self.time_embedding is not None else None
        if self.noise_embedding is not None:
            # __init__ requires time_features with noise_features, _check_inputs a (B, K) noise
            assert c is not None and noise is not None
            c = c + self.noise_embedding(noise[:, :self.noise_features].to(c.dtype))  # (B, time_features)
        sample = x_t if cond is None else torch.cat([x_t, cond.to(x_t.dtype)], dim=-1)
        if self.stencil is None:
            static = self.grid_features.to(x_t.dtype).expand(batch, -1, -1)
            grid = self.grid_embedding(torch.cat([sample, static], dim=-1), condition=c)  # (B, N_grid, L)
        else:  # the first linear on concat(stencil(sample), static), its stencil part as a convolution
            first = self.grid_embedding.part_linear(0)
            width = sample.shape[-1] * self.stencil.size
            pre = self.stencil.linear(sample, first.weight[:, :width], first.bias)
            pre = pre + nn.functional.linear(self.grid_features.to(x_t.dtype), first.weight[:, width:])
            grid = self.grid_embedding.finish(pre, c)  # (B, N_grid, L)
        mesh = self.mesh_embedding(self.mesh_features[None])  # (1, N_mesh, L): static, shared
        if self.mesh_noise_embedding is not None:
            assert noise is not None  # _check_inputs
            local = noise[:, self.noise_features:].reshape(batch, self.num_mesh, self.mesh_noise_features)
            mesh = mesh + self.mesh_noise_embedding(local.to(mesh.dtype))  # (B, N_mesh, L)
        edges = {name: embed(getattr(self, f"{name}_features")[None])  # (1, E, L) each
                 for name, embed in self.edge_embeddings.items()}

        grid, mesh, _ = self.encoder(grid, mesh, edges["g2m"], self._edges("g2m"), c)
        mesh_edges = edges["m2m"]
        m2m = self._edges("m2m")
        for layer in self.processor:
            if self.checkpoint_layers and torch.is_grad_enabled():
                _, mesh, mesh_edges = checkpoint(layer, mesh, mesh, mesh_edges, m2m, c, use_reentrant=False)
            else:
                _, mesh, mesh_edges = layer(mesh, mesh, mesh_edges, m2m, c)
        _, grid, _ = self.decoder(mesh, grid, edges["m2g"], self._edges("m2g"), c)
        return self.output(grid)
