"""The icosahedron, its refinements and the multimesh (GraphCast's mesh rules).

A triangular mesh is a pair (vertices, faces):
    vertices: (V, 3) float64, unit vectors on the sphere
    faces:    (F, 3) int64, vertex indices ordered counter-clockwise seen from outside,
              i.e. (b − a) × (c − a) · (a + b + c) > 0 for every face (a, b, c).

Refinement splits every triangle in 4 through its edge midpoints and projects the midpoints to the
unit sphere. It keeps the vertex numbering of the coarser mesh and appends the new vertices, so the
vertices of level r are the first 10·4^r + 2 vertices of every finer level, and the multimesh
(the finest level's vertices with the union of the edges of several levels) needs no renumbering.
"""

from typing import NamedTuple

import numpy as np
from scipy.spatial import ConvexHull

GOLDEN_RATIO = (1.0 + np.sqrt(5.0)) / 2.0


class TriangularMesh(NamedTuple):
    """Vertices (V, 3) float64 on the unit sphere and outward-oriented faces (F, 3) int64."""

    vertices: np.ndarray
    faces: np.ndarray


def orient_faces_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Reorder each face (F, 3) so that its normal (b − a) × (c − a) points away from the origin."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    outward = np.einsum("fd,fd->f", np.cross(b - a, c - a), a + b + c) > 0
    return np.where(outward[:, None], faces, faces[:, [0, 2, 1]])


def icosahedron() -> TriangularMesh:
    """The regular icosahedron (12 vertices, 20 faces) inscribed in the unit sphere.

    The vertices are the cyclic permutations of (0, ±1, ±φ), rotated about the y axis by
    atan(1/φ²) ≈ 20.9° so that the face centred on (1/φ, 0, φ) sits on the north pole, as in
    GraphCast: the poles are face centres, not vertices, and the mesh is symmetric about the equator.
    """
    signs = np.array([[s1, s2] for s1 in (1.0, -1.0) for s2 in (1.0, -1.0)])
    ones, phis = signs[:, 0], signs[:, 1] * GOLDEN_RATIO
    zeros = np.zeros(4)
    vertices = np.concatenate([
        np.stack([zeros, ones, phis], axis=1),
        np.stack([ones, phis, zeros], axis=1),
        np.stack([phis, zeros, ones], axis=1),
    ])
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    angle = np.arctan2(1.0, GOLDEN_RATIO**2)  # angle between the z axis and the face centre (1/φ, 0, φ)
    cos, sin = np.cos(angle), np.sin(angle)
    # rotation about y by −angle: (x, z) → (x cos − z sin, x sin + z cos) moves (sin, cos) onto (0, 1)
    rotation = np.array([[cos, 0.0, -sin], [0.0, 1.0, 0.0], [sin, 0.0, cos]])
    vertices = vertices @ rotation.T
    faces = ConvexHull(vertices).simplices.astype(np.int64)
    return TriangularMesh(vertices, orient_faces_outward(vertices, faces))


def refine(mesh: TriangularMesh) -> TriangularMesh:
    """Split every face in 4 through its edge midpoints, projected back to the unit sphere.

    Face (a, b, c) with midpoints m_ab, m_bc, m_ca becomes (a, m_ab, m_ca), (m_ab, b, m_bc),
    (m_ca, m_bc, c), (m_ab, m_bc, m_ca); every child keeps the parent's orientation.
    Shapes: (V, 3), (F, 3) → (V + 3F/2, 3), (4F, 3).
    """
    vertices, faces = mesh
    num_faces = faces.shape[0]
    # the three edges of every face, as (3F, 2) with the pair sorted so both faces of an edge agree
    edges = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    unique_edges, edge_of = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True)
    midpoints = vertices[unique_edges[:, 0]] + vertices[unique_edges[:, 1]]
    midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)
    middle = (vertices.shape[0] + edge_of.reshape(num_faces, 3)).astype(np.int64)  # m_ab, m_bc, m_ca
    a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
    m_ab, m_bc, m_ca = middle[:, 0], middle[:, 1], middle[:, 2]
    children = np.concatenate([
        np.stack([a, m_ab, m_ca], axis=1),
        np.stack([m_ab, b, m_bc], axis=1),
        np.stack([m_ca, m_bc, c], axis=1),
        np.stack([m_ab, m_bc, m_ca], axis=1),
    ])
    return TriangularMesh(np.concatenate([vertices, midpoints]), children)


def mesh_hierarchy(max_level: int) -> list[TriangularMesh]:
    """Meshes of refinement levels 0 … max_level (level r: 10·4^r + 2 vertices, 20·4^r faces)."""
    if not isinstance(max_level, int) or max_level < 0:
        raise ValueError(f"max_level must be an integer ≥ 0, got {max_level!r}")
    meshes = [icosahedron()]
    for _ in range(max_level):
        meshes.append(refine(meshes[-1]))
    return meshes


def face_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (2, 3F) [senders; receivers] of a closed, consistently oriented mesh.

    Each undirected edge borders two faces that traverse it in opposite directions, so the
    half-edges a→b, b→c, c→a of all faces are exactly the 60·4^r directed edges, each once.
    """
    return np.stack([faces.reshape(-1), np.roll(faces, -1, axis=1).reshape(-1)])


def multimesh_edges(meshes: list[TriangularMesh], min_level: int = 0) -> np.ndarray:
    """Directed edges (2, E) of the multimesh: the union of the edges of levels min_level … last.

    The vertex numbering of every level is a prefix of the finest one, so the edges are already
    expressed in the finest mesh's numbering. Returned sorted by (receiver, sender), without duplicates.
    """
    if not 0 <= min_level < len(meshes):
        raise ValueError(f"min_level must lie in [0, {len(meshes) - 1}], got {min_level}")
    edges = np.concatenate([face_edges(mesh.faces) for mesh in meshes[min_level:]], axis=1)
    num_vertices = meshes[-1].vertices.shape[0]
    keys = np.unique(edges[1] * num_vertices + edges[0])  # sorted by (receiver, sender)
    return np.stack([keys % num_vertices, keys // num_vertices])
