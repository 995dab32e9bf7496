import pytest
import torch

from vecfield.core import VectorField
from vecfield.graphs import EDGE_TYPES, GraphSpec, LatLonGrid, build_graph
from vecfield.nn import GridMeshGNN

IN, COND, OUT = 3, 2, 2


@pytest.fixture(scope="module")
def graph():
    """An 11.25° grid (16×32, no poles) with multimesh levels 0…2."""
    spec = GraphSpec(LatLonGrid.global_grid(11.25, poles=False), mesh_min_level=0, mesh_max_level=2)
    return build_graph(spec)


def _net(graph, **kwargs) -> GridMeshGNN:
    torch.manual_seed(0)
    options = {"cond_channels": COND, "latent": 16, "processor_layers": 2, "time_features": 8} | kwargs
    return GridMeshGNN(graph, IN, OUT, **options).double()


def _inputs(batch: int, num_grid: int = 512) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return (torch.randn(batch, num_grid, IN, generator=g, dtype=torch.float64),
            torch.rand(batch, generator=g, dtype=torch.float64),
            torch.randn(batch, num_grid, COND, generator=g, dtype=torch.float64))


def _permute_mesh(graph, perm: torch.Tensor):
    """The same graph with mesh node i renumbered perm[i]."""
    permuted = graph.clone()
    inverse = torch.argsort(perm)
    permuted["mesh"].x = graph["mesh"].x[inverse]
    permuted["mesh"].pos = graph["mesh"].pos[inverse]
    for edge_type in EDGE_TYPES:
        edge_index = graph[edge_type].edge_index.clone()
        for row, node_type in ((0, edge_type[0]), (1, edge_type[2])):
            if node_type == "mesh":
                edge_index[row] = perm[edge_index[row]]
        shuffle = torch.randperm(edge_index.shape[1])  # edge order must not matter either
        permuted[edge_type].edge_index = edge_index[:, shuffle]
        permuted[edge_type].edge_attr = graph[edge_type].edge_attr[shuffle]
    return permuted


def test_contract_shapes_and_time_dependence(graph) -> None:
    net = _net(graph)
    assert isinstance(net, VectorField)
    x, t, cond = _inputs(2)
    out = net(x, t, cond)
    assert out.shape == (2, 512, OUT) and out.dtype == torch.float64
    assert not torch.allclose(net(x, t + 0.3, cond), out)  # t reaches the output
    plain = _net(graph, cond_channels=0, time_features=0)
    assert plain(x, None).shape == (2, 512, OUT)


def test_invariant_to_mesh_node_numbering(graph) -> None:
    net = _net(graph)
    perm = torch.randperm(graph["mesh"].num_nodes)
    permuted = _net(_permute_mesh(graph, perm))
    permuted.load_state_dict(net.state_dict())
    x, t, cond = _inputs(1)
    torch.testing.assert_close(permuted(x, t, cond), net(x, t, cond), rtol=1e-10, atol=1e-10)


def test_batch_of_two_equals_two_single_passes(graph) -> None:
    net = _net(graph)
    x, t, cond = _inputs(2)
    together = net(x, t, cond)
    for b in range(2):
        torch.testing.assert_close(together[b: b + 1], net(x[b: b + 1], t[b: b + 1], cond[b: b + 1]),
                                   rtol=1e-12, atol=1e-12)


def test_every_parameter_gets_gradient_and_checkpointing_changes_nothing(graph) -> None:
    x, t, cond = _inputs(2)
    grads = []
    for checkpointed in (False, True):
        net = _net(graph, checkpoint_layers=checkpointed)
        net(x, t, cond).square().mean().backward()
        grads.append({name: p.grad for name, p in net.named_parameters()})
    for name, grad in grads[0].items():
        assert grad is not None and grad.abs().sum() > 0, f"{name} gets no gradient"
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-12, atol=1e-14)


def test_bf16_autocast_runs_finite_and_close(graph) -> None:
    net = _net(graph).float()
    x, t, cond = (z.float() for z in _inputs(1))
    reference = net(x, t, cond)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x, t, cond)
        out.float().square().mean().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert (out.float() - reference).abs().mean() < 0.1 * reference.abs().mean()


def test_bad_inputs_are_rejected_with_the_expected_shape(graph) -> None:
    net = _net(graph)
    x, t, cond = _inputs(1)
    with pytest.raises(ValueError, match=r"x_t of shape \(batch, 512, 3\)"):
        net(x[:, :10], t, cond)
    with pytest.raises(ValueError, match="t of shape"):
        net(x, None, cond)
    with pytest.raises(ValueError, match="cond of shape"):
        net(x, t, None)
    with pytest.raises(TypeError, match="HeteroData"):
        GridMeshGNN({"grid": None}, IN, OUT)
    with pytest.raises(ValueError, match="processor_layers"):
        GridMeshGNN(graph, IN, OUT, processor_layers=0)


def test_mesh_node_noise_is_added_to_the_mesh_embedding(graph) -> None:
    """mesh_noise_features = k: the noise input is (z, ζ) with k values per mesh node. With its
    linear map zeroed the network is the global-noise one (same weights, same z); otherwise one
    node's ζ changes the output of its own sample only, and gradients reach the map."""
    k, n_mesh = 2, graph["mesh"].num_nodes
    plain = _net(graph, noise_features=4)
    net = _net(graph, noise_features=4, mesh_noise_features=k)
    assert net.noise_size == 4 + n_mesh * k
    missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and {name.split(".")[0] for name in missing} == {"mesh_noise_embedding"}
    x, t, cond = _inputs(2)
    g = torch.Generator().manual_seed(3)
    z = torch.randn(2, 4, generator=g, dtype=torch.float64)
    zeta = torch.randn(2, n_mesh * k, generator=g, dtype=torch.float64)
    with torch.no_grad():
        net.mesh_noise_embedding.weight.zero_()
        net.mesh_noise_embedding.bias.zero_()
    torch.testing.assert_close(net(x, t, cond, noise=torch.cat([z, zeta], 1)), plain(x, t, cond, noise=z),
                               rtol=1e-12, atol=1e-12)
    torch.nn.init.normal_(net.mesh_noise_embedding.weight, std=0.5)
    out = net(x, t, cond, noise=torch.cat([z, zeta], 1))
    one_node = zeta.clone()
    one_node[1, 5 * k : 6 * k] += 1.0  # mesh node 5 of sample 1
    changed = net(x, t, cond, noise=torch.cat([z, one_node], 1))
    torch.testing.assert_close(changed[0], out[0])
    assert (changed[1] - out[1]).abs().max() > 1e-4
    out.square().sum().backward()
    assert net.mesh_noise_embedding.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=rf"expected noise of shape \(2, {4 + n_mesh * k}\)"):
        net(x, t, cond, noise=z)
    mesh_only = _net(graph, mesh_noise_features=k)  # no global z: ζ alone is the noise input
    assert mesh_only.noise_size == n_mesh * k and mesh_only(x, t, cond, noise=zeta).shape == out.shape


def test_a_noise_vector_enters_the_adaptive_layernorms_per_sample(graph) -> None:
    """noise_features > 0: each sample's z changes its output (and only its own), gradients reach the
    noise embedding, and missing, misshapen or unexpected noise is refused."""
    net = _net(graph, noise_features=4)
    x, t, cond = _inputs(2)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 4, generator=g, dtype=torch.float64)
    out = net(x, t, cond, noise=z)
    other = z.clone()
    other[1] = torch.randn(4, generator=g, dtype=torch.float64)
    changed = net(x, t, cond, noise=other)
    torch.testing.assert_close(changed[0], out[0])
    assert (changed[1] - out[1]).abs().max() > 1e-3
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.noise_embedding.parameters())
    with pytest.raises(ValueError, match=r"expected noise of shape \(2, 4\)"):
        net(x, t, cond)
    with pytest.raises(ValueError, match="takes no noise"):
        _net(graph)(x, t, cond, noise=z)
    with pytest.raises(ValueError, match="time_features"):
        _net(graph, noise_features=4, time_features=0)
