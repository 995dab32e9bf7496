"""VAE on a linear-Gaussian model whose log p(x) is exact: ELBO ≤ IWAE_k ≤ log p(x)."""

import itertools

import pytest
import torch
from torch.distributions import MultivariateNormal

from vecfield.density import VAE, TrainSettings, fit, load_checkpoint, save_checkpoint


def linear_gaussian_vae() -> tuple[VAE, MultivariateNormal]:
    """Decoder x = W z + b + σ⊙ε (exact marginal N(b, W Wᵀ + diag σ²)); a deliberately imperfect encoder."""
    vae = VAE((4,), latent_features=2, depth=0).double()
    g = torch.Generator().manual_seed(5)
    w = torch.randn(4, 2, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    log_sigma = torch.tensor([-0.5, -0.3, 0.0, -0.7], dtype=torch.float64)
    with torch.no_grad():
        vae.decoder.weight.copy_(w)
        vae.decoder.bias.copy_(b)
        vae.decoder_log_std.copy_(log_sigma)
        # exact posterior mean map shifted by 0.5, mean-field standard deviations 2.5× too wide: q ≠ p(z | x)
        noise_precision = torch.diag(torch.exp(-2 * log_sigma))
        post_cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + w.T @ noise_precision @ w)
        gain = post_cov @ w.T @ noise_precision  # E[z | x] = gain (x − b)
        vae.encoder.weight.copy_(torch.cat([gain, torch.zeros(2, 4, dtype=torch.float64)]))
        vae.encoder.bias.copy_(torch.cat([-gain @ b + 0.5, 0.5 * torch.log(torch.diagonal(post_cov)) + 0.9]))
    marginal = MultivariateNormal(b, w @ w.T + torch.diag(torch.exp(2 * log_sigma)))
    return vae, marginal


def test_elbo_below_iwae_below_exact_log_likelihood_and_gap_shrinks() -> None:
    vae, marginal = linear_gaussian_vae()
    x = marginal.sample((256,))
    exact = float(marginal.log_prob(x).mean())
    g = torch.Generator().manual_seed(0)
    ks = (4, 16, 64, 256)
    with torch.no_grad():
        elbo = float(vae.elbo(x, samples=64, generator=g).mean())
        iwae = [float(torch.stack([vae.iwae(x, samples=k, generator=g).mean() for _ in range(8)]).mean())
                for k in ks]
    assert elbo < iwae[0] < iwae[1] < iwae[2] < iwae[3] <= exact
    gaps = [exact - v for v in iwae]
    assert all(a > b for a, b in itertools.pairwise(gaps))
    assert gaps[-1] < 0.01 * (exact - elbo)  # the bound closes in on log p(x)


def test_training_raises_the_elbo_and_samples_have_the_right_shape(tmp_path: pytest.TempPathFactory) -> None:
    _, marginal = linear_gaussian_vae()
    data = marginal.sample((1024,)).float()
    vae = VAE((4,), latent_features=2, hidden_features=16, depth=1)
    with torch.no_grad():
        before = float(vae.elbo(data).mean())
    losses = fit(vae, data, TrainSettings(steps=60, batch_size=128, learning_rate=1e-2))
    with torch.no_grad():
        assert len(losses) == 60 and float(vae.elbo(data).mean()) > before + 1.0
    assert vae.sample(7, torch.Generator().manual_seed(0)).shape == (7, 4)
    save_checkpoint(vae, tmp_path / "vae.pt")
    loaded = load_checkpoint(tmp_path / "vae.pt", VAE)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(loaded.elbo(data[:5], generator=g1), vae.elbo(data[:5], generator=g2))
    with pytest.raises(ValueError, match="non-finite"):
        vae.log_prob(torch.full((2, 4), float("nan")))
