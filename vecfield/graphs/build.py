"""GraphCast's grid ↔ multimesh graph from a frozen spec, built once and cached on disk.

``build_graph(spec)`` returns a torch-geometric ``HeteroData`` with
    data["grid"].x          (N_grid, 3) float32   structural features [cos θ, cos λ, sin λ]
    data["grid"].lat_lon    (N_grid, 2) float64   degrees, latitude-major order of ``spec.grid``
    data["mesh"].x          (N_mesh, 3) float32
    data["mesh"].pos        (N_mesh, 3) float64   unit vectors
    data[s, "to", r].edge_index (2, E) int64 [senders; receivers], sorted by receiver
    data[s, "to", r].edge_attr  (E, 4) float32 [|d|, d_r, d_e, d_n] / longest edge of the set
for (s, r) in ("grid", "mesh"), ("mesh", "mesh"), ("mesh", "grid"), and ``data.spec`` (JSON text).

``load_or_build_graph(spec, cache_dir)`` keys the file by a hash of the spec and writes it atomically.
"""

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import HeteroData

from vecfield.files import atomic_write
from vecfield.graphs.connectivity import containing_triangle_edges, longest_edge, radius_edges
from vecfield.graphs.grid import LatLonGrid
from vecfield.graphs.icosahedron import TriangularMesh, mesh_hierarchy, multimesh_edges
from vecfield.graphs.spherical import edge_features, lat_lon_to_xyz, node_features, xyz_to_lat_lon

#: bump when the construction or the file layout changes; it is part of the cache key
GRAPH_FORMAT_VERSION = 1
EDGE_TYPES = (("grid", "to", "mesh"), ("mesh", "to", "mesh"), ("mesh", "to", "grid"))


@dataclass(frozen=True)
class GraphSpec:
    """Everything that determines a grid ↔ mesh graph.

    grid:             the lat-lon grid (global or regional)
    mesh_min_level:   coarsest refinement whose edges join the multimesh (paper 0, checkpoints 2)
    mesh_max_level:   finest refinement; its vertices are the mesh nodes (paper 6)
    radius_fraction:  grid → mesh radius as a fraction of the finest mesh's longest edge (0.6)
    region_margin:    regional grids only: mesh nodes are kept within region_margin ×
                      max(longest finest edge, grid step) of a grid node (≥ 1 keeps every
                      triangle that contains a grid node)
    """

    grid: LatLonGrid = field(default_factory=lambda: LatLonGrid.global_grid(1.0))
    mesh_min_level: int = 0
    mesh_max_level: int = 6
    radius_fraction: float = 0.6
    region_margin: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.grid, LatLonGrid):
            raise TypeError(f"grid must be a LatLonGrid, got {type(self.grid).__name__}")
        if not 0 <= self.mesh_min_level <= self.mesh_max_level:
            raise ValueError(f"need 0 ≤ mesh_min_level ≤ mesh_max_level, got "
                             f"{self.mesh_min_level}, {self.mesh_max_level}")
        if self.mesh_max_level > 8:
            raise ValueError(f"mesh_max_level {self.mesh_max_level} is beyond 8 (2.6 M nodes); choose ≤ 8")
        if not 0 < self.radius_fraction <= 2:
            raise ValueError(f"radius_fraction must lie in (0, 2], got {self.radius_fraction} "
                             "(GraphCast uses 0.6)")
        if self.region_margin < 1:
            raise ValueError(f"region_margin must be ≥ 1 so that every grid node keeps its containing "
                             f"triangle, got {self.region_margin}")

    def to_json(self) -> str:
        """Canonical JSON text of the spec (sorted keys) including the graph format version."""
        return json.dumps({"format": GRAPH_FORMAT_VERSION, **dataclasses.asdict(self)}, sort_keys=True)

    def key(self) -> str:
        """SHA-256 hex digest of ``to_json()``: the cache key."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _restrict_mesh(
    mesh: TriangularMesh, edges: np.ndarray, grid_xyz: np.ndarray, threshold: float
) -> tuple[TriangularMesh, np.ndarray, np.ndarray]:
    """Keep the mesh nodes within chord ``threshold`` of a grid node, the faces and edges among them.

    Returns the renumbered mesh, edges and the kept original indices (N_kept,).
    """
    distance, _ = cKDTree(grid_xyz).query(mesh.vertices, k=1, distance_upper_bound=threshold, workers=-1)
    kept = np.nonzero(np.isfinite(distance))[0]
    new_index = np.full(mesh.vertices.shape[0], -1, dtype=np.int64)
    new_index[kept] = np.arange(kept.size)
    faces = new_index[mesh.faces]
    faces = faces[(faces >= 0).all(axis=1)]
    edges = new_index[edges]
    edges = edges[:, (edges >= 0).all(axis=0)]
    return TriangularMesh(mesh.vertices[kept], faces), edges, kept


def build_graph(spec: GraphSpec) -> HeteroData:
    """Build the grid ↔ multimesh graph of ``spec`` (see the module docstring for the layout)."""
    meshes = mesh_hierarchy(spec.mesh_max_level)
    finest = meshes[-1]
    mesh_edges = multimesh_edges(meshes, spec.mesh_min_level)
    edge_length = longest_edge(finest)
    grid_lat, grid_lon = spec.grid.node_lat_lon()
    grid_xyz = lat_lon_to_xyz(grid_lat, grid_lon)
    if not spec.grid.is_global:
        threshold = spec.region_margin * max(edge_length, np.deg2rad(spec.grid.resolution))
        finest, mesh_edges, _ = _restrict_mesh(finest, mesh_edges, grid_xyz, threshold)
    mesh_xyz = finest.vertices
    mesh_lat, mesh_lon = xyz_to_lat_lon(mesh_xyz)
    g2m = radius_edges(grid_xyz, mesh_xyz, spec.radius_fraction * edge_length)
    m2g = containing_triangle_edges(grid_xyz, finest)

    data = HeteroData()
    data["grid"].x = torch.from_numpy(node_features(grid_lat, grid_lon))
    data["grid"].lat_lon = torch.from_numpy(np.stack([grid_lat, grid_lon], axis=1))
    data["mesh"].x = torch.from_numpy(node_features(mesh_lat, mesh_lon))
    data["mesh"].pos = torch.from_numpy(mesh_xyz)
    edge_sets = {
        ("grid", "to", "mesh"): (g2m, grid_xyz, mesh_lat, mesh_lon),
        ("mesh", "to", "mesh"): (mesh_edges, mesh_xyz, mesh_lat, mesh_lon),
        ("mesh", "to", "grid"): (m2g, mesh_xyz, grid_lat, grid_lon),
    }
    for edge_type, (edges, sender_xyz, receiver_lat, receiver_lon) in edge_sets.items():
        data[edge_type].edge_index = torch.from_numpy(edges)
        features = edge_features(sender_xyz, receiver_lat, receiver_lon, edges)
        data[edge_type].edge_attr = torch.from_numpy(features)
    data.spec = spec.to_json()
    return data


def _graph_to_tensors(data: HeteroData) -> dict[str, object]:
    tensors: dict[str, object] = {"spec": data.spec}
    for node_type in ("grid", "mesh"):
        for name, value in data[node_type].items():
            tensors[f"{node_type}/{name}"] = value
    for edge_type in EDGE_TYPES:
        for name, value in data[edge_type].items():
            tensors[f"{'/'.join(edge_type)}/{name}"] = value
    return tensors


def _graph_from_tensors(tensors: dict[str, object]) -> HeteroData:
    data = HeteroData()
    data.spec = tensors.pop("spec")
    for key, value in tensors.items():
        *owner, name = key.split("/")
        target = data[owner[0]] if len(owner) == 1 else data[tuple(owner)]
        setattr(target, name, value)
    return data


def save_graph(data: HeteroData, path: str | os.PathLike) -> None:
    """Write a graph from ``build_graph`` as a dict of plain tensors, atomically (``vecfield.files``)."""
    atomic_write(path, lambda file: torch.save(_graph_to_tensors(data), file))


def load_graph(path: str | os.PathLike) -> HeteroData:
    """Read a graph written by ``save_graph`` (``torch.load(weights_only=True)``: nothing in the file
    is executed). Any other file is a ValueError saying to delete it."""
    try:
        return _graph_from_tensors(torch.load(path, weights_only=True))
    except Exception as error:  # any failure to read it (torch's unpickler raises many types)
        raise ValueError(
            f"{path} is not a valid vecfield graph file ({type(error).__name__}; nothing in it was run); "
            "delete it, and it is rebuilt when next needed"
        ) from None


def default_cache_dir() -> Path:
    """``$VECFIELD_CACHE/graphs`` if set, else ``~/.cache/vecfield/graphs``."""
    root = os.environ.get("VECFIELD_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "vecfield") / "graphs"


def graph_cache_path(spec: GraphSpec, cache_dir: str | os.PathLike | None = None) -> Path:
    """File of ``spec``'s graph in the cache folder: ``graph-<first 16 hex digits of the key>.pt``."""
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"graph-{spec.key()[:16]}.pt"


def load_or_build_graph(spec: GraphSpec, cache_dir: str | os.PathLike | None = None) -> HeteroData:
    """The graph of ``spec`` from the cache, building and caching it on a miss.

    A cached file whose stored spec differs from ``spec`` (a hash-prefix collision) is rebuilt, and
    so is an invalid one (truncated, foreign or tampered with: nothing in it is run), with a warning.
    """
    path = graph_cache_path(spec, cache_dir)
    if path.exists():
        try:
            data = load_graph(path)
        except ValueError:
            warnings.warn(f"the graph cache file {path} is invalid; rebuilding it", stacklevel=2)
        else:
            if data.spec == spec.to_json():
                return data
    data = build_graph(spec)
    save_graph(data, path)
    return data
