"""A compact spectral shallow-water model on the sphere (numpy, float64).

Why our own: torch-harmonics ships a shallow-water solver, but its current release pins a torch
build that pulls several GB of CUDA libraries; the model below is ~300 lines of numpy and runs a
simulated year at T21 in seconds on one core.

**Equations** (vorticity–divergence form, Hack & Jakob 1992; Williamson et al. 1992, eq. 2–4),
for one layer or two stacked immiscible layers (top first). With μ = sin φ, U = u cos φ,
V = v cos φ, absolute vorticity η = ζ + f, f = 2Ω μ, layer thickness in geopotential units
Φ_h = g h, surface geopotential Φ_s = g h_s, kinetic energy E = (U² + V²) / (2 (1 − μ²)) and the
Montgomery potential M (one layer: M = Φ_s + g h, the free-surface geopotential; two layers:
M_top = Φ_s + g(h_top + h_bot), M_bot = M_top − (1 − ρ_top/ρ_bot) g h_top), in each layer:

    ∂ζ/∂t = −∇·(η v)                     − ζ/τ_d − κ_n ζ                              (1)
    ∂δ/∂t =  k·∇×(η v) − ∇²(M + E)       − δ/τ_d − κ_n δ                              (2)
    ∂Φ_h/∂t = −∇·(Φ_h v) ± (Φ_eq − Φ_h,top)/τ_r − κ_n Φ_h                            (3)

where for a vector (A, B) = (a cos φ, b cos φ)

    ∇·(a, b)  = [∂A/∂λ + (1 − μ²) ∂B/∂μ] / (a_E (1 − μ²))                            (4)
    k·∇×(a, b) = [∂B/∂λ − (1 − μ²) ∂A/∂μ] / (a_E (1 − μ²))                           (5)

τ_d is a Rayleigh drag time, τ_r a Newtonian relaxation time toward the equilibrium geopotential
Φ_eq (the forcing), and κ_n = (n(n+1) / (N(N+1)))^p / τ_h a ∇^{2p} hyperdiffusion that damps the
smallest resolved scale (total wavenumber N) with e-folding time τ_h. Drag acts on the bottom
layer; the relaxation adds mass to the top layer and (two layers) takes it from the bottom one.
Any of them can be switched off (``None``), which gives the unforced inviscid equations that
conserve each layer's mass and the total energy.

**Discretisation.** Fields are expanded in orthonormal spherical harmonics
Y_n^m = P̄_n^m(μ) e^{imλ} with triangular truncation n ≤ N, on a Gaussian grid (Gauss–Legendre
latitudes, equally spaced longitudes). Transforms are an FFT in longitude and a Gauss–Legendre
quadrature in latitude; μ-derivatives in (4)–(5) are moved onto P̄ by parts so only
H_n^m = (1 − μ²) dP̄_n^m/dμ is needed. Time stepping is semi-implicit leapfrog (gravity-wave
terms −∇²M in (2) and −Φ̄_h δ in (3) averaged over t ± Δt) with a Robert–Asselin–Williams filter;
hyperdiffusion and drag are implicit, the relaxation is lagged (evaluated at t − Δt).
"""

from dataclasses import dataclass, field

import numpy as np

EARTH_RADIUS = 6.37122e6  # m (Williamson et al. 1992)
EARTH_ROTATION = 7.292e-5  # s⁻¹
GRAVITY = 9.80616  # m s⁻²


def legendre_functions(truncation: int, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal associated Legendre functions P̄_n^m(μ) and H_n^m(μ) = (1 − μ²) dP̄_n^m/dμ.

    Normalised so that ∫_{−1}^{1} P̄_n^m(μ)² dμ = 1 (no Condon–Shortley phase). Computed by the
    stable three-term recursion μ P̄_n^m = ε_{n+1}^m P̄_{n+1}^m + ε_n^m P̄_{n−1}^m with
    ε_n^m = √((n² − m²)/(4n² − 1)), started from P̄_m^m = √((2m+1)/(2m)) (1 − μ²)^{1/2} P̄_{m−1}^{m−1},
    P̄_0^0 = 1/√2, and H from H_n^m = −n ε_{n+1}^m P̄_{n+1}^m + (n+1) ε_n^m P̄_{n−1}^m.

    mu: (J,) values in (−1, 1) → P, H of shape (J, N+1, N+1) indexed [j, m, n], zero where n < m.
    """
    mu = np.asarray(mu, dtype=np.float64)
    N = truncation
    P = np.zeros((mu.size, N + 1, N + 3))  # one extra degree for H
    sqrt_one_minus = np.sqrt(1.0 - mu**2)
    P[:, 0, 0] = 1.0 / np.sqrt(2.0)
    for m in range(1, N + 1):
        P[:, m, m] = np.sqrt((2 * m + 1) / (2 * m)) * sqrt_one_minus * P[:, m - 1, m - 1]
    m_index = np.arange(N + 1)
    n_index = np.arange(N + 3)
    eps = np.zeros((N + 1, N + 3))
    valid = n_index[None, :] > m_index[:, None]
    n2, m2 = n_index[None, :] ** 2, m_index[:, None] ** 2
    eps[valid] = np.sqrt(((n2 - m2) / (4.0 * n2 - 1.0))[valid])
    for m in range(N + 1):
        P[:, m, m + 1] = mu * P[:, m, m] / eps[m, m + 1]
        for n in range(m + 2, N + 3):
            P[:, m, n] = (mu * P[:, m, n - 1] - eps[m, n - 1] * P[:, m, n - 2]) / eps[m, n]
    degree = n_index[None, None, : N + 1]
    P_up = P[:, :, 1 : N + 2]
    P_down = np.concatenate([np.zeros_like(P[:, :, :1]), P[:, :, :N]], axis=-1)
    H = -degree * eps[None, :, 1 : N + 2] * P_up + (degree + 1) * eps[None, :, : N + 1] * P_down
    lower = n_index[None, : N + 1] < m_index[:, None]
    H[:, lower] = 0.0
    return P[:, :, : N + 1], H


def _complex_times_real(z: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Complex (M, K, A) @ real (M, A, B) → complex (M, K, B), as one real matmul on the stacked
    real and imaginary parts (half the work of a complex matmul)."""
    k = z.shape[1]
    out = np.matmul(np.concatenate([z.real, z.imag], axis=1), basis)  # (M, 2K, B)
    return out[:, :k] + 1j * out[:, k:]


class SphericalHarmonicSynthesis:
    """Spectral → grid at given latitudes (any, e.g. an equiangular grid) and nlon equal longitudes.

    Spectral arrays are complex (..., N+1, N+1) indexed [m, n] with zeros for n < m; a real field is
    f(λ, μ) = Σ_{m,n} c_mn P̄_n^m(μ) e^{imλ} + c.c. (m > 0 terms counted twice, m = 0 once).
    Longitudes are λ_k = 2πk / nlon, i.e. 0, 360/nlon, …, degrees.
    """

    def __init__(self, truncation: int, latitudes: np.ndarray, nlon: int, radius: float = EARTH_RADIUS):
        if nlon < 2 * truncation + 1:
            raise ValueError(
                f"nlon={nlon} cannot represent truncation T{truncation}; use nlon ≥ {2 * truncation + 1}"
            )
        self.truncation = truncation
        self.latitudes = np.asarray(latitudes, dtype=np.float64)  # degrees, (J,)
        if np.any(np.abs(self.latitudes) >= 90.0):
            raise ValueError(
                "latitudes must lie strictly between −90 and 90 degrees (winds are singular at the poles)"
            )
        self.nlon = nlon
        self.longitudes = 360.0 * np.arange(nlon) / nlon
        self.radius = radius
        self.mu = np.sin(np.deg2rad(self.latitudes))
        P, H = legendre_functions(truncation, self.mu)
        self._P_synth = np.ascontiguousarray(P.transpose(1, 2, 0))  # (M, N, J)
        self._H_synth = np.ascontiguousarray(H.transpose(1, 2, 0))
        self._im = 1j * np.arange(truncation + 1)[:, None]  # ∂/∂λ → i m, shape (M, 1)
        n = np.arange(truncation + 1)
        inverse_laplacian = np.zeros(truncation + 1)
        inverse_laplacian[1:] = -(radius**2) / (n[1:] * (n[1:] + 1.0))
        self._inverse_laplacian = inverse_laplacian  # (N,)

    def _legendre_synthesis(self, coeffs: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """(..., M, N) complex → Fourier coefficients (..., J, M) complex."""
        lead = coeffs.shape[:-2]
        c = coeffs.reshape(-1, *coeffs.shape[-2:])  # (K, M, N)
        fourier = _complex_times_real(c.transpose(1, 0, 2), basis).transpose(1, 2, 0)  # (K, J, M)
        return fourier.reshape(*lead, *fourier.shape[-2:])

    def _fourier_synthesis(self, fourier: np.ndarray) -> np.ndarray:
        """(..., J, M) complex → real (..., J, nlon)."""
        padded = np.zeros((*fourier.shape[:-1], self.nlon // 2 + 1), dtype=np.complex128)
        padded[..., : self.truncation + 1] = fourier
        return np.fft.irfft(padded * self.nlon, n=self.nlon, axis=-1)

    def scalar(self, coeffs: np.ndarray) -> np.ndarray:
        """Spectral (..., N+1, N+1) → grid (..., J, nlon)."""
        return self._fourier_synthesis(self._legendre_synthesis(coeffs, self._P_synth))

    def winds(self, vorticity: np.ndarray, divergence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spectral ζ, δ (..., N+1, N+1) → grid u, v (..., J, nlon) in m s⁻¹.

        With ψ = ∇⁻²ζ, χ = ∇⁻²δ: U = [∂χ/∂λ − (1−μ²)∂ψ/∂μ]/a, V = [∂ψ/∂λ + (1−μ²)∂χ/∂μ]/a,
        u = U/cos φ, v = V/cos φ.
        """
        psi = vorticity * self._inverse_laplacian
        chi = divergence * self._inverse_laplacian
        fp = self._legendre_synthesis(np.stack([psi, chi]), self._P_synth)  # (2, ..., J, M)
        fh = self._legendre_synthesis(np.stack([psi, chi]), self._H_synth)
        im = self._im[:, 0]
        U = (im * fp[1] - fh[0]) / self.radius
        V = (im * fp[0] + fh[1]) / self.radius
        cos_lat = np.sqrt(1.0 - self.mu**2)[:, None]
        u, v = self._fourier_synthesis(np.stack([U, V])) / cos_lat
        return u, v


class SphericalHarmonicTransform(SphericalHarmonicSynthesis):
    """Triangular truncation T``truncation`` on a Gaussian grid: analysis and synthesis.

    Grid fields are (..., nlat, nlon) with latitudes increasing (south → north) at the
    Gauss–Legendre nodes and longitudes 0, 360/nlon, … degrees. Defaults give the alias-free grid
    for quadratic terms: nlat ≥ (3N+1)/2, nlon ≥ 3N+1 (T21 → 32 × 64).
    """

    def __init__(
        self, truncation: int, nlat: int | None = None, nlon: int | None = None, radius: float = EARTH_RADIUS
    ):
        if truncation < 1:
            raise ValueError(f"truncation must be ≥ 1, got {truncation}")
        if nlat is None:  # smallest even nlat ≥ (3N + 1)/2
            nlat = -(-(3 * truncation + 1) // 2)
            nlat += nlat % 2
        nlon = nlon if nlon is not None else 2 * nlat
        if nlat < truncation + 1:
            raise ValueError(
                f"nlat={nlat} is too few Gaussian latitudes for T{truncation}; use nlat ≥ {truncation + 1}"
            )
        mu, weights = np.polynomial.legendre.leggauss(nlat)
        super().__init__(truncation, np.rad2deg(np.arcsin(mu)), nlon, radius)
        self.nlat = nlat
        self.mu = mu
        self.weights = weights  # Σ w = 2
        P, H = legendre_functions(truncation, mu)
        self._P_analysis = np.ascontiguousarray((P * weights[:, None, None]).transpose(1, 0, 2))  # (M, J, N)
        self._H_analysis = np.ascontiguousarray((H * weights[:, None, None]).transpose(1, 0, 2))
        n = np.arange(truncation + 1)
        self.laplacian = np.broadcast_to(-n * (n + 1.0) / radius**2, (truncation + 1, truncation + 1))
        self.mask = n[None, :] >= n[:, None]  # [m, n] valid where n ≥ m

    def _fourier_analysis(self, grid: np.ndarray) -> np.ndarray:
        """Real (..., J, nlon) → Fourier coefficients (..., J, M) of e^{imλ}."""
        return np.fft.rfft(grid, axis=-1)[..., : self.truncation + 1] / self.nlon

    def _legendre_analysis(self, fourier: np.ndarray, basis: np.ndarray) -> np.ndarray:
        """(..., J, M) complex → (..., M, N) complex, quadrature weights included in ``basis``."""
        lead = fourier.shape[:-2]
        f = fourier.reshape(-1, *fourier.shape[-2:])  # (K, J, M)
        coeffs = _complex_times_real(f.transpose(2, 0, 1), basis).transpose(1, 0, 2)  # (K, M, N)
        return coeffs.reshape(*lead, *coeffs.shape[-2:])

    def analysis(self, grid: np.ndarray) -> np.ndarray:
        """Grid (..., nlat, nlon) → spectral (..., N+1, N+1): c_mn = Σ_j w_j F_m(μ_j) P̄_n^m(μ_j)."""
        return self._legendre_analysis(self._fourier_analysis(grid), self._P_analysis)

    def divergence_curl(self, A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spectral ∇·(a, b) and k·∇×(a, b), eqs. (4)–(5), from grid A = a cos φ, B = b cos φ.

        Integrating the μ-derivatives by parts (A, B vanish at the poles):
        div_mn = Σ_j w_j [i m A_m P̄ − B_m H] / (a_E (1 − μ_j²)),
        curl_mn = Σ_j w_j [i m B_m P̄ + A_m H] / (a_E (1 − μ_j²)).
        """
        scale = 1.0 / (self.radius * (1.0 - self.mu**2))[:, None]
        fourier = self._fourier_analysis(np.stack([A, B])) * scale  # (2, ..., J, M)
        fp = self._legendre_analysis(fourier, self._P_analysis)
        fh = self._legendre_analysis(fourier, self._H_analysis)
        divergence = self._im * fp[0] - fh[1]
        curl = self._im * fp[1] + fh[0]
        return divergence, curl

    def vorticity_divergence(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid winds u, v (..., nlat, nlon) → spectral relative vorticity ζ and divergence δ."""
        cos_lat = np.sqrt(1.0 - self.mu**2)[:, None]
        divergence, vorticity = self.divergence_curl(u * cos_lat, v * cos_lat)
        return vorticity, divergence

    def at_latitudes(self, latitudes: np.ndarray, nlon: int | None = None) -> SphericalHarmonicSynthesis:
        """Exact synthesis of this truncation at other latitudes (degrees), e.g. an equiangular grid."""
        return SphericalHarmonicSynthesis(self.truncation, latitudes, nlon or self.nlon, self.radius)

    def integral(self, grid: np.ndarray) -> np.ndarray:
        """∫ f dA over the sphere of radius a (Gauss quadrature), (..., nlat, nlon) → (...)."""
        zonal_mean = grid.mean(axis=-1)
        return 2.0 * np.pi * self.radius**2 * np.tensordot(zonal_mean, self.weights, axes=([-1], [0]))


VORTICITY, DIVERGENCE, THICKNESS = 0, 1, 2
"""Indices into a model state: a complex array (layers, 3, N+1, N+1) holding, per layer (top first),
spectral ζ (s⁻¹), δ (s⁻¹) and the layer thickness in geopotential units Φ_h = g h (m² s⁻²)."""


@dataclass(frozen=True)
class ShallowWaterParameters:
    """Physical and numerical constants of eqs. (1)–(3); times in seconds, ``None`` switches a term off.

    reference_thickness: Φ̄_h = g H̄ of each layer, top first (one value: one layer; two: a
    two-layer model). The gravity-wave terms are treated implicitly about these thicknesses.
    density_ratio: ρ_top/ρ_bottom of a two-layer model (< 1); the layers feel the Montgomery
    potentials M_top = Φ_s + g(h_top + h_bottom), M_bottom = M_top − (1 − ρ_top/ρ_bottom) g h_top.
    drag_time: Rayleigh drag of the bottom layer (surface friction); top_drag_time: weak Rayleigh
    drag of the top layer of a two-layer model (interior friction; keeps planetary waves bounded).
    relaxation_time: Newtonian relaxation of the top layer's thickness toward an equilibrium; in a
    two-layer model the mass moves from the bottom layer (a diabatic mass flux), so total mass is kept.
    robert_filter / williams_alpha: ν and α of the Robert–Asselin–Williams filter (Williams 2009);
    α = 1 is the classical Robert–Asselin filter.
    """

    truncation: int = 21
    time_step: float = 1800.0
    reference_thickness: tuple[float, ...] = (GRAVITY * 5500.0,)
    density_ratio: float = 0.9
    hyperdiffusion_time: float | None = 6 * 3600.0
    hyperdiffusion_order: int = 2
    drag_time: float | None = None
    top_drag_time: float | None = None
    relaxation_time: float | None = None
    robert_filter: float = 0.1
    williams_alpha: float = 0.53
    radius: float = EARTH_RADIUS
    rotation: float = EARTH_ROTATION
    gravity: float = GRAVITY

    @property
    def layers(self) -> int:
        return len(self.reference_thickness)

    def montgomery_matrix(self) -> np.ndarray:
        """G (layers, layers) with M = Φ_s + G Φ_h: [[1]] or [[1, 1], [ρ_top/ρ_bottom, 1]]."""
        if self.layers == 1:
            return np.ones((1, 1))
        return np.array([[1.0, 1.0], [self.density_ratio, 1.0]])

    def layer_density_weights(self) -> np.ndarray:
        """ρ_i / ρ_bottom for each layer, top first (the weights of the layers' energies)."""
        return np.array([self.density_ratio, 1.0]) if self.layers == 2 else np.ones(1)


@dataclass
class ShallowWaterModel:
    """Eqs. (1)–(3) for one or two layers on the Gaussian grid of ``transform``.

    In each layer i the momentum equations (1)–(2) hold with Φ replaced by its Montgomery
    potential M_i (see :class:`ShallowWaterParameters`) and continuity (3) reads
    ∂Φ_h,i/∂t = −∇·(Φ_h,i v_i). ``surface_geopotential`` is Φ_s (nlat, nlon), truncated to T_N.
    States are complex arrays (layers, 3, N+1, N+1) indexed by VORTICITY, DIVERGENCE, THICKNESS.
    """

    parameters: ShallowWaterParameters
    transform: SphericalHarmonicTransform
    surface_geopotential: np.ndarray | None = None
    _coriolis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        p, sht = self.parameters, self.transform
        if sht.truncation != p.truncation or sht.radius != p.radius:
            raise ValueError(
                "transform and parameters disagree on truncation or radius; build both from one config"
            )
        if p.time_step <= 0:
            raise ValueError(f"time_step must be a positive number of seconds, got {p.time_step}")
        if p.layers not in (1, 2):
            raise ValueError(f"reference_thickness must hold 1 or 2 layer thicknesses, got {p.layers}")
        if p.layers == 2 and not 0.0 < p.density_ratio < 1.0:
            raise ValueError(f"density_ratio ρ_top/ρ_bottom must lie in (0, 1), got {p.density_ratio}")
        if self.surface_geopotential is None:
            self.surface_geopotential = np.zeros((sht.nlat, sht.nlon))
        if self.surface_geopotential.shape != (sht.nlat, sht.nlon):
            raise ValueError(
                f"surface_geopotential has shape {self.surface_geopotential.shape}; "
                f"expected the Gaussian grid ({sht.nlat}, {sht.nlon})"
            )
        self._surface_spectral = sht.analysis(self.surface_geopotential)
        # the model sees orography truncated to T_N; keep the grid copy consistent (energy diagnostics)
        self.surface_geopotential = sht.scalar(self._surface_spectral)
        self._coriolis = 2.0 * p.rotation * sht.mu[:, None]
        self._flux_scale = 1.0 / (p.radius * (1.0 - sht.mu**2))[:, None]
        N, K = p.truncation, p.layers
        n = np.arange(N + 1)
        hyper = np.zeros(N + 1)
        if p.hyperdiffusion_time is not None:
            hyper = (n * (n + 1.0) / (N * (N + 1.0))) ** p.hyperdiffusion_order / p.hyperdiffusion_time
        damping = np.zeros((K, 3, N + 1, N + 1))
        damping[:] = hyper
        if p.drag_time is not None:
            damping[-1, [VORTICITY, DIVERGENCE]] += 1.0 / p.drag_time
        if p.top_drag_time is not None and K == 2:
            damping[0, [VORTICITY, DIVERGENCE]] += 1.0 / p.top_drag_time
        self._damping = damping
        self._G = p.montgomery_matrix()
        self._reference = np.asarray(p.reference_thickness, dtype=np.float64)[:, None, None]
        self._solvers = {dt: self._implicit_solver(dt) for dt in (p.time_step, 0.5 * p.time_step)}

    def _implicit_solver(self, dt: float) -> np.ndarray:
        """(I + dt² L H̄ G)⁻¹ for each total wavenumber n, shape (N+1, layers, layers)."""
        L = np.arange(self.parameters.truncation + 1) * (np.arange(self.parameters.truncation + 1) + 1.0)
        L = L / self.parameters.radius**2
        K = self.parameters.layers
        system = np.eye(K)[None] + dt**2 * L[:, None, None] * (
            np.diag(self.parameters.reference_thickness) @ self._G
        )
        return np.linalg.inv(system).astype(np.complex128)

    def state_from_grid(self, u: np.ndarray, v: np.ndarray, thickness: np.ndarray) -> np.ndarray:
        """Grid u, v (m s⁻¹) and Φ_h (m² s⁻²), each (layers, nlat, nlon) or (nlat, nlon) for one layer
        → state (layers, 3, N+1, N+1)."""
        u, v, thickness = (
            np.asarray(x, dtype=np.float64).reshape(-1, *x.shape[-2:]) for x in (u, v, thickness)
        )
        vorticity, divergence = self.transform.vorticity_divergence(u, v)
        return np.stack([vorticity, divergence, self.transform.analysis(thickness)], axis=1)

    def montgomery_potential(self, state: np.ndarray) -> np.ndarray:
        """Spectral M = Φ_s + G Φ_h, (..., layers, N+1, N+1); top layer: g × the free-surface height."""
        return self._surface_spectral + np.einsum("ij,...jmn->...imn", self._G, state[..., THICKNESS, :, :])

    def _montgomery(self, thickness: np.ndarray) -> np.ndarray:
        """G Φ_h for spectral thicknesses (K, N+1, N+1), as one small matmul."""
        return (self._G @ thickness.reshape(len(thickness), -1)).reshape(thickness.shape)

    def grid_from_state(
        self, state: np.ndarray, synthesis: SphericalHarmonicSynthesis | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """State (..., layers, 3, N+1, N+1) → u, v and Montgomery potential M, each (..., layers, J, nlon),
        on ``synthesis``'s grid (default: the Gaussian grid)."""
        synthesis = synthesis or self.transform
        u, v = synthesis.winds(state[..., VORTICITY, :, :], state[..., DIVERGENCE, :, :])
        return u, v, synthesis.scalar(self.montgomery_potential(state))

    def _explicit_tendencies(self, state: np.ndarray) -> np.ndarray:
        """Tendencies (layers, 3, N+1, N+1) without damping, relaxation and the implicit linear terms.

        All transforms are fused over fields and layers: one Legendre+Fourier synthesis of
        (ζ, Φ_h, U, V) and one analysis of (Uη, UΦ_h, Vη, VΦ_h, E); that is what makes a simulated
        year take seconds.
        """
        sht, p = self.transform, self.parameters
        psi_chi = state[:, :2] * sht._inverse_laplacian  # (K, 2, M, N): ψ, χ
        fp = sht._legendre_synthesis(
            np.concatenate([state[:, [VORTICITY, THICKNESS]], psi_chi], axis=1), sht._P_synth
        )
        fh = sht._legendre_synthesis(psi_chi, sht._H_synth)  # (K, 2, J, M)
        im = sht._im[:, 0]
        fourier_U = (im * fp[:, 3] - fh[:, 0]) / p.radius
        fourier_V = (im * fp[:, 2] + fh[:, 1]) / p.radius
        grid = sht._fourier_synthesis(
            np.stack([fp[:, 0], fp[:, 1], fourier_U, fourier_V], axis=1)
        )  # (K, 4, J, L)
        vorticity, thickness, U, V = grid[:, 0], grid[:, 1], grid[:, 2], grid[:, 3]
        absolute_vorticity = vorticity + self._coriolis
        # E a (1 − μ²), so that the common factor 1/(a (1 − μ²)) of eqs. (4)–(5) gives E back
        kinetic_scaled = 0.5 * p.radius * (U**2 + V**2)
        products = np.stack(
            [U * absolute_vorticity, U * thickness, V * absolute_vorticity, V * thickness, kinetic_scaled],
            axis=1,
        )  # (K, 5, J, L)
        fourier = sht._fourier_analysis(products) * self._flux_scale
        ap = sht._legendre_analysis(fourier, sht._P_analysis)  # (K, 5, M, N)
        ah = sht._legendre_analysis(fourier[:, :4], sht._H_analysis)  # (K, 4, M, N)
        im = sht._im
        tendency = np.empty_like(state)
        tendency[:, VORTICITY] = -(im * ap[:, 0] - ah[:, 2])  # −∇·(η v)
        # k·∇×(η v) − ∇²(E + Φ_s); the −∇²(G Φ_h) part is implicit in ``_leapfrog``
        tendency[:, DIVERGENCE] = (
            im * ap[:, 2] + ah[:, 0] - sht.laplacian * (ap[:, 4] + self._surface_spectral)
        )
        # −∇·(Φ_h v) + Φ̄_h δ: the linear part −Φ̄_h δ is implicit in ``_leapfrog``
        reference = np.asarray(p.reference_thickness)[:, None, None]
        tendency[:, THICKNESS] = -(im * ap[:, 1] - ah[:, 3]) + reference * state[:, DIVERGENCE]
        return tendency

    def _leapfrog(
        self, previous: np.ndarray, current: np.ndarray, dt: float, equilibrium: np.ndarray | None
    ) -> np.ndarray:
        """x^{n+1} from x^{n−1}, x^n over 2·dt: semi-implicit gravity waves, implicit damping.

        Per layer δ⁺ = δ⁻ + 2dt T_δ + dt L G(Φ_h⁺ + Φ_h⁻),  Φ_h⁺ = Φ_h⁻ + 2dt T_Φ − dt H̄ (δ⁺ + δ⁻)
        with L = n(n+1)/a²; with A = δ⁻ + 2dt T_δ + dt L G Φ_h⁻ and B = Φ_h⁻ + 2dt T_Φ − dt H̄ δ⁻,
        solved mode by mode as Φ_h⁺ = (I + dt² L H̄ G)⁻¹ (B − dt H̄ A), δ⁺ = A + dt L G Φ_h⁺.
        """
        p, sht = self.parameters, self.transform
        tendency = self._explicit_tendencies(current)
        if equilibrium is not None and p.relaxation_time is not None:
            transfer = (equilibrium - previous[0, THICKNESS]) / p.relaxation_time
            tendency[0, THICKNESS] += transfer
            if p.layers == 2:
                tendency[1, THICKNESS] -= transfer
        L = -sht.laplacian[0]  # (N,) = n(n+1)/a²
        H = self._reference  # diagonal of H̄, (K, 1, 1)
        A = (
            previous[:, DIVERGENCE]
            + 2 * dt * tendency[:, DIVERGENCE]
            + dt * L * self._montgomery(previous[:, THICKNESS])
        )
        B = previous[:, THICKNESS] + 2 * dt * tendency[:, THICKNESS] - dt * H * previous[:, DIVERGENCE]
        nxt = np.empty_like(current)
        rhs = (B - dt * H * A).transpose(2, 0, 1)  # (N, K, M): one K-vector per total wavenumber n
        nxt[:, THICKNESS] = (self._solvers[dt] @ rhs).transpose(1, 2, 0)
        nxt[:, DIVERGENCE] = A + dt * L * self._montgomery(nxt[:, THICKNESS])
        nxt[:, VORTICITY] = previous[:, VORTICITY] + 2 * dt * tendency[:, VORTICITY]
        return nxt * (sht.mask / (1.0 + 2 * dt * self._damping))

    def first_step(self, initial: np.ndarray, equilibrium: np.ndarray | None = None) -> np.ndarray:
        """x¹ from x⁰: one semi-implicit forward step of length Δt (leapfrog with x⁻¹ = x⁰ and step Δt/2)."""
        return self._leapfrog(initial, initial, 0.5 * self.parameters.time_step, equilibrium)

    def step(
        self, previous: np.ndarray, current: np.ndarray, equilibrium: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One leapfrog step: (x^{n−1}, x^n) → (filtered x^n, x^{n+1} with its partial filter).

        RAW filter: d = ν/2 (x^{n−1} − 2x^n + x^{n+1}); x^n += α d; x^{n+1} −= (1 − α) d.
        equilibrium: spectral equilibrium thickness of the top layer (N+1, N+1) at step n, or None.
        """
        p = self.parameters
        nxt = self._leapfrog(previous, current, p.time_step, equilibrium)
        d = 0.5 * p.robert_filter * (previous - 2.0 * current + nxt)
        return current + p.williams_alpha * d, nxt - (1.0 - p.williams_alpha) * d

    def integrate(self, initial: np.ndarray, n_steps: int) -> np.ndarray:
        """The state after ``n_steps`` time steps without relaxation forcing."""
        if n_steps < 1:
            raise ValueError(f"n_steps must be ≥ 1, got {n_steps}")
        previous, current = initial, self.first_step(initial)
        for _ in range(n_steps - 1):
            previous, current = self.step(previous, current)
        return current

    def layer_masses(self, state: np.ndarray) -> np.ndarray:
        """∫ Φ_h,i dA / g for each layer: volumes in m³ (mass per unit density), shape (layers,)."""
        return self.transform.integral(self.transform.scalar(state[:, THICKNESS])) / self.parameters.gravity

    def total_energy(self, state: np.ndarray) -> float:
        """Σ_i (ρ_i/ρ_bottom) ∫ [Φ_h,i |v_i|²/2 + (Z_i² − Z_{i+1}²)/2] dA / g, per unit ρ_bottom (m⁵ s⁻²).

        Z_i = Φ_s + Σ_{j ≥ i} Φ_h,j is g × the height of the top of layer i, Z_{layers+1} = Φ_s: kinetic
        plus potential energy, conserved by the unforced inviscid equations.
        """
        sht = self.transform
        u, v = sht.winds(state[:, VORTICITY], state[:, DIVERGENCE])
        thickness = sht.scalar(state[:, THICKNESS])  # (K, J, L)
        surface = self.surface_geopotential
        assert surface is not None, "__post_init__ sets the surface geopotential"
        tops = surface + np.cumsum(thickness[::-1], axis=0)[::-1]  # Z_i, top first
        bottoms = np.concatenate([tops[1:], surface[None]])
        density = thickness * 0.5 * (u**2 + v**2) + 0.5 * (tops**2 - bottoms**2)
        weights = self.parameters.layer_density_weights()[:, None, None]
        return float(sht.integral((weights * density).sum(axis=0))) / self.parameters.gravity
