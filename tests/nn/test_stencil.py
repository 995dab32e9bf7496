"""GridStencil: the neighbourhood against numpy's padding, and what it changes in GridMeshGNN."""

import numpy as np
import pytest
import torch

from vecfield.graphs import GraphSpec, LatLonGrid, build_graph
from vecfield.nn import GridMeshGNN, GridStencil

H, W, RESOLUTION = 6, 9, 5.625


@pytest.mark.parametrize("radius", [1, 2])
@pytest.mark.parametrize("periodic", [True, False])
def test_neighbourhood_equals_numpy_padding(radius: int, periodic: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, H * W, 3))
    out = GridStencil((H, W), radius, periodic)(torch.from_numpy(x)).numpy()
    k = 2 * radius + 1
    assert out.shape == (2, H * W, 3 * k * k)
    image = x.reshape(2, H, W, 3)
    image = np.pad(image, ((0, 0), (0, 0), (radius, radius), (0, 0)), mode="wrap" if periodic else "edge")
    image = np.pad(image, ((0, 0), (radius, radius), (0, 0), (0, 0)), mode="edge")
    for i, j in [(0, 0), (2, 4), (H - 1, W - 1), (1, W - 1)]:
        window = image[:, i:i + k, j:j + k, :]  # (2, k, k, 3): rows a, columns b, features
        expected = window.transpose(0, 3, 1, 2).reshape(2, -1)  # feature-major, then a, then b
        np.testing.assert_array_equal(out[:, i * W + j], expected)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="radius must be ≥ 1"):
        GridStencil((H, W), 0, True)
    with pytest.raises(ValueError, match="more than 2 longitudes"):
        GridStencil((H, 2), 2, True)
    with pytest.raises(ValueError, match=r"\(batch, 54, features\)"):
        GridStencil((H, W), 1, False)(torch.zeros(1, 53, 2))


@pytest.fixture(scope="module")
def box_graph():
    """A 6 × 9 limited-area box at 5.625° with multimesh levels 0…4."""
    grid = LatLonGrid(-14.0625, -14.0625 + (H - 1) * RESOLUTION, 0.0, (W - 1) * RESOLUTION, RESOLUTION)
    return build_graph(GraphSpec(grid, mesh_min_level=0, mesh_max_level=4))


def _net(graph, stencil: GridStencil | None) -> GridMeshGNN:
    torch.manual_seed(0)
    return GridMeshGNN(graph, 1, 1, cond_channels=2, latent=16, processor_layers=2, time_features=0,
                       stencil=stencil).double()


def test_centre_only_weights_give_graphcast_network(box_graph) -> None:
    """A stencil network whose first layer reads only the centre node is the plain network."""
    plain = _net(box_graph, None)
    stencil = GridStencil((H, W), 1, periodic=False)
    wide = _net(box_graph, stencil)
    state = plain.state_dict()
    weight = state["grid_embedding.first.0.weight"]  # (latent, 3 sample features + static)
    expanded = torch.zeros_like(wide.state_dict()["grid_embedding.first.0.weight"])
    centre = stencil.size // 2
    for feature in range(3):
        expanded[:, feature * stencil.size + centre] = weight[:, feature]
    expanded[:, 3 * stencil.size:] = weight[:, 3:]
    wide.load_state_dict(state | {"grid_embedding.first.0.weight": expanded})
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, H * W, 1, generator=g, dtype=torch.float64)
    cond = torch.randn(2, H * W, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(wide(x, None, cond), plain(x, None, cond), rtol=0, atol=1e-12)


def test_stencil_couples_neighbours_at_initialization(box_graph) -> None:
    """∂ output[n] / ∂ input[east neighbour of n], relative to the node's own path: the plain network
    passes it only through the mesh (weakly); the stencil's first layer reads it directly."""
    node = (H // 2) * W + W // 2

    def reach(net: GridMeshGNN) -> float:
        x = torch.randn(1, H * W, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2),
                        requires_grad=True)
        cond = torch.zeros(1, H * W, 2, dtype=torch.float64)
        (grad,) = torch.autograd.grad(net(x, None, cond)[0, node, 0], x)
        return (grad[0, node + 1, 0].abs() / grad[0, node, 0].abs()).item()

    plain, wide = reach(_net(box_graph, None)), reach(_net(box_graph, GridStencil((H, W), 1, False)))
    assert wide > 0.1 > plain, (wide, plain)


def test_stencil_grid_must_match_graph(box_graph) -> None:
    with pytest.raises(ValueError, match="does not have the graph's 54 grid nodes"):
        _net(box_graph, GridStencil((H, W + 1), 1, False))


@pytest.mark.parametrize("periodic", [True, False])
def test_linear_equals_the_matrix_product_on_the_neighbourhood(periodic: bool) -> None:
    """GridStencil.linear (a convolution) is W · stencil(x) + b, values and gradients."""
    g = torch.Generator().manual_seed(3)
    stencil = GridStencil((H, W), 1, periodic)
    x = torch.randn(2, H * W, 4, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 4 * stencil.size, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, generator=g, dtype=torch.float64)
    fast = stencil.linear(x, weight, bias)
    slow = torch.nn.functional.linear(stencil(x), weight, bias)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-12)
    probe = torch.randn(fast.shape, generator=g, dtype=torch.float64)
    grads = [torch.autograd.grad((y * probe).sum(), (x, weight)) for y in (fast, slow)]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
