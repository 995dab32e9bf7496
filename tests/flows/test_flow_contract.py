"""One contract suite over every flow (NICE, RealNVP, Glow, coupling/autoregressive NSF), vectors, images."""

import math
from collections.abc import Callable

import pytest
import torch

from vecfield.density import load_checkpoint, save_checkpoint
from vecfield.flows import NICE, AutoregressiveSplineFlow, Flow, Glow, NeuralSplineFlow, RealNVP

SMALL = dict(hidden_features=8, depth=1)
FLOWS: dict[str, Callable[[tuple[int, ...]], Flow]] = {
    "nice": lambda shape: NICE(shape, num_couplings=4, **SMALL),
    "realnvp": lambda shape: RealNVP(shape, num_couplings=2, num_scales=2, **SMALL),
    "glow": lambda shape: Glow(shape, num_steps=2, num_scales=2, **SMALL),
    "nsf": lambda shape: NeuralSplineFlow(shape, num_couplings=2, bins=4, bound=3.0, **SMALL),
    "maf-nsf": lambda shape: AutoregressiveSplineFlow(shape, num_transforms=2, bins=4, bound=3.0, **SMALL),
}
SHAPES = {"vector": (4,), "image": (2, 4, 4)}
CASES = [(name, kind) for name in FLOWS for kind in SHAPES]


def make_flow(name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Flow:
    """A flow with data-dependent init done and every parameter moved off its identity start."""
    flow = FLOWS[name](shape).to(dtype)
    flow.initialize(torch.randn(64, *shape, dtype=dtype) * 1.5 + 0.3)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return flow


@pytest.mark.parametrize(("name", "kind"), CASES)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_invertible(name: str, kind: str, dtype: torch.dtype, tol: float) -> None:
    shape = SHAPES[kind]
    flow = make_flow(name, shape, dtype)
    x = torch.randn(16, *shape, dtype=dtype)
    with torch.no_grad():
        z, _ = flow.transform(x)
        assert (flow.transform.inverse(z) - x).abs().max() <= tol
        assert (flow.transform(flow.transform.inverse(x))[0] - x).abs().max() <= tol
        assert not torch.allclose(z, x, atol=1e-3)  # the map is not the identity


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_log_det_equals_autograd_jacobian(name: str, kind: str) -> None:
    shape = SHAPES[kind]
    flow = make_flow(name, shape)
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        _, log_det = flow.transform(x)
    dims = x[0].numel()

    def f(v: torch.Tensor) -> torch.Tensor:
        return flow.transform(v.reshape(x.shape))[0].flatten()

    jac = torch.autograd.functional.jacobian(f, x.flatten(), vectorize=True)  # (B·D, B·D)
    for i in range(x.shape[0]):
        block = jac[i * dims : (i + 1) * dims, i * dims : (i + 1) * dims]
        sign, logabs = torch.linalg.slogdet(block)
        assert sign != 0
        assert abs(float(logabs - log_det[i])) <= 1e-6


@pytest.mark.parametrize("name", list(FLOWS))
def test_two_dimensional_density_integrates_to_one(name: str) -> None:
    flow = make_flow(name, (2,))
    edge, n = 12.0, 240  # spacing 0.1: the Riemann sum of a smooth density is far inside 1e-2
    grid = torch.linspace(-edge, edge, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    with torch.no_grad():
        density = torch.exp(torch.cat([flow.log_prob(chunk) for chunk in points.split(40_000)]))
    cell = (grid[1] - grid[0]) ** 2
    assert abs(float(density.sum() * cell) - 1.0) <= 1e-2


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_save_load_round_trip(name: str, kind: str, tmp_path: pytest.TempPathFactory) -> None:
    shape = SHAPES[kind]
    flow = make_flow(name, shape)
    path = tmp_path / "flow.pt"
    save_checkpoint(flow, path)
    loaded = load_checkpoint(path, type(flow))
    x = torch.randn(5, *shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(x), flow.log_prob(x), rtol=0, atol=0)
    assert loaded.initialized == flow.initialized
    other = next(cls for cls in (NICE, RealNVP, Glow) if cls is not type(flow))
    with pytest.raises(ValueError, match=f"holds a {type(flow).__name__} checkpoint"):
        load_checkpoint(path, other)


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_gradients_reach_every_parameter(name: str, kind: str) -> None:
    shape = SHAPES[kind]
    flow = make_flow(name, shape)
    flow.training_loss(torch.randn(8, *shape, dtype=torch.float64)).backward()
    for pname, p in flow.named_parameters():
        assert p.grad is not None and bool((p.grad != 0).any()), pname


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_sample_shape_and_reproducibility(name: str, kind: str) -> None:
    shape = SHAPES[kind]
    flow = make_flow(name, shape)
    a = flow.sample(6, generator=torch.Generator().manual_seed(3))
    b = flow.sample(6, generator=torch.Generator().manual_seed(3))
    assert a.shape == (6, *shape) and a.dtype == torch.float64
    assert torch.equal(a, b) and torch.isfinite(flow.log_prob(a)).all()


def test_log_prob_matches_change_of_variables_at_identity() -> None:
    """Couplings whose conditioners output 0 are the identity, so the RealNVP is exactly N(0, I)."""
    flow = RealNVP((3,), **SMALL).double()
    for coupling in flow.transform.layers:
        torch.nn.init.zeros_(coupling.conditioner.head.weight)
        torch.nn.init.zeros_(coupling.conditioner.head.bias)
    x = torch.randn(10, 3, dtype=torch.float64)
    expected = -0.5 * (x**2).sum(1) - 1.5 * math.log(2 * math.pi)
    torch.testing.assert_close(flow.log_prob(x), expected)


def test_bad_input_is_rejected() -> None:
    flow = NICE((2,), **SMALL)
    with pytest.raises(ValueError, match="non-finite"):
        flow.log_prob(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="shape"):
        flow.log_prob(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="squeeze"):
        RealNVP((1, 6, 6), num_scales=3, **SMALL)
    with pytest.raises(ValueError, match=r"divisible by 4.*at most 1 squeeze"):
        Glow((1, 6, 6), num_scales=2, **SMALL)
    with pytest.raises(ValueError, match="event_shape"):
        Glow((4, 4), **SMALL)
