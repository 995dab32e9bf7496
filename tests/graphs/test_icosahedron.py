import numpy as np
import pytest

from vecfield.graphs import face_edges, icosahedron, mesh_hierarchy, multimesh_edges, refine

# GraphCast paper, Supp. Table 4: directed multimesh edges of levels 0…r
MULTIMESH_EDGES = [60, 300, 1_260, 5_100, 20_460, 81_900, 327_660]


@pytest.fixture(scope="module")
def meshes():
    return mesh_hierarchy(6)


def test_counts_at_every_level(meshes) -> None:
    for r, mesh in enumerate(meshes):
        assert mesh.vertices.shape == (10 * 4**r + 2, 3)
        assert mesh.faces.shape == (20 * 4**r, 3)
        edges = face_edges(mesh.faces)
        assert edges.shape[1] == 60 * 4**r
        keys = edges[0] * mesh.vertices.shape[0] + edges[1]
        assert np.unique(keys).size == 60 * 4**r  # every directed edge exactly once
        assert multimesh_edges(meshes[: r + 1]).shape[1] == MULTIMESH_EDGES[r]
    # checkpoints' "mesh 2to6": levels 0 and 1 left out
    assert multimesh_edges(meshes, min_level=2).shape[1] == 327_660 - 300


def test_vertices_unit_norm_and_faces_oriented_outward(meshes) -> None:
    for mesh in meshes:
        np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), 1.0, rtol=0, atol=1e-15)
        a, b, c = (mesh.vertices[mesh.faces[:, k]] for k in range(3))
        assert (np.einsum("fd,fd->f", np.cross(b - a, c - a), a + b + c) > 0).all()
        # closed and consistently oriented: the reverse of every half-edge is a half-edge of another face
        v = mesh.vertices.shape[0]
        senders, receivers = face_edges(mesh.faces)
        assert np.array_equal(np.sort(senders * v + receivers), np.sort(receivers * v + senders))
        # Euler characteristic of the sphere
        assert v - senders.size // 2 + mesh.faces.shape[0] == 2


def test_icosahedron_is_regular_with_a_face_on_each_pole() -> None:
    vertices, faces = icosahedron()
    edges = face_edges(faces)
    lengths = np.linalg.norm(vertices[edges[0]] - vertices[edges[1]], axis=1)
    np.testing.assert_allclose(lengths, 4 / np.sqrt(10 + 2 * np.sqrt(5)), rtol=1e-14)  # edge / circumradius
    centroids = vertices[faces].mean(axis=1)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    for pole in ([0, 0, 1], [0, 0, -1]):
        assert np.isclose(centroids @ np.array(pole), 1.0, atol=1e-14).sum() == 1
    assert np.abs(vertices[:, 2]).max() < 0.8  # no vertex near a pole


def test_refinement_keeps_coarse_vertices_and_puts_midpoints_on_great_circles(meshes) -> None:
    coarse = meshes[1]
    fine = refine(coarse)
    np.testing.assert_array_equal(fine.vertices[: coarse.vertices.shape[0]], coarse.vertices)
    # every fine edge either halves a coarse edge (on its great circle) or joins two midpoints
    senders, receivers = face_edges(coarse.faces)
    a, b = coarse.vertices[senders], coarse.vertices[receivers]
    midpoint = (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True)
    fine_keys = set(map(tuple, fine.vertices.round(12).tolist()))
    assert all(tuple(m) in fine_keys for m in midpoint.round(12).tolist())
    np.testing.assert_allclose(np.einsum("ed,ed->e", np.cross(a, b), midpoint), 0.0, atol=1e-15)


def test_bad_levels_are_rejected(meshes) -> None:
    with pytest.raises(ValueError, match="max_level"):
        mesh_hierarchy(-1)
    with pytest.raises(ValueError, match="min_level"):
        multimesh_edges(meshes[:3], min_level=3)
