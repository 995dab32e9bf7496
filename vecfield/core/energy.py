"""Energy-based models on the shared learner: a scalar energy as a conservative vector field.

An energy E(x, t, h) defines the Gibbs–Boltzmann density of the path's marginal at flow time t,

    p_t(x | h) = exp(−E(x, t, h)) / Z_t(h),      so   ∇ₓ log p_t(x | h) = −∇ₓE(x, t, h),

and the score that diffusion learns is the field −∇ₓE. ``EnergyField`` turns any scalar network
``energy(x_t, t, cond) -> (B,)`` into the vector-field call ``(x_t, t, cond) -> (B, …)`` by autograd
(with ``create_graph`` while gradients are recorded, so the loss trains the energy through its
gradient). Used with ``target="score"`` in ``VectorFieldModel`` (``energy_model`` builds one), every
objective, solver, guidance and likelihood of the learner works unchanged.

Training (``energy_model``) is denoising score matching with the σ_t² weighting of Song & Ermon
(2019): λ(t)·‖−∇ₓE(x_t) + x₀/σ_t‖² = ‖σ_t∇ₓE(x_t) − x₀‖², the ε-prediction loss in score space.
The energy is not divided by σ_t (NCSN's output scaling): near the data end that division turns
small errors of the network into large errors of the energy, and on a variance-preserving path
−log p_t is O(1) at every t anyway.

Energy heads over a vector-field backbone f (Du et al. 2023, "Reduce, Reuse, Recycle"):
  - ``"l2"``:  E(x) = ½‖x − f(x)‖²    (summed over the event)
  - ``"dot"``: E(x) = ⟨x, f(x)⟩

With class-conditional energies E(x, h), ``classify`` returns argmin_h E and p(h | x) =
softmax_h(−E(x, h)) (JEM, Grathwohl et al. 2019).
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from vecfield.core.ais import AISResult, annealed_importance_sampling, gaussian_energy, time_path
from vecfield.core.conditions import Condition
from vecfield.core.mcmc import AnnealedResult, annealed_mcmc
from vecfield.core.model import VectorFieldModel
from vecfield.core.objective import UniformTime
from vecfield.core.schedules import PathCoefficients, Schedule, get_schedule
from vecfield.core.targets import endpoints

HEADS: tuple[str, ...] = ("l2", "dot")
#: An energy over flow time: (x (B, …), t (B,)) -> (B,).
EnergyFn = Callable[[Tensor, Tensor], Tensor]


def check_energy_output(energy: Tensor, x: Tensor) -> Tensor:
    """Return ``energy`` if it has shape (B,) for x (B, …); else raise ValueError saying what to return."""
    if not torch.is_tensor(energy) or energy.shape != (x.shape[0],):
        got = tuple(energy.shape) if torch.is_tensor(energy) else type(energy).__name__
        raise ValueError(f"an energy network must return one scalar per example, shape ({x.shape[0]},), "
                         f"got {got}; sum or reduce the event dimensions in the network")
    return energy


class EnergyHead(nn.Module):
    """Scalar energy from a vector-field backbone f (x_t, t, cond) -> (B, …) of x_t's shape.

    kind "l2": E = ½‖x − f(x, t, c)‖²; kind "dot": E = ⟨x, f(x, t, c)⟩ (sums over the event). Returns (B,).
    """

    def __init__(self, backbone: nn.Module, kind: str = "l2") -> None:
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"unknown energy head {kind!r}; choose one of {list(HEADS)}")
        self.backbone, self.kind = backbone, kind
        features = getattr(backbone, "features", None)
        if isinstance(features, int):
            self.features = features

    def forward(self, x_t: Tensor, t: Tensor, cond: Condition = None) -> Tensor:
        f = self.backbone(x_t, t, cond)
        if f.shape != x_t.shape:
            raise ValueError(f"the energy head's backbone must return x_t's shape {tuple(x_t.shape)}, "
                             f"got {tuple(f.shape)}")
        if self.kind == "l2":
            return 0.5 * ((x_t - f) ** 2).flatten(1).sum(1)
        return (x_t * f).flatten(1).sum(1)

    def null_condition(self, cond: Condition) -> Condition:
        """The backbone's null condition (classifier-free guidance)."""
        return _null_condition(self.backbone, cond)


def _null_condition(net: nn.Module, cond: Condition) -> Condition:
    null = getattr(net, "null_condition", None)
    if null is None:
        raise TypeError(f"{type(net).__name__} has no null_condition(cond); classifier-free guidance needs a "
                        "backbone with a null token (e.g. MLP(..., num_classes=K))")
    return null(cond)


class EnergyField(nn.Module):
    """The conservative field −∇ₓE(x_t, t, cond) of a scalar energy network, as a vector field.

    energy: ``(x_t (B, …), t (B,), cond) -> (B,)``. Call: (x_t, t, cond) -> (B, …), differentiable in
    the parameters while grad mode is on.
    """

    def __init__(self, energy: nn.Module) -> None:
        super().__init__()
        self.net = energy
        features = getattr(energy, "features", None)
        if isinstance(features, int):
            self.features = features

    def energy(self, x_t: Tensor, t: Tensor, cond: Condition = None) -> Tensor:
        """E(x_t, t, cond) (B,), in nats: −log p_t(x_t | cond) up to a constant in x."""
        return check_energy_output(self.net(x_t, t, cond), x_t)

    def forward(self, x_t: Tensor, t: Tensor, cond: Condition = None) -> Tensor:
        """−∇ₓE(x_t, t, cond), shape of x_t; graph kept (create_graph) when grad mode is on."""
        create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            x = x_t if x_t.requires_grad else x_t.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x, t, cond).sum(), x, create_graph=create_graph)
        return -grad

    def null_condition(self, cond: Condition) -> Condition:
        """The energy network's null condition (classifier-free guidance)."""
        return _null_condition(self.net, cond)


def energy_model(energy: nn.Module, schedule: str | Schedule = "vp", **options: Any) -> VectorFieldModel:
    """A ``VectorFieldModel`` that learns ``energy`` by denoising score matching.

    The field is ``EnergyField(energy)`` with the score target and the σ_t² weighting
    (the loss is ‖σ_t∇ₓE(x_t) − x₀‖², module docstring); sampling defaults to the probability-flow
    ODE (heun, 50 steps). Where σ vanishes at t = 1 the interval ends at t = 1 − 10⁻³.
    ``options``: any other ``VectorFieldModel`` option (solver, steps, cond_dropout, event_shape …).
    """
    schedule = get_schedule(schedule)
    fixed = {"target", "weighting", "schedule"} & set(options)
    if fixed:
        raise ValueError(f"energy_model sets {sorted(fixed)} itself (score target, σ² weighting); "
                         "drop them from the options")
    sigma_end = float(schedule.coefficients(torch.ones(1, dtype=torch.float64)).sigma[0])
    defaults: dict[str, Any] = {"solver": "heun", "steps": 50}
    if sigma_end == 0:
        defaults["t_end"] = 1 - 1e-3
    return VectorFieldModel(EnergyField(energy), "flow_matching", schedule=schedule,
                            target="score", weighting="sigma_squared", **{**defaults, **options})


def field_energy(model: VectorFieldModel) -> EnergyField:
    """The ``EnergyField`` of an energy model; TypeError for a model whose network is not one."""
    if not isinstance(model.net, EnergyField):
        raise TypeError(f"this model's network is a {type(model.net).__name__}, not an EnergyField; "
                        "build it with vecfield.core.energy_model(energy_network)")
    return model.net


@torch.no_grad()
def classify(model: VectorFieldModel, x: Tensor, num_classes: int, t: float | None = None,
             batch_size: int = 1024) -> tuple[Tensor, Tensor]:
    """Energy classifier: labels argmin_h E(x, t, h) (B,) and p(h | x) = softmax_h(−E(x, t, h)) (B, K).

    x: (B, …) data; t: flow time of the energy (default the model's t_end, the data end).
    The K energies of each example are evaluated in batches of ``batch_size`` (example, class) pairs.
    """
    field = field_energy(model)
    if num_classes < 2:
        raise ValueError(f"classification needs at least 2 classes, got {num_classes}")
    time = model.t_end if t is None else t
    labels = torch.arange(num_classes, device=x.device)
    repeated = x.repeat_interleave(num_classes, 0)
    conds = labels.repeat(x.shape[0])
    times = torch.full((repeated.shape[0],), float(time), dtype=x.dtype, device=x.device)
    energies = torch.cat([field.energy(repeated[i:i + batch_size], times[i:i + batch_size],
                                       conds[i:i + batch_size])
                          for i in range(0, repeated.shape[0], batch_size)])
    log_p = torch.log_softmax(-energies.reshape(x.shape[0], num_classes), dim=1)
    return log_p.argmax(1), log_p.exp()


def _levels(model: VectorFieldModel, levels: int) -> Tensor:
    if levels < 1:
        raise ValueError(f"the number of annealing levels must be ≥ 1, got {levels}")
    return torch.linspace(model.t_start, model.t_end, levels + 1, dtype=torch.float64)


def _step_sizes(model: VectorFieldModel, times: Tensor, step_size: float, data_scale: float) -> list[float]:
    if not data_scale > 0:
        raise ValueError(f"data_scale must be positive, got {data_scale}")
    c = model.schedule.coefficients(times)
    return [step_size * float(v) for v in c.alpha**2 * data_scale**2 + c.sigma**2]


def sample_mcmc(model: VectorFieldModel, n_or_x0: int | Tensor, cond: Condition = None, sampler: str = "mala",
                step_size: float = 0.05, levels: int = 50, steps_per_level: int = 1, data_scale: float = 1.0,
                energy: EnergyFn | None = None, generator: torch.Generator | None = None,
                leapfrog_steps: int = 3, transport: bool = True) -> AnnealedResult:
    """Annealed MCMC with the energy itself from the source (t_start) to the data end (t_end).

    At each of the ``levels`` + 1 flow times t_k of a uniform grid the chains take ``steps_per_level``
    transitions of ``sampler`` on E(·, t_k, cond) with step η_k = step_size·v_k, v_k = α²_{t_k}·s² + σ²_{t_k}
    the variance of the path's marginal for data of scale s = ``data_scale``. With ``transport`` the
    chains first move from t_{k−1} to t_k by the deterministic DDIM step of the energy's own score
    s = −∇ₓE: (x̂₁, x̂₀) from (x, s) (``targets.endpoints``), x ← α_k·x̂₁ + σ_k·x̂₀ (Du et al. 2023's
    reverse step with MCMC correction); without it only the MCMC moves them. ``energy`` replaces the
    model's own (x, t) -> (B,) energy, e.g. a composition (``compose``).
    n_or_x0: a number of chains (drawn from N(0, σ²_{t_start} I)) or the starting states (B, …).
    Returns the final states, the acceptance rate per level and the number of gradient evaluations.
    """
    energy = energy if energy is not None else conditioned(model, cond)
    if isinstance(n_or_x0, int):
        start = torch.tensor([model.t_start], dtype=torch.float64)
        sigma = float(model.schedule.coefficients(start).sigma[0])
        dtype, device = model._dtype_device()
        x = sigma * model.coupling.source((n_or_x0, *model._event_shape()), generator, dtype, device)
    else:
        x = n_or_x0
    times = _levels(model, levels)
    steps = _step_sizes(model, times, step_size, data_scale)
    coefficients = model.schedule.coefficients(times.to(x.dtype))

    def ddim_step(y: Tensor, gradient: Tensor, k: int) -> Tensor:
        before = PathCoefficients(*(c[k - 1].expand(y.shape[0]) for c in
                                    (coefficients.alpha, coefficients.sigma, coefficients.d_alpha,
                                     coefficients.d_sigma))).expand_as(y)
        x1, x0 = endpoints(-gradient, "score", y, before)
        return coefficients.alpha[k] * x1 + coefficients.sigma[k] * x0

    return annealed_mcmc(time_path(energy, times.to(x.dtype)), x, steps, sampler, steps_per_level, generator,
                         leapfrog_steps, ddim_step if transport else None)


def log_partition(model: VectorFieldModel, chains: int = 1000, cond: Condition = None, levels: int = 200,
                  sampler: str = "hmc", step_size: float = 0.05, mcmc_steps: int = 1, data_scale: float = 1.0,
                  generator: torch.Generator | None = None, leapfrog_steps: int = 3) -> AISResult:
    """AIS estimate of log Z at the data end: log ∫exp(−E(x, t_end, cond)) dx, with its ESS.

    The path starts at the normalised Gaussian N(0, σ²_{t_start} I) (the source) and follows the
    model's own energies E(·, t_k, cond) on ``levels`` + 1 uniform flow times to t_end; transitions use
    the steps of ``sample_mcmc``. ``cond`` must have ``chains`` entries when given. Then
    log p(x | cond) = −E(x, t_end, cond) − log Z.
    """
    energy = conditioned(model, cond)
    dtype, device = model._dtype_device()
    times = _levels(model, levels)
    sigma_start = float(model.schedule.coefficients(times[:1]).sigma[0])
    base = gaussian_energy(sigma_start)
    x0 = sigma_start * model.coupling.source((chains, *model._event_shape()), generator, dtype, device)
    energies = [base, *time_path(energy, times.to(dtype))]
    steps = _step_sizes(model, times, step_size, data_scale)
    return annealed_importance_sampling(energies, x0, sampler, steps, mcmc_steps, generator, leapfrog_steps)


def compose(*terms: tuple[float, EnergyFn]) -> EnergyFn:
    """Σ_i w_i·E_i(x, t): a product of experts (w > 0) with negations (w < 0); (x, t) -> (B,).

    Each term is (weight, energy (x, t) -> (B,)); ``conditioned(model, cond)`` gives one from an
    energy model. Sample the composition with ``sample_mcmc(model, n, energy=compose(...))``.
    """
    if not terms:
        raise ValueError("compose needs at least one (weight, energy) term")

    def energy(x: Tensor, t: Tensor) -> Tensor:
        return sum(weight * term(x, t) for weight, term in terms)  # type: ignore[return-value]

    return energy


def conditioned(model: VectorFieldModel, cond: Condition = None) -> EnergyFn:
    """(x, t) -> E(x, t, cond) of an energy model; a tensor ``cond`` of one entry (1,) is broadcast."""
    field = field_energy(model)

    def energy(x: Tensor, t: Tensor) -> Tensor:
        c = cond
        if torch.is_tensor(c) and c.shape[:1] == (1,) and x.shape[0] != 1:
            c = c.expand(x.shape[0], *c.shape[1:])
        return field.energy(x, t, c)

    return energy


def classification_loss(model: VectorFieldModel, x1: Tensor, labels: Tensor, num_classes: int,
                        generator: torch.Generator | None = None, t_min: float = 0.5) -> Tensor:
    """JEM's classifier term on the path: cross-entropy of p(h | x_t) = softmax_h(−E(x_t, t, h)).

    x1: data (B, …) with labels (B,) in [0, K); t uniform on [max(t_min, t_start), t_end] (near the
    data, where the class is still visible) and x_t = α_t·x₁ + σ_t·x₀ with x₀ from the coupling.
    Costs K energy evaluations per example.
    Score matching fixes E only up to a constant per (t, h); this term ties the constants together
    so that ``classify`` returns calibrated p(h | x).
    """
    field = field_energy(model)
    if labels.shape != (x1.shape[0],) or labels.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"labels must be integers of shape ({x1.shape[0]},), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    batch = x1.shape[0]
    low = max(t_min, model.t_start)
    if not low < model.t_end:
        raise ValueError(f"t_min must lie below the model's t_end = {model.t_end}, got {t_min}")
    t = UniformTime(low, model.t_end)(batch, generator, x1.dtype, x1.device)
    c = model.schedule.coefficients(t).expand_as(x1)
    x_t = c.alpha * x1 + c.sigma * model.coupling.pair(x1, generator)
    classes = torch.arange(num_classes, device=x1.device)
    energies = field.energy(x_t.repeat_interleave(num_classes, 0), t.repeat_interleave(num_classes),
                            classes.repeat(batch))
    return nn.functional.cross_entropy(-energies.reshape(batch, num_classes), labels)
