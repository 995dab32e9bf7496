"""Variational autoencoder with Gaussian encoder and decoder (seed eqs. 14.10–14.13).

    p(z) = N(0, I),   p(x | z) = N(x; μ_θ(z), diag σ²),   q(z | x) = N(z; μ_φ(x), diag σ_φ(x)²)

σ is one learned standard deviation per data entry. Training maximizes the s-sample ELBO
estimate (eq. 14.12) with the reparameterization z = μ_φ(x) + σ_φ(x)⊙ε, ε ~ N(0, I):

    ELBO_s(x) = (1/s) Σ_i [log p(x | z_i) + log p(z_i) − log q(z_i | x)].

Held-out log-likelihood uses the importance-weighted bound (IWAE, Burda et al. 2016)

    IWAE_k(x) = log (1/k) Σ_i p(x, z_i) / q(z_i | x) ≤ log p(x),

which is non-decreasing in k and tends to log p(x); ``log_prob`` returns it and the model
declares ``exact_log_prob = False`` so reports label it a bound.
"""

import math

import torch
from torch import Tensor, nn

from vecfield.core.likelihood import gaussian_log_prob
from vecfield.flows.flow import check_batch
from vecfield.nn import MLP


def _network(inputs: int, outputs: int, hidden: int, depth: int) -> nn.Module:
    """A vecfield MLP conditioner, or a linear map when depth = 0 (probabilistic PCA)."""
    if depth == 0:
        return nn.Linear(inputs, outputs)
    return _Plain(MLP(inputs, outputs, hidden_features=hidden, depth=depth, time_features=0))


class _Plain(nn.Module):
    """Calls a vector-field backbone as a plain function of its input: (..., D_in) -> (..., D_out)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        return self.net(x.reshape(-1, x.shape[-1]), None, None).reshape(*lead, -1)


class VAE(nn.Module):
    """Gaussian VAE on events of any shape (flattened to D entries); meets the density contract.

    ``depth = 0`` makes encoder and decoder linear, i.e. a linear-Gaussian latent model whose
    exact log p(x) = log N(x; b, W Wᵀ + diag σ²) is known (used by the tests).
    """

    exact_log_prob = False

    def __init__(self, event_shape: tuple[int, ...], latent_features: int = 8, hidden_features: int = 256,
                 depth: int = 2, elbo_samples: int = 1, iwae_samples: int = 256) -> None:
        super().__init__()
        if latent_features < 1 or depth < 0 or elbo_samples < 1 or iwae_samples < 1:
            raise ValueError("need latent_features ≥ 1, depth ≥ 0, elbo_samples ≥ 1 and iwae_samples ≥ 1")
        self.event_shape = tuple(int(s) for s in event_shape)
        self.features = math.prod(self.event_shape)
        self.latent_features = latent_features
        self.elbo_samples, self.iwae_samples = elbo_samples, iwae_samples
        self.config = dict(event_shape=self.event_shape, latent_features=latent_features,
                           hidden_features=hidden_features, depth=depth, elbo_samples=elbo_samples,
                           iwae_samples=iwae_samples)
        self.encoder = _network(self.features, 2 * latent_features, hidden_features, depth)
        self.decoder = _network(latent_features, self.features, hidden_features, depth)
        self.decoder_log_std = nn.Parameter(torch.zeros(self.features))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """q(z | x): flat x (B, D) -> mean (B, L), log-std (B, L)."""
        mean, log_std = self.encoder(x).chunk(2, dim=-1)
        return mean, log_std

    def _log_weights(self, x: Tensor, samples: int, generator: torch.Generator | None) -> Tensor:
        """log p(x, z_i) − log q(z_i | x) for z_i ~ q(·|x) reparameterized: (B, *event) -> (samples, B)."""
        check_batch(x, self.event_shape)
        flat = x.flatten(1)
        mean, log_std = self.encode(flat)
        eps = torch.randn((samples, *mean.shape), generator=generator, dtype=mean.dtype).to(mean.device)
        z = mean + torch.exp(log_std) * eps  # (S, B, L)
        log_q = gaussian_log_prob(z, torch.exp(log_std), mean, event_dims=1)
        log_prior = gaussian_log_prob(z, event_dims=1)
        log_lik = gaussian_log_prob(flat, torch.exp(self.decoder_log_std), self.decoder(z), event_dims=1)
        return log_lik + log_prior - log_q

    def elbo(self, x: Tensor, samples: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """s-sample ELBO estimate, eq. 14.12: (B, *event) -> (B,) nats."""
        return self._log_weights(x, samples or self.elbo_samples, generator).mean(dim=0)

    def iwae(self, x: Tensor, samples: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Importance-weighted bound IWAE_k ≤ log p(x): (B, *event) -> (B,) nats."""
        k = samples or self.iwae_samples
        return torch.logsumexp(self._log_weights(x, k, generator), dim=0) - math.log(k)

    def log_prob(self, x: Tensor) -> Tensor:
        """The IWAE bound with ``iwae_samples`` samples (a lower bound on log p(x)): (B, *event) -> (B,)."""
        return self.iwae(x)

    def training_loss(self, x: Tensor) -> Tensor:
        """Negative mean ELBO of a batch, a scalar."""
        return -self.elbo(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x | z), z ~ N(0, I): -> (n, *event)."""
        param = self.decoder_log_std
        z = torch.randn(n, self.latent_features, generator=generator, dtype=param.dtype)
        noise = torch.randn(n, self.features, generator=generator, dtype=param.dtype)
        x = self.decoder(z.to(param.device)) + torch.exp(param) * noise.to(param.device)
        return x.reshape(n, *self.event_shape)
