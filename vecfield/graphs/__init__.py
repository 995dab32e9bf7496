"""Pure geometry for GraphCast-style graphs: icosahedral multimesh, grid ↔ mesh edges, features."""

from vecfield.graphs.build import (
    EDGE_TYPES,
    GraphSpec,
    build_graph,
    default_cache_dir,
    graph_cache_path,
    load_graph,
    load_or_build_graph,
    save_graph,
)
from vecfield.graphs.connectivity import (
    containing_triangle_edges,
    containing_triangles,
    longest_edge,
    radius_edges,
)
from vecfield.graphs.grid import LatLonGrid
from vecfield.graphs.icosahedron import (
    TriangularMesh,
    face_edges,
    icosahedron,
    mesh_hierarchy,
    multimesh_edges,
    refine,
)
from vecfield.graphs.spherical import (
    edge_displacements,
    edge_features,
    lat_lon_to_xyz,
    local_frames,
    node_features,
    xyz_to_lat_lon,
)

__all__ = [
    "EDGE_TYPES",
    "GraphSpec",
    "LatLonGrid",
    "TriangularMesh",
    "build_graph",
    "containing_triangle_edges",
    "containing_triangles",
    "default_cache_dir",
    "edge_displacements",
    "edge_features",
    "face_edges",
    "graph_cache_path",
    "icosahedron",
    "lat_lon_to_xyz",
    "load_graph",
    "load_or_build_graph",
    "local_frames",
    "longest_edge",
    "mesh_hierarchy",
    "multimesh_edges",
    "node_features",
    "radius_edges",
    "refine",
    "save_graph",
    "xyz_to_lat_lon",
]
