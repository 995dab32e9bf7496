import numpy as np
from scipy.spatial.transform import Rotation

from vecfield.graphs import (
    EDGE_TYPES,
    GraphSpec,
    LatLonGrid,
    build_graph,
    edge_displacements,
    edge_features,
    lat_lon_to_xyz,
    local_frames,
    node_features,
    xyz_to_lat_lon,
)


def _random_edges(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    receivers = rng.normal(size=(n, 3))
    receivers /= np.linalg.norm(receivers, axis=1, keepdims=True)
    senders = receivers + 0.05 * rng.normal(size=(n, 3))
    senders /= np.linalg.norm(senders, axis=1, keepdims=True)
    return senders, receivers


def _features(senders: np.ndarray, receivers: np.ndarray) -> np.ndarray:
    lat, lon = xyz_to_lat_lon(receivers)
    index = np.arange(len(senders))
    return edge_displacements(senders, lat, lon, np.stack([index, index]))


def test_lat_lon_round_trip_and_frames_are_orthonormal() -> None:
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(-89, 89, 500), rng.uniform(0, 360, 500)
    back_lat, back_lon = xyz_to_lat_lon(lat_lon_to_xyz(lat, lon))
    np.testing.assert_allclose(back_lat, lat, atol=1e-10)
    np.testing.assert_allclose(back_lon, lon, atol=1e-10)
    frames = local_frames(lat, lon)
    np.testing.assert_allclose(frames @ frames.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (500, 3, 3)),
                               atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(frames), 1.0)  # right-handed (r̂, ê, n̂)


def test_displacement_closed_forms() -> None:
    delta = 0.1  # degrees
    d = np.deg2rad(delta)
    edges = np.array([[0, 1], [0, 0]])
    senders = lat_lon_to_xyz(np.array([0.0, delta]), np.array([delta, 0.0]))
    disp = edge_displacements(senders, np.array([0.0]), np.array([0.0]), edges)
    # east neighbour on the equator: (cos δ − 1, sin δ, 0); north neighbour: (cos δ − 1, 0, sin δ)
    np.testing.assert_allclose(disp, [[np.cos(d) - 1, np.sin(d), 0], [np.cos(d) - 1, 0, np.sin(d)]],
                               atol=1e-15)
    feats = edge_features(senders, np.array([0.0]), np.array([0.0]), edges)
    np.testing.assert_allclose(feats[:, 0], 1.0, rtol=1e-6)


def test_edge_features_invariant_to_rigid_rotations() -> None:
    rng = np.random.default_rng(1)
    senders, receivers = _random_edges(rng, 1000)
    before = _features(senders, receivers)
    # any rotation: length, radial part and tangential length are invariant
    rotation = Rotation.random(random_state=2).as_matrix()
    after = _features(senders @ rotation.T, receivers @ rotation.T)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), np.linalg.norm(before, axis=1), atol=1e-14)
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=1e-14)
    np.testing.assert_allclose(np.hypot(after[:, 1], after[:, 2]), np.hypot(before[:, 1], before[:, 2]),
                               atol=1e-14)
    # rotations about the polar axis keep the east/north frame: all components are invariant
    about_pole = Rotation.from_euler("z", 123.4, degrees=True).as_matrix()
    after = _features(senders @ about_pole.T, receivers @ about_pole.T)
    np.testing.assert_allclose(after, before, atol=1e-14)


def test_graph_features_invariant_to_a_longitude_shift_of_grid_and_mesh() -> None:
    """Shifting the grid by one 90°-step and rotating the mesh with it leaves every feature unchanged."""
    spec = GraphSpec(LatLonGrid.global_grid(90.0), mesh_min_level=0, mesh_max_level=1)
    graph = build_graph(spec)
    lat, lon = graph["grid"].lat_lon.numpy().T
    mesh_lat, mesh_lon = xyz_to_lat_lon(graph["mesh"].pos.numpy())
    for edge_type in EDGE_TYPES:
        edges = graph[edge_type].edge_index.numpy()
        s_lat, s_lon = (lat, lon) if edge_type[0] == "grid" else (mesh_lat, mesh_lon)
        r_lat, r_lon = (lat, lon) if edge_type[2] == "grid" else (mesh_lat, mesh_lon)
        shifted = edge_features(lat_lon_to_xyz(s_lat, s_lon + 90.0), r_lat, r_lon + 90.0, edges)
        np.testing.assert_allclose(shifted, graph[edge_type].edge_attr.numpy(), atol=1e-6)


def test_node_features_are_graphcasts() -> None:
    lat, lon = np.array([90.0, 0.0, -30.0]), np.array([0.0, 90.0, 180.0])
    expected = [[1, 1, 0], [0, 0, 1], [-0.5, -1, 0]]
    np.testing.assert_allclose(node_features(lat, lon), expected, atol=1e-7)
