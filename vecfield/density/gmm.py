"""Gaussian mixture fitted by expectation–maximization (seed §14.1), on points or on binned counts.

    p(x) = Σ_k π_k N(x; μ_k, Σ_k),      Σ_k full (D×D) or diagonal.

Point data: EM with k-means++ initialization and several restarts; the restart with the highest
log-likelihood wins. Binned 1-D data (Pearson's crabs): each bin [a_j, b_j) with count n_j has
likelihood P_j = Σ_k π_k (Φ((b_j−μ_k)/σ_k) − Φ((a_j−μ_k)/σ_k)), and EM for grouped data
(McLachlan & Jones 1988) uses the first two moments of each component truncated to each bin in
the M-step; EM's answer is then polished by quasi-Newton steps on the same likelihood (EM is
slow to converge when components overlap). Computation runs in float64.

scikit-learn's GaussianMixture covers point data but neither binned likelihoods nor the vecfield
density contract (torch tensors, sampling with a torch.Generator, checkpoints), hence this module.
"""

import math
from typing import Literal

import numpy as np
import scipy.optimize
import torch
from torch import Tensor, nn

from vecfield.flows.flow import check_batch

CovarianceType = Literal["full", "diag"]


def kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator | None = None,
                     weights: Tensor | None = None) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): (N, D) -> (k, D) centres from the points.

    Each next centre is drawn with probability ∝ weight · (squared distance to the nearest centre).
    """
    weights = torch.ones(points.shape[0], dtype=points.dtype) if weights is None else weights.to(points.dtype)
    first = torch.multinomial(weights, 1, generator=generator)
    centres = [points[first[0]]]
    nearest = ((points - centres[0]) ** 2).sum(dim=1)
    for _ in range(1, k):
        probs = weights * nearest
        idx = torch.multinomial(probs if probs.sum() > 0 else weights, 1, generator=generator)[0]
        centres.append(points[idx])
        nearest = torch.minimum(nearest, ((points - points[idx]) ** 2).sum(dim=1))
    return torch.stack(centres)


class GaussianMixture(nn.Module):
    """A K-component Gaussian mixture on (D,) vectors, fitted by EM; meets the density contract.

    Fitted parameters are buffers (``weights`` (K,), ``means`` (K, D), ``covariances`` (K, D, D)
    for "full" or (K, D) for "diag"), so they travel in checkpoints.
    """

    exact_log_prob = True
    weights: Tensor  # (K,) float64 buffer: mixture weights π
    means: Tensor  # (K, D) float64 buffer
    covariances: Tensor  # (K, D, D) ("full") or (K, D) ("diag") float64 buffer
    fitted: Tensor  # () bool buffer

    def __init__(self, features: int, n_components: int, covariance_type: CovarianceType = "full",
                 n_restarts: int = 5, max_iter: int = 1000, tol: float = 1e-8,
                 reg_covar: float = 1e-6) -> None:
        super().__init__()
        if covariance_type not in ("full", "diag"):
            raise ValueError(f"unknown covariance_type {covariance_type!r}; choose one of ['diag', 'full']")
        if features < 1 or n_components < 1 or n_restarts < 1 or max_iter < 1:
            raise ValueError("features, n_components, n_restarts and max_iter must be positive integers")
        self.event_shape = (features,)
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.n_restarts, self.max_iter, self.tol, self.reg_covar = n_restarts, max_iter, tol, reg_covar
        self.config = dict(features=features, n_components=n_components, covariance_type=covariance_type,
                           n_restarts=n_restarts, max_iter=max_iter, tol=tol, reg_covar=reg_covar)
        cov_shape = (n_components, features, features) if covariance_type == "full" \
            else (n_components, features)
        self.register_buffer("weights", torch.full((n_components,), 1.0 / n_components, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(n_components, features, dtype=torch.float64))
        cov = torch.eye(features, dtype=torch.float64).expand(cov_shape) if covariance_type == "full" \
            else torch.ones(cov_shape, dtype=torch.float64)
        self.register_buffer("covariances", cov.clone())
        self.register_buffer("fitted", torch.tensor(False))

    # ----- densities ---------------------------------------------------------------------------
    def _component_log_prob(self, x: Tensor) -> Tensor:
        """log N(x; μ_k, Σ_k): (B, D) float64 -> (B, K)."""
        d = x.shape[1]
        if self.covariance_type == "diag":
            maha = ((x[:, None, :] - self.means[None]) ** 2 / self.covariances[None]).sum(-1)
            log_det = torch.log(self.covariances).sum(-1)
        else:
            chol = torch.linalg.cholesky(self.covariances)  # (K, D, D)
            eye = torch.eye(d, dtype=chol.dtype).expand_as(chol)
            chol_inv = torch.linalg.solve_triangular(chol, eye, upper=False)  # K small solves, not B·K
            # whitened residuals L_k⁻¹(x − μ_k) as one batched matmul: (K, B, D)
            white = torch.matmul(x[None], chol_inv.transpose(1, 2))
            white = white - (chol_inv @ self.means[..., None])[:, None, :, 0]
            maha = white.pow(2).sum(-1).T  # (B, K)
            log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        return -0.5 * (maha + log_det[None] + d * math.log(2 * math.pi))

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) = logsumexp_k(log π_k + log N(x; μ_k, Σ_k)): (B, D) -> (B,) in x's dtype."""
        check_batch(x, self.event_shape)
        joint = self._component_log_prob(x.double()) + torch.log(self.weights)[None]
        return torch.logsumexp(joint, dim=1).to(x.dtype)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n draws (n, D) float64: a component by π, then its Gaussian."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.event_shape[0], generator=generator, dtype=torch.float64)
        if self.covariance_type == "diag":
            return self.means[comp] + eps * self.covariances[comp].sqrt()
        chol = torch.linalg.cholesky(self.covariances)
        return self.means[comp] + torch.einsum("nij,nj->ni", chol[comp], eps)

    # ----- EM on points ------------------------------------------------------------------------
    def _m_step(self, x: Tensor, resp: Tensor) -> None:
        """Weighted maximum-likelihood update from responsibilities resp (N, K)."""
        nk = resp.sum(0) + 1e-12  # (K,)
        self.weights.copy_(nk / nk.sum())
        self.means.copy_(resp.T @ x / nk[:, None])
        centred = x[None] - self.means[:, None]  # (K, N, D)
        if self.covariance_type == "diag":
            self.covariances.copy_((resp.T[..., None] * centred**2).sum(1) / nk[:, None] + self.reg_covar)
        else:
            cov = torch.matmul((centred * resp.T[..., None]).transpose(1, 2), centred) / nk[:, None, None]
            self.covariances.copy_(cov + self.reg_covar * torch.eye(x.shape[1], dtype=x.dtype))

    @torch.no_grad()
    def fit(self, x: Tensor, generator: torch.Generator | None = None) -> "GaussianMixture":
        """EM on points x (N, D): k-means++ starts, ``n_restarts`` runs, keep the best log-likelihood."""
        check_batch(x, self.event_shape)
        x = x.double()
        distinct = torch.unique(x, dim=0).shape[0]
        if distinct < self.n_components:
            raise ValueError(f"cannot fit {self.n_components} components to {distinct} distinct point(s); "
                             f"use n_components ≤ {distinct} or more data")
        best: tuple[float, dict[str, Tensor]] | None = None
        for _ in range(self.n_restarts):
            centres = kmeans_plus_plus(x, self.n_components, generator)
            nearest = torch.cdist(x, centres).argmin(dim=1)
            self._m_step(x, nn.functional.one_hot(nearest, self.n_components).double())
            previous = -math.inf
            for _ in range(self.max_iter):
                joint = self._component_log_prob(x) + torch.log(self.weights)[None]
                log_norm = torch.logsumexp(joint, dim=1, keepdim=True)
                loglik = float(log_norm.sum())
                self._m_step(x, torch.exp(joint - log_norm))
                if loglik - previous <= self.tol * abs(loglik):
                    break
                previous = loglik
            loglik = float(self.log_prob(x).sum())
            if best is None or loglik > best[0]:
                best = (loglik, {k: v.clone() for k, v in self.state_dict().items()})
        assert best is not None
        self.load_state_dict(best[1])
        self.fitted.fill_(True)
        return self

    # ----- EM on binned 1-D counts -------------------------------------------------------------
    def _bin_terms(self, edges: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per bin j and component k: mass P_jk, E[x − μ_k | bin], E[(x − μ_k)² | bin] — each (J, K)."""
        mu, sd = self.means[:, 0], self.covariances.reshape(self.n_components, -1)[:, 0].sqrt()
        z = (edges[:, None] - mu[None]) / sd[None]  # (J+1, K), ±inf at open ends
        cdf = torch.special.ndtr(z)
        pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
        z_pdf = torch.where(torch.isfinite(z), z * pdf, torch.zeros_like(z))
        mass = (cdf[1:] - cdf[:-1]).clamp_min(1e-300)
        first = sd[None] * (pdf[:-1] - pdf[1:]) / mass
        second = sd[None] ** 2 * (1 + (z_pdf[:-1] - z_pdf[1:]) / mass)
        return mass, first, second

    def _refine_binned(self, edges: Tensor, counts: Tensor) -> None:
        """Polish an EM solution by quasi-Newton (scipy L-BFGS-B, autograd gradient) on the binned
        log-likelihood: EM converges only linearly, and very slowly when components overlap as much
        as the crabs' two do, while L-BFGS converges fast from EM's neighbourhood."""
        k = self.n_components
        start = torch.cat([torch.log(self.weights), self.means[:, 0],
                           0.5 * torch.log(self.covariances.reshape(k, -1)[:, 0])]).numpy()

        finite_edges = torch.where(torch.isfinite(edges), edges, 0.0)  # keeps ±inf out of autograd

        @torch.enable_grad()
        def negative_log_likelihood(theta: np.ndarray) -> tuple[float, np.ndarray]:
            t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
            log_w, mu, log_sd = torch.log_softmax(t[:k], 0), t[k : 2 * k], t[2 * k :]
            cdf = torch.special.ndtr((finite_edges[:, None] - mu[None]) / torch.exp(log_sd)[None])
            cdf = torch.where(torch.isfinite(edges)[:, None], cdf, (edges[:, None] > 0).double())
            mass = (cdf[1:] - cdf[:-1]).clamp_min(1e-300)
            nll = -(counts * torch.logsumexp(torch.log(mass) + log_w[None], dim=1)).sum()
            nll.backward()
            assert t.grad is not None
            return float(nll.detach()), t.grad.numpy()

        result = scipy.optimize.minimize(negative_log_likelihood, start, jac=True, method="L-BFGS-B",
                                         options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-10})
        if result.fun <= negative_log_likelihood(start)[0]:
            theta = torch.tensor(result.x, dtype=torch.float64)
            self.weights.copy_(torch.softmax(theta[:k], 0))
            self.means[:, 0] = theta[k : 2 * k]
            self.covariances.view(k, -1)[:, 0] = torch.exp(2 * theta[2 * k :])

    def binned_log_likelihood(self, edges: Tensor, counts: Tensor) -> float:
        """Σ_j n_j log P_j with P_j the mixture's mass between edges j and j+1 (1-D only)."""
        mass, _, _ = self._bin_terms(edges.double())
        return float((counts.double() * torch.log(mass @ self.weights)).sum())

    @torch.no_grad()
    def fit_binned(self, edges: Tensor, counts: Tensor,
                   generator: torch.Generator | None = None) -> "GaussianMixture":
        """EM for grouped 1-D data: edges (J+1,) increasing (±inf allowed at the ends), counts (J,)."""
        if self.event_shape != (1,):
            raise ValueError(f"binned fitting is for 1-D data; this mixture has {self.event_shape[0]} "
                             f"features")
        edges, counts = edges.double(), counts.double()
        if edges.ndim != 1 or counts.shape != (edges.shape[0] - 1,):
            raise ValueError(f"need edges (J+1,) and counts (J,), got {tuple(edges.shape)} and "
                             f"{tuple(counts.shape)}")
        if not bool((edges[1:] > edges[:-1]).all()) or torch.isnan(edges).any():
            raise ValueError("bin edges must be strictly increasing (±inf allowed only at the ends)")
        if not torch.isfinite(counts).all() or bool((counts < 0).any()):
            raise ValueError("bin counts must be finite and non-negative")
        occupied = int((counts > 0).sum())
        if occupied < self.n_components:
            raise ValueError(f"cannot fit {self.n_components} components to {occupied} occupied bin(s); "
                             f"use n_components ≤ {occupied}")
        # representative point of each bin for seeding: the midpoint, or the finite edge ± a bin width
        finite = edges[torch.isfinite(edges)]
        width = float((finite[1:] - finite[:-1]).median()) if finite.numel() > 1 else 1.0
        lo = torch.where(torch.isfinite(edges[:-1]), edges[:-1], edges[1:] - width)
        hi = torch.where(torch.isfinite(edges[1:]), edges[1:], edges[:-1] + width)
        mids = ((lo + hi) / 2)[:, None]
        total = counts.sum()
        # work in standardized units (the binned likelihood is invariant to affine maps of x), which
        # keeps the quasi-Newton polish well conditioned; undone after the fit
        centre = float((counts * mids[:, 0]).sum() / total)
        spread = float(((counts * (mids[:, 0] - centre) ** 2).sum() / total).sqrt()) or width
        edges, mids, width = (edges - centre) / spread, (mids - centre) / spread, width / spread
        best: tuple[float, dict[str, Tensor]] | None = None
        for _ in range(self.n_restarts):
            centres = kmeans_plus_plus(mids, self.n_components, generator, weights=counts)
            nearest = torch.cdist(mids, centres).argmin(dim=1)
            resp = nn.functional.one_hot(nearest, self.n_components).double() * counts[:, None]
            self._m_step(mids, resp)
            self.covariances.clamp_(min=(width / 2) ** 2)
            previous = -math.inf
            for _ in range(self.max_iter):
                mass, first, second = self._bin_terms(edges)
                joint = mass * self.weights[None]  # (J, K)
                bin_prob = joint.sum(1, keepdim=True)
                loglik = float((counts * torch.log(bin_prob[:, 0])).sum())
                weight = counts[:, None] * joint / bin_prob  # n_j · r_jk
                nk = weight.sum(0)
                mu_old = self.means[:, 0].clone()
                shift = (weight * first).sum(0) / nk  # E[x] − μ_old per component
                var = (weight * (second - 2 * first * shift[None])).sum(0) / nk + shift**2
                self.weights.copy_(nk / total)
                self.means[:, 0] = mu_old + shift
                self.covariances.view(self.n_components, -1)[:, 0] = var + self.reg_covar
                if loglik - previous <= self.tol * abs(loglik):
                    break
                previous = loglik
            self._refine_binned(edges, counts)
            loglik = self.binned_log_likelihood(edges, counts)
            if best is None or loglik > best[0]:
                best = (loglik, {k: v.clone() for k, v in self.state_dict().items()})
        assert best is not None
        self.load_state_dict(best[1])
        self.means.mul_(spread).add_(centre)
        self.covariances.mul_(spread**2)
        self.fitted.fill_(True)
        return self
