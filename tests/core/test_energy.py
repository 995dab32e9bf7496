"""Energy-based models on the learner: the field is −∇E, the heads, classification, composition."""

import math

import pytest
import torch

from tests.core.nets import GaussianEnergy, ImageField
from vecfield.core import (
    EnergyField,
    EnergyHead,
    VectorFieldModel,
    VPSchedule,
    classify,
    compose,
    conditioned,
    energy_model,
    sample_mcmc,
)
from vecfield.nn import MLP


@pytest.mark.parametrize("kind", ["l2", "dot"])
def test_field_is_minus_the_energy_gradient_in_float64(kind: str) -> None:
    """−∇ₓE by central differences of the energy equals the field the learner calls (both heads)."""
    torch.manual_seed(0)
    head = EnergyHead(MLP(3, hidden_features=16, depth=2, time_features=8), kind).double()
    field = EnergyField(head)
    x, t = torch.randn(5, 3, dtype=torch.float64), torch.rand(5, dtype=torch.float64)
    h = 1e-6
    numeric = torch.stack([(head(x + h * e, t) - head(x - h * e, t)) / (2 * h)
                           for e in torch.eye(3, dtype=torch.float64)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(field(x, t), -numeric, rtol=1e-7, atol=1e-8)
    expected = {"l2": 0.5 * ((x - head.backbone(x, t)) ** 2).sum(1), "dot": (x * head.backbone(x, t)).sum(1)}
    torch.testing.assert_close(head(x, t), expected[kind])


def test_the_field_trains_the_energy_through_its_gradient() -> None:
    """create_graph while training: the loss reaches the parameters; no graph under no_grad."""
    torch.manual_seed(1)
    model = energy_model(EnergyHead(MLP(2, hidden_features=16, depth=1, time_features=8)).double())
    loss = model.loss(torch.randn(16, 2, dtype=torch.float64))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with torch.no_grad():
        out = model.net(torch.randn(4, 2, dtype=torch.float64), torch.rand(4, dtype=torch.float64))
    assert not out.requires_grad


def test_sigma_squared_weighting_is_the_epsilon_loss_in_score_space() -> None:
    """λ = σ²: σ²·‖s + x₀/σ‖² = ‖σ·s + x₀‖², with s = −∇ₓE."""
    torch.manual_seed(2)
    model = energy_model(EnergyHead(MLP(2, hidden_features=16, depth=1, time_features=8)).double())
    x1, x0 = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    t = torch.rand(6, dtype=torch.float64)
    c = model.schedule.coefficients(t)
    alpha, sigma = c.alpha[:, None], c.sigma[:, None]
    x_t = alpha * x1 + sigma * x0
    expected = ((sigma * model.net(x_t, t) + x0) ** 2).mean()
    torch.testing.assert_close(model.loss(x1, x0=x0, t=t), expected, rtol=1e-10, atol=0)


def test_bad_energy_networks_and_options_raise() -> None:
    class Wide(torch.nn.Module):
        def forward(self, x: torch.Tensor, t: torch.Tensor, cond: object = None) -> torch.Tensor:
            return x.sum(1, keepdim=True)

    with pytest.raises(ValueError, match=r"one scalar per example, shape \(4,\)"):
        EnergyField(Wide())(torch.randn(4, 2), torch.rand(4))
    with pytest.raises(ValueError, match="unknown energy head"):
        EnergyHead(MLP(2), "cosine")
    with pytest.raises(ValueError, match="sets \\['target'\\] itself"):
        energy_model(EnergyHead(MLP(2)), target="velocity")
    with pytest.raises(TypeError, match="not an EnergyField"):
        classify(VectorFieldModel(MLP(2, num_classes=2)), torch.randn(3, 2), 2)
    with pytest.raises(TypeError, match="null_condition"):
        VectorFieldModel(EnergyField(EnergyHead(MLP(2))), target="score").sample(
            2, torch.zeros(2, dtype=torch.long), steps=1, guidance=2.0)


def test_energy_field_on_images_with_guidance_and_every_solver_family() -> None:
    """The UNet-style image backbone under the l2 head: loss, CFG sampling, ODE and diffusion solvers."""
    torch.manual_seed(3)
    model = energy_model(EnergyHead(ImageField(2, num_classes=3)), event_shape=(2, 5, 5), cond_dropout=0.3)
    labels = torch.tensor([0, 1, 2, 1])
    loss = model.loss(torch.randn(4, 2, 5, 5), labels)
    loss.backward()
    assert torch.isfinite(loss)
    for solver in ("euler", "heun", "ddim", "euler_maruyama"):
        out = model.sample(4, labels, steps=2, solver=solver, guidance=1.5)
        assert out.shape == (4, 2, 5, 5) and torch.isfinite(out).all(), solver


def test_classify_is_the_bayes_posterior_of_normalised_class_energies() -> None:
    """With E(x, h) = −log p(x | h) exactly, softmax(−E) is p(h | x) for equal class priors."""
    schedule = VPSchedule()
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]], dtype=torch.float64)
    covs = torch.stack([torch.eye(2, dtype=torch.float64) * s for s in (0.3, 0.5, 0.8)])
    model = VectorFieldModel(EnergyField(GaussianEnergy(schedule, means, covs)), schedule=schedule,
                             target="score")
    x = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    labels, probs = classify(model, x, 3, batch_size=7)
    log_lik = torch.stack([torch.distributions.MultivariateNormal(means[h], covs[h]).log_prob(x)
                           for h in range(3)], 1)
    # t_end is 1 on the VP path, where σ ≈ 0.01 adds 1e-4 to each variance
    torch.testing.assert_close(probs, torch.softmax(log_lik, 1), atol=2e-3, rtol=0)
    assert torch.equal(labels, log_lik.argmax(1))
    torch.testing.assert_close(probs.sum(1), torch.ones(50, dtype=torch.float64))


def _product_moments(m1: torch.Tensor, c1: torch.Tensor, m2: torch.Tensor,
                     c2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    precision = torch.linalg.inv(c1) + torch.linalg.inv(c2)
    cov = torch.linalg.inv(precision)
    return cov @ (torch.linalg.solve(c1, m1) + torch.linalg.solve(c2, m2)), cov


def test_composition_mcmc_matches_the_product_and_naive_score_addition_does_not() -> None:
    """Two 2-D Gaussian experts N(μ₁, Σ₁), N(μ₂, Σ₂): their product is N(μ, Σ), Σ⁻¹ = Σ₁⁻¹ + Σ₂⁻¹.

    Metropolis-corrected annealed MCMC on E₁ + E₂ reaches the product's moments; the probability-flow
    ODE of the summed scores −∇E₁(x, t) − ∇E₂(x, t) does not (the sum of the diffused experts'
    scores is not the score of the diffused product).
    """
    schedule = VPSchedule()
    means = torch.tensor([[-1.5, 0.0], [1.0, 1.0]], dtype=torch.float64)
    covs = torch.tensor([[[1.0, 0.6], [0.6, 1.0]], [[0.5, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    model = VectorFieldModel(EnergyField(GaussianEnergy(schedule, means, covs)), schedule=schedule,
                             target="score", event_shape=(2,))
    first, second = conditioned(model, torch.tensor([0])), conditioned(model, torch.tensor([1]))
    product = compose((1.0, first), (1.0, second))
    mean, cov = _product_moments(means[0], covs[0], means[1], covs[1])

    generator = torch.Generator().manual_seed(5)
    mcmc = sample_mcmc(model, 4000, sampler="mala", step_size=0.5, levels=20, steps_per_level=3,
                       energy=product, generator=generator)
    x = mcmc.samples.double()
    assert 0.3 < mcmc.acceptance_rate < 1
    tolerance = 4 * math.sqrt(float(cov.diagonal().max()) / x.shape[0])
    assert (x.mean(0) - mean).abs().max() < tolerance
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.05, rtol=0)

    naive = VectorFieldModel(EnergyField(lambda y, t, c=None: product(y, t)), schedule=schedule,
                             target="score", event_shape=(2,))
    ode = naive.sample(4000, steps=100, solver="heun", generator=torch.Generator().manual_seed(6))
    ode = ode.double()
    assert (ode.mean(0) - mean).abs().max() > 5 * tolerance
    assert (torch.cov(ode.T).diagonal() < 0.5 * cov.diagonal()).all()  # it collapses instead


def test_ode_likelihood_of_an_exact_energy_equals_minus_the_energy() -> None:
    """The probability-flow ODE of −∇E (exact divergence, i.e. −ΔE) recovers log p = −E at t_end for a
    normalised energy: the learner's likelihood and the energy's agree."""
    schedule = VPSchedule()
    means = torch.tensor([[-1.0, 0.5]], dtype=torch.float64)
    covs = torch.tensor([[[1.0, 0.6], [0.6, 1.0]]], dtype=torch.float64)
    field = EnergyField(GaussianEnergy(schedule, means, covs))

    def source_log_prob(y: torch.Tensor) -> torch.Tensor:  # the exact marginal at t_start = 0
        return -field.energy(y, torch.zeros(y.shape[0], dtype=torch.float64))

    model = VectorFieldModel(field, schedule=schedule, target="score", event_shape=(2,),
                             source_log_prob=source_log_prob)
    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    ode = model.log_prob(x, rtol=1e-7, atol=1e-7)
    exact = -field.energy(x, torch.full((4,), model.t_end, dtype=torch.float64))
    torch.testing.assert_close(ode, exact, atol=1e-4, rtol=0)


def test_annealed_sampler_transports_by_ddim_steps_of_the_energy_score() -> None:
    """With MCMC steps too small to move, transport alone (deterministic DDIM steps of −∇E) carries the
    source to the data Gaussian; without transport the chains stay at the source."""
    schedule = VPSchedule()
    means = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    covs = torch.tensor([[[0.5, 0.2], [0.2, 0.3]]], dtype=torch.float64)
    model = VectorFieldModel(EnergyField(GaussianEnergy(schedule, means, covs)), schedule=schedule,
                             target="score", event_shape=(2,))
    start = torch.randn(4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    moved = sample_mcmc(model, start, torch.tensor([0]), step_size=1e-8, levels=100,
                        generator=torch.Generator().manual_seed(9))
    assert moved.evaluations == 101 * 2
    assert (moved.samples.mean(0) - means[0]).abs().max() < 0.05
    torch.testing.assert_close(torch.cov(moved.samples.T), covs[0], atol=0.05, rtol=0)
    still = sample_mcmc(model, start, torch.tensor([0]), step_size=1e-8, levels=100, transport=False,
                        generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(still.samples, start, atol=2e-2, rtol=0)  # √(2η) noise only
