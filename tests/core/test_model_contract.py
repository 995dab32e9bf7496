"""One contract over every schedule × target × solver, and the forecaster's degenerate case."""

import pytest
import torch

from tests.core.nets import GridField, ImageField
from vecfield import VectorFieldModel
from vecfield.core.energy import HEADS, EnergyField, EnergyHead
from vecfield.core.model import EDGE, METHODS
from vecfield.core.schedules import SCHEDULES, get_schedule
from vecfield.core.solvers import SOLVERS, solve_dopri5
from vecfield.core.targets import TARGETS
from vecfield.nn import MLP


def _mlp(dtype: torch.dtype = torch.float64) -> MLP:
    return MLP(3, hidden_features=16, depth=1, time_features=8).to(dtype)


def _net(kind: str) -> torch.nn.Module:
    """The plain MLP field, or the conservative field −∇E of an energy head over the same MLP."""
    return _mlp() if kind == "mlp" else EnergyField(EnergyHead(_mlp(), kind))


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", ["mlp", *HEADS])
def test_contract_every_schedule_target_and_solver(schedule: str, target: str, kind: str) -> None:
    net = _net(kind)
    alpha_at_zero = float(get_schedule(schedule).coefficients(torch.zeros(1, dtype=torch.float64)).alpha[0])
    options = {"t_start": EDGE} if alpha_at_zero == 0 else {}
    model = VectorFieldModel(net, schedule=schedule, target=target, **options)
    x1 = torch.randn(8, 3, dtype=torch.float64)

    loss = model.loss(x1)
    assert loss.ndim == 0 and loss.dtype == torch.float64 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    for t in (0.0, 1.0):
        assert torch.isfinite(model.loss(x1, t=torch.full((8,), t, dtype=torch.float64)))
    for t in (model.t_start, model.t_end):
        v = model.velocity(x1, torch.full((8,), t, dtype=torch.float64))
        assert v.shape == x1.shape and torch.isfinite(v).all()
    for solver in SOLVERS:
        if solver == "dopri5":  # loose tolerances: an untrained x1/score field is stiff near σ = 0
            source = torch.randn(5, 3, dtype=torch.float64)
            out = solve_dopri5(model.velocity, source, model.t_start, model.t_end, rtol=1e-2, atol=1e-2)
        else:
            out = model.sample(5, solver=solver, steps=3, generator=torch.Generator().manual_seed(0))
        assert out.shape == (5, 3) and out.dtype == torch.float64 and torch.isfinite(out).all(), solver


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_on_float32_vectors_images_and_grids(method: str) -> None:
    """Events need not be 2-D: the same model runs on images (B, C, H, W) and grids (B, nodes, ch)."""
    cases = [(MLP(3, hidden_features=8, depth=1, num_classes=2), torch.randn(4, 3),
              torch.tensor([0, 1, 1, 2])),
             (ImageField(2, num_classes=3), torch.randn(4, 2, 5, 5), torch.tensor([0, 1, 2, 3])),
             (EnergyField(EnergyHead(MLP(3, hidden_features=8, depth=1, num_classes=2))), torch.randn(4, 3),
              torch.tensor([0, 1, 1, 2])),
             (EnergyField(EnergyHead(ImageField(2, num_classes=3), "dot")), torch.randn(4, 2, 5, 5),
              torch.tensor([0, 1, 2, 3])),
             (GridField(3, cond_channels=2), torch.randn(4, 6, 3), torch.randn(4, 6, 2))]
    for net, x1, cond in cases:
        model = VectorFieldModel(net, method, event_shape=tuple(x1.shape[1:]), cond_dropout=0.2)
        loss = model.loss(x1, cond)
        loss.backward()
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        out = model.sample(4, cond, steps=2, guidance=1.5)
        assert out.shape == x1.shape and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_deterministic_forecaster_is_weighted_mse_and_one_euler_step() -> None:
    """Zero/current-state source, t = 0, velocity target, one Euler step (GraphCast as a vector field)."""
    torch.manual_seed(1)
    net = GridField(channels=3, cond_channels=2).double()
    model = VectorFieldModel(net, method="deterministic")
    x0 = torch.randn(4, 6, 3, dtype=torch.float64)  # current state (B, nodes, channels)
    x1 = torch.randn(4, 6, 3, dtype=torch.float64)  # next state
    cond = torch.randn(4, 6, 2, dtype=torch.float64)  # forcings
    weight = torch.rand(1, 6, 3, dtype=torch.float64)  # latitude × variable weights
    zero_time = torch.zeros(4, dtype=torch.float64)

    expected = (weight * (net(x0, zero_time, cond) - (x1 - x0)) ** 2).mean()
    torch.testing.assert_close(model.loss(x1, cond, x0=x0, weight=weight), expected, rtol=1e-12, atol=0)
    # zero source: a weighted MSE of the residual itself
    expected_zero = (weight * (net(torch.zeros_like(x1), zero_time, cond) - x1) ** 2).mean()
    torch.testing.assert_close(model.loss(x1, cond, weight=weight), expected_zero, rtol=1e-12, atol=0)

    net.calls = 0
    prediction = model.sample(x0, cond)
    assert net.calls == 1
    torch.testing.assert_close(prediction, x0 + net(x0, zero_time, cond), rtol=0, atol=1e-14)

    # training: one forward pass gives the loss and the same next state as the sampler's Euler step
    net.calls = 0
    output = model.training_loss(x1, cond, x0=x0, weight=weight)
    assert net.calls == 1
    torch.testing.assert_close(output.loss, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(output.x_t, x0, rtol=0, atol=0)
    torch.testing.assert_close(model.predicted_data(output), prediction, rtol=0, atol=1e-14)


def test_conditions_pass_unchanged_through_every_solver() -> None:
    net = GridField(channels=2, cond_channels=1).double()
    cond = torch.randn(3, 4, 1, dtype=torch.float64)
    model = VectorFieldModel(net, "edm", event_shape=(4, 2))
    for solver in SOLVERS:
        net.seen.clear()
        model.sample(3, cond, steps=2, solver=solver)
        assert net.seen and all(seen is cond for seen in net.seen), solver


def test_edm_preconditioning_and_weighting() -> None:
    """D = c_skip·x + c_out·F(c_in·x) and λ = 1/c_out² (Karras et al. 2022, Table 1), with σ_d = 0.5."""
    torch.manual_seed(2)
    net = GridField(channels=2, cond_channels=1).double()
    model = VectorFieldModel(net, "edm", sigma_data=0.5)
    x1 = torch.randn(5, 4, 2, dtype=torch.float64)
    x0 = torch.randn(5, 4, 2, dtype=torch.float64)
    cond = torch.randn(5, 4, 1, dtype=torch.float64)
    t = torch.rand(5, dtype=torch.float64)
    s = model.schedule.coefficients(t).sigma[:, None, None]
    x = x1 + s * x0
    c_skip, c_out, c_in = 0.25 / (s**2 + 0.25), s * 0.5 / (s**2 + 0.25).sqrt(), 1 / (s**2 + 0.25).sqrt()
    denoised = c_skip * x + c_out * net(c_in * x, t, cond)
    torch.testing.assert_close(model.predict(x, t, cond), denoised, rtol=1e-12, atol=1e-12)
    expected = ((1 / c_out**2) * (denoised - x1) ** 2).mean()
    torch.testing.assert_close(model.loss(x1, cond, x0=x0, t=t), expected, rtol=1e-10, atol=0)


def test_pluggable_noise_and_hutchinson_likelihood_on_grids() -> None:
    net = GridField(channels=2, cond_channels=1).double()
    calls = []

    def noise(shape: tuple[int, ...], generator: torch.Generator | None, dtype: torch.dtype,
              device: torch.device) -> torch.Tensor:
        calls.append(shape)
        return torch.ones(shape, dtype=dtype, device=device)

    model = VectorFieldModel(net, "flow_matching", noise=noise, event_shape=(4, 2),
                             source_log_prob=lambda y: -0.5 * (y**2).flatten(1).sum(1))
    model.loss(torch.randn(3, 4, 2, dtype=torch.float64), torch.randn(3, 4, 1, dtype=torch.float64))
    model.sample(3, torch.randn(3, 4, 1, dtype=torch.float64), steps=1)
    assert calls == [(3, 4, 2), (3, 4, 2)]
    cond = torch.randn(3, 4, 1, dtype=torch.float64)
    x = torch.randn(3, 4, 2, dtype=torch.float64)
    log_p = model.log_prob(x, cond, divergence="hutchinson", method="rk4", steps=4)
    exact = model.log_prob(x, cond, divergence="exact", method="rk4", steps=4)
    assert log_p.shape == (3,) and torch.isfinite(log_p).all() and torch.isfinite(exact).all()
