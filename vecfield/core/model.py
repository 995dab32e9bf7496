"""``VectorFieldModel``: one learner for flow matching, diffusion, EDM and one-step forecasting.

    model = VectorFieldModel(net, method="flow_matching")
    loss = model.loss(x1, cond)                     # scalar; backpropagate it
    out = model.training_loss(x1, cond)             # LossOutput(loss, prediction, x_t, t), no host sync
    x = model.sample(1000, cond, steps=20, solver="heun", guidance=2.0)
    nats = model.log_prob(x, cond, divergence="hutchinson")

``method`` picks a preset of path, target, time sampler, weighting, coupling and default sampler;
every piece can be overridden by keyword (see ``OPTIONS``), and a misspelt keyword is an error.
The network is any vector field ``net(x_t, t, cond)`` whose output has x_t's shape; events may
be vectors (B, D), images (B, C, H, W) or grid fields (B, nodes, channels).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from vecfield.core.conditions import Condition, check_condition_batch
from vecfield.core.couplings import Coupling, NoiseSampler, ZeroCoupling, get_coupling, standard_normal
from vecfield.core.guidance import drop_condition, guided_output
from vecfield.core.likelihood import gaussian_log_prob, ode_log_prob
from vecfield.core.objective import LossOutput, Objective, TimeSampler, get_time_sampler, get_weighting
from vecfield.core.schedules import GaussianPath, PathCoefficients, Schedule, get_schedule
from vecfield.core.solvers import GRIDS, Churn, Sampling, Solver, get_solver, time_grid
from vecfield.core.targets import check_target, convert, endpoints, singular_endpoints


@dataclass(frozen=True)
class Options:
    """Every choice a ``VectorFieldModel`` makes; presets in ``METHODS`` fill them in.

    schedule: name or Schedule          target: velocity | epsilon | x1 | score
    time_sampler: uniform | logit_normal | lognormal_sigma | ddpm_steps | fixed, or a TimeSampler
    weighting: uniform | edm | sigma_squared (λ = σ_t²)      coupling: independent | ot | zero, or a Coupling
    noise: source sampler (shape, generator, dtype, device) -> Tensor (default i.i.d. N(0, 1))
    precondition: EDM's c_skip/c_out/c_in around the network (target x1)   sigma_data: EDM's σ_d
    cond_dropout: probability of the null condition at training (classifier-free guidance)
    solver, steps, grid: the default sampler (a name in ``SOLVERS`` or a Solver), its number of
        steps and time grid (uniform | karras)
    churn: the settings of the ``stochastic_heun`` sampler (``vecfield.core.solvers.Churn``)
    t_start, t_end: integration interval (None: [0, 1], moved inwards by 1e-3 where the target's
        conversion to a velocity is singular)
    event_shape: shape of one example, needed by sample(n) when the net has no ``features``
    source_log_prob: log density of the source at t_start for log_prob (default Gaussian)
    """

    schedule: str | Schedule = "condot"
    target: str = "velocity"
    time_sampler: str | TimeSampler = "uniform"
    weighting: str = "uniform"
    coupling: str | Coupling = "independent"
    noise: NoiseSampler = standard_normal
    precondition: bool = False
    sigma_data: float = 1.0
    cond_dropout: float = 0.0
    solver: str | Solver = "heun"
    steps: int = 50
    grid: str = "uniform"
    churn: Churn = field(default_factory=Churn)
    t_start: float | None = None
    t_end: float | None = None
    event_shape: tuple[int, ...] | None = None
    source_log_prob: Any = None


METHODS: dict[str, dict[str, Any]] = {
    "flow_matching": {},
    "ot_flow_matching": {"coupling": "ot"},
    "ddpm": {"schedule": "ddpm", "target": "epsilon", "time_sampler": "ddpm_steps", "solver": "ddpm",
             "steps": 1000},
    "vp_diffusion": {"schedule": "vp", "target": "epsilon", "solver": "euler_maruyama", "steps": 500},
    "edm": {"schedule": "edm", "target": "x1", "precondition": True, "time_sampler": "lognormal_sigma",
            "weighting": "edm", "solver": "heun", "steps": 18},
    "deterministic": {"coupling": "zero", "time_sampler": "fixed", "solver": "euler", "steps": 1},
}
OPTIONS: tuple[str, ...] = tuple(Options.__dataclass_fields__)
EDGE = 1e-3  # how far t_start / t_end move inwards from a singular endpoint


class VectorFieldModel(nn.Module):
    """A backbone ``net(x_t, t, cond)`` trained and integrated as one vector-field learner.

    ``VectorFieldModel(net, method=..., **options)``: ``method`` ∈ ``METHODS``; options override the
    preset (``OPTIONS`` lists them; unknown names raise ValueError).
    """

    def __init__(self, net: nn.Module, method: str = "flow_matching", **options: Any) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; valid options are {sorted(OPTIONS)}")
        if not callable(net):
            raise TypeError("net must be callable as net(x_t, t, cond) -> Tensor")
        self.net = net
        self.method = method
        self.options = replace(Options(), **{**METHODS[method], **options})
        o = self.options
        check_target(o.target)
        get_solver(o.solver)
        if o.grid not in GRIDS:
            raise ValueError(f"unknown time grid {o.grid!r}; choose one of {list(GRIDS)}")
        if o.precondition and o.target != "x1":
            raise ValueError("EDM preconditioning predicts the data x1; "
                             "set target='x1' or precondition=False")
        if not 0 <= o.cond_dropout <= 1:
            raise ValueError(f"cond_dropout must lie in [0, 1], got {o.cond_dropout}")
        if o.sigma_data <= 0:
            raise ValueError(f"sigma_data must be positive, got {o.sigma_data}")
        self.schedule = get_schedule(o.schedule)
        self.path = GaussianPath(self.schedule)
        self.coupling = get_coupling(o.coupling, o.noise)
        weighting = get_weighting(o.weighting, o.sigma_data)
        sampler = get_time_sampler(o.time_sampler, self.schedule)
        self.objective = Objective(self.path, o.target, sampler, weighting)
        self.t_start, self.t_end = self._interval()

    def _interval(self) -> tuple[float, float]:
        o = self.options
        ends = self.schedule.coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64))
        singular = singular_endpoints(o.target, ends).tolist()
        t_start = o.t_start if o.t_start is not None else (EDGE if singular[0] else 0.0)
        t_end = o.t_end if o.t_end is not None else (1 - EDGE if singular[1] else 1.0)
        if not 0 <= t_start < t_end <= 1:
            raise ValueError(f"need 0 ≤ t_start < t_end ≤ 1, got {t_start}, {t_end}")
        return t_start, t_end

    # ---------------------------------------------------------------- network in target space
    def _coefficients(self, t: Tensor, x: Tensor) -> PathCoefficients:
        return self.schedule.coefficients(t).expand_as(x)

    def _net(self, x: Tensor, t: Tensor, cond: Condition, guidance: float | None) -> Tensor:
        if guidance is None:
            return self.net(x, t, cond)
        return guided_output(self.net, x, t, cond, guidance)

    def predict(self, x_t: Tensor, t: Tensor, cond: Condition = None,
                guidance: float | None = None) -> Tensor:
        """The prediction in the model's target space at x_t (B, …), t (B,).

        With EDM preconditioning (σ̃ = σ_t/α_t, x̂ = x_t/α_t):
        D = c_skip·x̂ + c_out·F(c_in·x̂, t, c), c_skip = σ_d²/(σ̃² + σ_d²), c_out = σ̃σ_d/√(σ̃² + σ_d²),
        c_in = 1/√(σ̃² + σ_d²); the network sees flow time t (a monotone function of EDM's c_noise).
        """
        if not self.options.precondition:
            return self._net(x_t, t, cond, guidance)
        c = self._coefficients(t, x_t)
        sd = self.options.sigma_data
        scaled, noise = x_t / c.alpha, c.sigma / c.alpha
        norm = torch.sqrt(noise**2 + sd**2)
        out = self._net(scaled / norm, t, cond, guidance)
        return (sd**2 / norm**2) * scaled + (noise * sd / norm) * out

    def velocity(self, x_t: Tensor, t: Tensor, cond: Condition = None,
                 guidance: float | None = None) -> Tensor:
        """dx/dt of the probability-flow ODE at x_t (B, …), t (B,)."""
        prediction = self.predict(x_t, t, cond, guidance)
        return convert(prediction, self.options.target, "velocity", x_t, self._coefficients(t, x_t))

    def endpoints(self, x_t: Tensor, t: Tensor, cond: Condition = None,
                  guidance: float | None = None) -> tuple[Tensor, Tensor]:
        """The predicted (x̂₁, x̂₀) at x_t (B, …), t (B,)."""
        prediction = self.predict(x_t, t, cond, guidance)
        return endpoints(prediction, self.options.target, x_t, self._coefficients(t, x_t))

    # ---------------------------------------------------------------- training
    def training_loss(self, x1: Tensor, cond: Condition = None, x0: Tensor | None = None,
                      weight: Tensor | None = None, t: Tensor | None = None,
                      generator: torch.Generator | None = None) -> LossOutput:
        """The training loss on data x₁ (B, …) with the prediction and x_t it came from.

        x0: a caller-supplied source paired with x₁ (e.g. the current state); default from the coupling.
        weight: per-element weights broadcastable to x₁ (e.g. latitude × level × variable).
        t: per-example flow times (B,) overriding the time sampler.
        No host synchronization: a non-finite loss is returned as it is, for the caller (the
        ``Trainer``) to check when it synchronizes anyway; ``loss`` checks at once.
        """
        if not torch.is_tensor(x1) or not x1.is_floating_point() or x1.ndim < 2:
            raise ValueError("x1 must be a floating-point tensor of shape (batch, …)")
        check_condition_batch(cond, x1.shape[0])
        if x0 is None:
            x0 = self.coupling.pair(x1, generator)
        elif x0.shape != x1.shape:
            raise ValueError(f"the supplied source x0 {tuple(x0.shape)} must have "
                             f"the data's shape {tuple(x1.shape)}")
        if self.options.cond_dropout:
            cond = drop_condition(self.net, cond, self.options.cond_dropout, generator)
        return self.objective.loss(self.predict, x1, x0, cond, weight=weight, t=t, generator=generator)

    def loss(self, x1: Tensor, cond: Condition = None, x0: Tensor | None = None, weight: Tensor | None = None,
             t: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Scalar training loss on data x₁ (B, …); arguments as ``training_loss``.

        A NaN anywhere in the inputs reaches the loss, so one scalar check (a host sync) stands in
        for a scan of the whole batch; the inputs are searched, and the culprit named, only when the
        loss is not finite.
        """
        loss = self.training_loss(x1, cond, x0, weight, t, generator).loss
        if not math.isfinite(loss.item()):
            raise_on_nan_inputs(x1, x0, weight)
        return loss

    def predicted_data(self, output: LossOutput) -> Tensor:
        """x̂₁, the data that the prediction of ``training_loss`` implies at (x_t, t): for the
        deterministic method (x_t = x₀ = 0 at t = 0, velocity target) one Euler step over [0, 1]."""
        return endpoints(output.prediction, self.options.target, output.x_t,
                         self._coefficients(output.t, output.x_t))[0]

    # ---------------------------------------------------------------- sampling
    def _event_shape(self) -> tuple[int, ...]:
        if self.options.event_shape is not None:
            return tuple(self.options.event_shape)
        features = getattr(self.net, "features", None)
        if isinstance(features, int):
            return (features,)
        raise ValueError("sample(n) needs the shape of one example: build the model with event_shape=(…) "
                         "or pass the source tensor x0 instead of n")

    def _dtype_device(self) -> tuple[torch.dtype, torch.device]:
        parameter = next(self.net.parameters(), None) if isinstance(self.net, nn.Module) else None
        if parameter is None:
            return torch.get_default_dtype(), torch.device("cpu")
        return parameter.dtype, parameter.device

    @torch.no_grad()
    def sample(self, n_or_x0: int | Tensor, cond: Condition = None, steps: int | None = None,
               solver: str | None = None, guidance: float | None = None,
               generator: torch.Generator | None = None,
               draw_noise: Callable[[], Tensor] | None = None) -> Tensor:
        """Integrate from the source at t_start to the data at t_end.

        n_or_x0: a number of samples (source drawn from the coupling, scaled by σ_{t_start}), or the
        source state itself (B, …) (e.g. the current weather state for the one-step forecaster).
        guidance: classifier-free guidance scale w (None: plain conditional field).
        draw_noise: ``stochastic_heun``'s churn noise, one source draw of x's shape per call (default:
        the ``noise`` option with ``generator``).
        Returns (B, …).
        """
        o = self.options
        chosen = get_solver(solver if solver is not None else o.solver)
        steps = steps if steps is not None else o.steps
        if isinstance(n_or_x0, int):
            if n_or_x0 < 1:
                raise ValueError(f"the number of samples must be positive, got {n_or_x0}")
            dtype, device = self._dtype_device()
            start = self.schedule.coefficients(torch.tensor([self.t_start], dtype=torch.float64))
            source = self.coupling.source((n_or_x0, *self._event_shape()), generator, dtype, device)
            x = float(start.sigma[0]) * source if not isinstance(self.coupling, ZeroCoupling) else source
        elif torch.is_tensor(n_or_x0) and n_or_x0.is_floating_point():
            x = n_or_x0
        else:
            raise TypeError("n_or_x0 must be a number of samples "
                            "or a floating-point source tensor (batch, …)")
        check_condition_batch(cond, x.shape[0])

        def velocity(y: Tensor, t: Tensor, c: Any) -> Tensor:
            return self.velocity(y, t, c, guidance)

        def predicted_endpoints(y: Tensor, t: Tensor, c: Any) -> tuple[Tensor, Tensor]:
            return self.endpoints(y, t, c, guidance)

        def source_noise() -> Tensor:
            return o.noise(tuple(x.shape), generator, x.dtype, x.device)

        sampling = Sampling(velocity, predicted_endpoints, self.schedule, cond, self.t_start, self.t_end,
                            draw_noise or source_noise, generator, o.churn)
        grid = None if chosen.adaptive else time_grid(steps, o.grid, self.schedule, self.t_start,
                                                      self.t_end).to(x.device)
        return chosen(x, grid, sampling)

    # ---------------------------------------------------------------- likelihood
    def log_prob(self, x: Tensor, cond: Condition = None, divergence: str = "exact", method: str = "dopri5",
                 steps: int = 100, rtol: float = 1e-5, atol: float = 1e-5, guidance: float | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """log p(x) in nats per example (B,) by the probability-flow ODE from t_end back to t_start.

        divergence: "exact" (one backward pass per dimension) or "hutchinson" (one Rademacher probe).
        The source density is ``source_log_prob`` or, by default, N(0, σ_{t_start}² I).
        """
        check_condition_batch(cond, x.shape[0])
        source_log_prob = self.options.source_log_prob
        if source_log_prob is None:
            if isinstance(self.coupling, ZeroCoupling) or self.options.noise is not standard_normal:
                raise ValueError("log_prob needs the source density: build the model with source_log_prob=… "
                                 "(a zero or custom source has no default density)")
            start = self.schedule.coefficients(torch.tensor([self.t_start], dtype=torch.float64))
            std = float(start.sigma[0])

            def source_log_prob(y: Tensor) -> Tensor:
                return gaussian_log_prob(y, std)

        return ode_log_prob(lambda y, t, c: self.velocity(y, t, c, guidance), x, source_log_prob, cond,
                            self.t_start, self.t_end, divergence, method, steps, rtol, atol, generator)


def raise_on_nan_inputs(x1: Tensor, x0: Tensor | None = None, weight: Tensor | None = None) -> None:
    """Raise ValueError naming the first of the data x₁, the source x₀ or the weights that has a NaN."""
    for name, value, fix in (("the training data x1", x1, "drop or impute those examples before training"),
                             ("the supplied source x0", x0, "drop or impute those examples before training"),
                             ("the loss weight", weight, "give finite weights (0 to ignore an element)")):
        if value is not None and bool(torch.isnan(value).any()):
            raise ValueError(f"{name} contains NaN; {fix}")


def network_calls(solver: str | Solver, steps: int) -> int:
    """Network evaluations (NFE) of a fixed-grid solver with ``steps`` steps (dopri5 is adaptive)."""
    chosen = get_solver(solver)
    if chosen.calls_per_step is None:
        raise ValueError(f"{chosen.name} is adaptive; its number of evaluations is known only after solving")
    return chosen.calls_per_step * steps
