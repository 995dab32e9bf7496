import numpy as np
import pytest
import torch

from vecfield.graphs import (
    EDGE_TYPES,
    GraphSpec,
    LatLonGrid,
    build_graph,
    containing_triangles,
    graph_cache_path,
    lat_lon_to_xyz,
    load_or_build_graph,
    longest_edge,
    mesh_hierarchy,
    radius_edges,
)
from vecfield.graphs import build as build_module

G2M, M2M, M2G = EDGE_TYPES


@pytest.fixture(scope="module")
def graph_1deg():
    """GraphCast_small's geometry with the paper's levels: 1° (181×360), multimesh levels 0…5."""
    return build_graph(GraphSpec(LatLonGrid.global_grid(1.0), mesh_min_level=0, mesh_max_level=5))


def _check_graph_invariants(graph) -> None:
    num_grid, num_mesh = graph["grid"].num_nodes, graph["mesh"].num_nodes
    g2m, m2g = graph[G2M].edge_index, graph[M2G].edge_index
    # every grid node reaches at least one mesh node
    assert torch.bincount(g2m[0], minlength=num_grid).min() >= 1
    # every grid node receives from exactly 3 distinct mesh nodes
    assert torch.equal(torch.bincount(m2g[1], minlength=num_grid), torch.full((num_grid,), 3))
    assert (m2g[0].view(-1, 3).diff(dim=1) > 0).all()
    for edge_type, (n_send, n_recv) in zip(EDGE_TYPES, [(num_grid, num_mesh), (num_mesh, num_mesh),
                                                        (num_mesh, num_grid)], strict=True):
        senders, receivers = graph[edge_type].edge_index
        assert senders.max() < n_send and receivers.max() < n_recv
        assert (receivers.diff() >= 0).all()  # sorted by receiver
        attr = graph[edge_type].edge_attr
        assert attr.dtype == torch.float32 and attr.shape == (senders.numel(), 4)
        assert attr[:, 0].max() == 1.0 and attr.abs().max() <= 1.0 + 1e-6
        torch.testing.assert_close(attr[:, 0], attr[:, 1:].norm(dim=1))


def test_1deg_levels_0_to_5_counts_and_invariants(graph_1deg) -> None:
    assert graph_1deg["grid"].num_nodes == 65_160
    assert graph_1deg["mesh"].num_nodes == 10_242
    assert graph_1deg[M2M].edge_index.shape[1] == 81_900
    assert graph_1deg[M2G].edge_index.shape[1] == 195_480
    assert abs(graph_1deg[G2M].edge_index.shape[1] - 101_892) <= 0.0005 * 101_892
    _check_graph_invariants(graph_1deg)


def test_paper_graph_at_quarter_degree() -> None:
    """GraphCast's paper graph (~7 s, under the 30 s that would make it a slow test)."""
    graph = build_graph(GraphSpec(LatLonGrid.global_grid(0.25), mesh_min_level=0, mesh_max_level=6))
    assert graph["grid"].num_nodes == 1_038_240
    assert graph["mesh"].num_nodes == 40_962
    assert graph[M2M].edge_index.shape[1] == 327_660
    assert graph[M2G].edge_index.shape[1] == 3_114_720
    assert abs(graph[G2M].edge_index.shape[1] - 1_618_746) <= 0.0001 * 1_618_746
    _check_graph_invariants(graph)


def test_grid_to_mesh_matches_brute_force_radius_rule() -> None:
    grid = LatLonGrid.global_grid(5.625, poles=False)
    meshes = mesh_hierarchy(3)
    lat, lon = grid.node_lat_lon()
    grid_xyz = lat_lon_to_xyz(lat, lon)
    radius = 0.6 * longest_edge(meshes[-1])
    chord = np.linalg.norm(grid_xyz[:, None] - meshes[-1].vertices[None], axis=2)
    expected = set(zip(*np.nonzero(chord <= radius), strict=True))
    edges = radius_edges(grid_xyz, meshes[-1].vertices, radius)
    assert set(zip(*edges.tolist(), strict=True)) == {(int(g), int(m)) for g, m in expected}


def test_mesh_to_grid_senders_form_the_containing_face() -> None:
    mesh = mesh_hierarchy(3)[-1]
    rng = np.random.default_rng(0)
    points = rng.normal(size=(2000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    face = containing_triangles(points, mesh)
    corners = mesh.vertices[mesh.faces[face]]  # (N, 3, 3)
    # brute force: p lies on the inner side of each of the three great circles of its face
    for k in range(3):
        normal = np.cross(corners[:, k], corners[:, (k + 1) % 3])
        assert (np.einsum("nd,nd->n", normal, points) >= -1e-12).all()
    # and exactly one face contains a generic point
    all_corners = mesh.vertices[mesh.faces]
    normals = np.cross(all_corners, np.roll(all_corners, -1, axis=1))  # (F, 3, 3)
    inside = (np.einsum("fkd,nd->nfk", normals, points) >= 0).all(axis=2)
    assert np.array_equal(inside.sum(axis=1), np.ones(len(points)))
    assert np.array_equal(np.argmax(inside, axis=1), face)


def test_global_grids_without_and_with_poles() -> None:
    wb2 = LatLonGrid.global_grid(5.625, poles=False)
    assert wb2.shape == (32, 64) and wb2.is_global
    assert wb2.latitudes()[0] == -87.1875 and wb2.longitudes()[-1] == 354.375
    era5 = LatLonGrid.global_grid(0.25, descending=True)
    assert era5.shape == (721, 1440) and era5.num_nodes == 1_038_240
    assert era5.latitudes()[0] == 90.0 and era5.latitudes()[-1] == -90.0
    assert LatLonGrid.global_grid(1.5).shape == (121, 240)
    lat, lon = LatLonGrid.global_grid(90.0, descending=True).node_lat_lon()
    np.testing.assert_array_equal(lat, np.repeat([90.0, 0.0, -90.0], 4))
    np.testing.assert_array_equal(lon, np.tile([0.0, 90.0, 180.0, 270.0], 3))


def test_regional_graph_keeps_the_global_rules() -> None:
    box = LatLonGrid(30.0, 60.0, 350.0, 380.0, 1.0)  # across the prime meridian
    assert not box.is_global
    spec = GraphSpec(box, mesh_min_level=2, mesh_max_level=5)
    graph = build_graph(spec)
    _check_graph_invariants(graph)
    meshes = mesh_hierarchy(5)
    assert 0 < graph["mesh"].num_nodes < meshes[-1].vertices.shape[0] // 10
    # grid → mesh edges are the global rule's edges, mesh nodes identified by position
    lat, lon = box.node_lat_lon()
    grid_xyz = lat_lon_to_xyz(lat, lon)
    global_edges = radius_edges(grid_xyz, meshes[-1].vertices, 0.6 * longest_edge(meshes[-1]))
    pos = graph["mesh"].pos.numpy()
    regional = {(g, tuple(pos[m].round(12))) for g, m in graph[G2M].edge_index.T.tolist()}
    expected = {(g, tuple(meshes[-1].vertices[m].round(12))) for g, m in global_edges.T.tolist()}
    assert regional == expected
    # every mesh node lies within the margin of the box
    dist = np.linalg.norm(pos[:, None] - grid_xyz[None], axis=2).min(axis=1)
    assert dist.max() <= spec.region_margin * max(longest_edge(meshes[-1]), np.deg2rad(1.0))


def test_bad_specs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="divides"):
        LatLonGrid.global_grid(0.7)
    with pytest.raises(ValueError, match="lat_south"):
        LatLonGrid(10.0, 0.0, 0.0, 10.0, 1.0)
    with pytest.raises(ValueError, match="mesh_min_level"):
        GraphSpec(mesh_min_level=4, mesh_max_level=3)
    with pytest.raises(ValueError, match="region_margin"):
        GraphSpec(region_margin=0.5)
    with pytest.raises(TypeError, match="LatLonGrid"):
        GraphSpec(grid=(1.0, 1.0))


def test_cache_round_trip_is_keyed_by_spec_and_atomic(tmp_path, monkeypatch) -> None:
    spec = GraphSpec(LatLonGrid.global_grid(5.625, poles=False), mesh_min_level=1, mesh_max_level=3)
    built = load_or_build_graph(spec, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [graph_cache_path(spec, tmp_path).name]

    def no_build(_spec):
        raise AssertionError("the cached graph should have been loaded")

    monkeypatch.setattr(build_module, "build_graph", no_build)
    loaded = load_or_build_graph(spec, tmp_path)
    assert loaded.spec == built.spec
    for key in ("grid", "mesh", *EDGE_TYPES):
        for name, value in built[key].items():
            assert torch.equal(loaded[key][name], value)
    other = GraphSpec(spec.grid, mesh_min_level=2, mesh_max_level=3)
    assert graph_cache_path(other, tmp_path) != graph_cache_path(spec, tmp_path)


class _Payload:
    """An object a weights-only load refuses (a poisoned cache file)."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content", ["pickle", "garbage"])
def test_an_invalid_cache_file_is_rebuilt_and_never_loaded_unsafely(tmp_path, content) -> None:
    """A poisoned or truncated graph cache file: a warning that it is invalid and a rebuild, never
    torch's advice to load it with weights_only=False (nothing in the file runs)."""
    import warnings

    spec = GraphSpec(LatLonGrid.global_grid(22.5, poles=False), mesh_min_level=0, mesh_max_level=1)
    path = graph_cache_path(spec, tmp_path)
    if content == "pickle":
        torch.save({"graph": _Payload()}, path)
    else:
        path.write_bytes(b"not a torch file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = load_or_build_graph(spec, tmp_path)
    messages = [str(w.message) for w in caught]
    assert any(f"the graph cache file {path} is invalid; rebuilding it" in m for m in messages)
    assert not any("weights_only" in m for m in messages)
    assert graph.spec == spec.to_json()
    assert load_or_build_graph(spec, tmp_path).spec == spec.to_json()  # the rebuilt file is valid
    with pytest.raises(ValueError, match="not a valid vecfield graph file") as error:
        path.write_bytes(b"truncated")
        build_module.load_graph(path)
    assert "weights_only" not in str(error.value)
