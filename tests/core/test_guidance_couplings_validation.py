"""Classifier-free guidance, couplings, time samplers and grids, and the errors users can cause."""

import itertools
import math

import pytest
import torch

from vecfield import VectorFieldModel
from vecfield.core.couplings import IndependentCoupling, MinibatchOTCoupling, ZeroCoupling, get_coupling
from vecfield.core.guidance import drop_condition, guided_output
from vecfield.core.likelihood import bits_per_dim, gaussian_log_prob
from vecfield.core.model import network_calls
from vecfield.core.objective import DiscreteStepTime, LogitNormalTime, LogNormalSigmaTime
from vecfield.core.schedules import EDMSchedule, VPSchedule
from vecfield.core.solvers import SOLVER_REGISTRY, Solver, check_time_grid, get_solver, time_grid
from vecfield.nn import MLP


class CountingMLP(MLP):
    calls = 0

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        return super().forward(x_t, t, cond)


@pytest.mark.parametrize("target", ["velocity", "epsilon", "x1", "score"])
def test_guidance_follows_eq_15_12(target: str) -> None:
    torch.manual_seed(3)
    net = CountingMLP(2, hidden_features=16, depth=2, num_classes=3).double()
    model = VectorFieldModel(net, target=target, t_start=0.1, t_end=0.9)
    x = torch.randn(6, 2, dtype=torch.float64)
    t = torch.rand(6, dtype=torch.float64) * 0.8 + 0.1
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    conditional = model.velocity(x, t, y)
    unconditional = model.velocity(x, t, net.null_condition(y))
    torch.testing.assert_close(model.velocity(x, t, y, guidance=1.0), conditional, rtol=0, atol=1e-12)
    torch.testing.assert_close(model.velocity(x, t, y, guidance=0.0), unconditional, rtol=0, atol=1e-12)
    for w in (-0.5, 0.3, 2.5):
        guided = unconditional + w * (conditional - unconditional)
        torch.testing.assert_close(model.velocity(x, t, y, guidance=w), guided, rtol=1e-10, atol=1e-10)
    net.calls = 0
    guided_output(net, x, t, y, 2.0)
    assert net.calls == 1  # both passes in one forward call
    net.calls = 0
    model.sample(6, y, steps=4, solver="euler", guidance=3.0)
    assert net.calls == 4


def test_guidance_scale_one_reproduces_conditional_sampling() -> None:
    net = MLP(2, hidden_features=16, depth=2, num_classes=2).double()
    model = VectorFieldModel(net, "ddpm", steps=20)
    y = torch.tensor([0, 1, 1])
    plain = model.sample(3, y, generator=torch.Generator().manual_seed(5))
    guided = model.sample(3, y, guidance=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(plain, guided, rtol=0, atol=1e-10)


def test_condition_dropout_uses_the_null_token_at_rate_p() -> None:
    net = MLP(2, num_classes=4)
    y = torch.randint(0, 4, (20_000,))
    dropped = drop_condition(net, y, 0.2, torch.Generator().manual_seed(0))
    is_null = dropped == 4
    assert abs(is_null.float().mean() - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 20_000)
    assert torch.equal(dropped[~is_null], y[~is_null])
    with pytest.raises(TypeError, match="null_condition"):
        drop_condition(MLP(2, cond_features=3), torch.randn(4, 3), 0.5)


class _NestedNull(torch.nn.Module):
    """A backbone whose condition is a nested mapping with an absent entry; its null token is −1."""

    def null_condition(self, cond: dict) -> dict:
        return {"extra": None, "inner": {"label": torch.full_like(cond["inner"]["label"], -1)}}


def test_condition_dropout_reaches_into_nested_mappings_past_absent_entries() -> None:
    labels = torch.arange(1000) % 7
    cond = {"extra": None, "inner": {"label": labels}}
    dropped = drop_condition(_NestedNull(), cond, 0.3, torch.Generator().manual_seed(1))
    assert dropped["extra"] is None
    kept = dropped["inner"]["label"]
    assert set(kept[kept >= 0].tolist()) <= set(range(7)) and torch.equal(kept[kept >= 0], labels[kept >= 0])
    assert abs(float((kept == -1).double().mean()) - 0.3) < 0.05


def test_condition_dropout_without_a_batch_tensor_says_so() -> None:
    with pytest.raises(ValueError, match="the condition holds none"):
        drop_condition(MLP(2, num_classes=4), {"label": None}, 0.5)


def test_minibatch_ot_is_the_exact_assignment() -> None:
    gen = torch.Generator().manual_seed(6)
    x1 = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    coupling = MinibatchOTCoupling()
    x0 = coupling.pair(x1, torch.Generator().manual_seed(7))
    independent = IndependentCoupling().pair(x1, torch.Generator().manual_seed(7))
    # the same noise, re-ordered
    assert torch.equal(x0[torch.argsort(x0[:, 0])], independent[torch.argsort(independent[:, 0])])
    best = min(((x1 - independent[list(p)]) ** 2).sum() for p in itertools.permutations(range(6)))
    torch.testing.assert_close(((x1 - x0) ** 2).sum(), best)
    assert torch.equal(ZeroCoupling().pair(x1), torch.zeros_like(x1))
    with pytest.raises(ValueError, match="independent"):
        get_coupling("sinkhorn")


def test_time_samplers_follow_their_laws() -> None:
    gen = torch.Generator().manual_seed(8)
    t = LogitNormalTime(0.5, 0.8)(50_000, gen, torch.float64, torch.device("cpu"))
    logit = torch.log(t / (1 - t))
    assert abs(logit.mean() - 0.5) < 0.02 and abs(logit.std() - 0.8) < 0.02
    schedule = EDMSchedule(sigma_min=1e-4, sigma_max=1e4)
    t = LogNormalSigmaTime(schedule)(50_000, gen, torch.float64, torch.device("cpu"))
    log_sigma = torch.log(schedule.coefficients(t).sigma)
    assert abs(log_sigma.mean() + 1.2) < 0.02 and abs(log_sigma.std() - 1.2) < 0.02
    steps = DiscreteStepTime(10)(1000, gen, torch.float64, torch.device("cpu")) * 10
    assert set(torch.round(steps).long().tolist()) == set(range(10))


def test_karras_grid() -> None:
    edm = EDMSchedule()
    torch.testing.assert_close(time_grid(8, "karras", edm), torch.linspace(0, 1, 9, dtype=torch.float64))
    grid = time_grid(10, "karras", VPSchedule())
    assert grid[0] == 0 and grid[-1] == 1 and (grid.diff() > 0).all()
    ratio = VPSchedule().noise_to_signal(grid[1:-1]) ** (1 / 7)
    torch.testing.assert_close(ratio.diff(), ratio.diff()[:1].expand(8), rtol=1e-6, atol=0)


@pytest.mark.parametrize("grid", [[0.0, 0.5, 0.4, 1.0], [0.0, float("nan"), 1.0], [0.0, 0.5, 0.5, 1.0],
                                  [-0.1, 1.0], [0.0]])
def test_bad_time_grids_are_rejected(grid: list[float]) -> None:
    with pytest.raises(ValueError, match="grid"):
        check_time_grid(torch.tensor(grid, dtype=torch.float64))


def test_user_errors_name_problem_and_fix() -> None:
    net = MLP(2, hidden_features=8, depth=1, num_classes=2)
    with pytest.raises(ValueError, match="flow_matching"):
        VectorFieldModel(net, "flow-matching")
    with pytest.raises(ValueError, match=r"valid options are .*'schedule'"):
        VectorFieldModel(net, schedul="condot")
    with pytest.raises(ValueError, match="'velocity'"):
        VectorFieldModel(net, target="v")
    with pytest.raises(ValueError, match="'heun'"):
        VectorFieldModel(net, solver="rk45")
    model = VectorFieldModel(net)
    with pytest.raises(ValueError, match="'heun'"):
        model.sample(4, torch.tensor([0, 1, 0, 1]), solver="rk45")
    with pytest.raises(ValueError, match="batch size 3 but x has batch size 4"):
        model.loss(torch.randn(4, 2), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="batch size 2 but x has batch size 4"):
        model.sample(4, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        model.loss(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.loss(torch.randn(2, 2), torch.tensor([0, 1]), t=torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="per element"):
        model.loss(torch.randn(2, 2), torch.tensor([0, 1]), weight=torch.ones(3))
    with pytest.raises(ValueError, match="exact"):
        model.log_prob(torch.randn(2, 2), torch.tensor([0, 1]), divergence="trace")
    with pytest.raises(ValueError, match="source_log_prob"):
        VectorFieldModel(net, "deterministic").log_prob(torch.randn(2, 2), torch.tensor([0, 1]))


def test_network_calls_and_likelihood_units() -> None:
    assert network_calls("euler", 7) == 7 and network_calls("heun", 5) == 10 and network_calls("rk4", 2) == 8
    assert network_calls("ddim", 50) == 50
    with pytest.raises(ValueError, match="adaptive"):
        network_calls("dopri5", 10)
    x = torch.randn(5, 3, 2, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 2.0).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(gaussian_log_prob(x, std=2.0), expected)
    # a uniform density on [0, 1]^6 has log p = 0: 0 bits/dim; on [0, 2]^6, −6 ln 2 nats: 1 bit/dim
    torch.testing.assert_close(bits_per_dim(torch.tensor([-6 * math.log(2)]), 6), torch.tensor([1.0]))


def test_a_solver_object_plugs_in_where_a_name_would() -> None:
    """Names are presets of the registry; a user's Solver is used as given, with the same Sampling."""

    class HalfEuler(Solver):
        """Euler with each step split in two: Euler on the doubled grid, 1 call per half step."""

        name, calls_per_step = "half_euler", 2

        def __call__(self, x, grid, sampling):
            fine = torch.stack([grid[:-1], (grid[:-1] + grid[1:]) / 2], dim=1).flatten()
            return SOLVER_REGISTRY["euler"](x, torch.cat([fine, grid[-1:]]), sampling)

    torch.manual_seed(0)
    model = VectorFieldModel(MLP(2, hidden_features=8, depth=1), solver=HalfEuler(), steps=3).double()
    x0 = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(model.sample(x0), model.sample(x0, solver="euler", steps=6))
    assert network_calls(HalfEuler(), 3) == 6
    assert get_solver("heun") is SOLVER_REGISTRY["heun"] and isinstance(get_solver("ddim"), Solver)
