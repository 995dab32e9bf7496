"""The one Gaussian log-density against torch.distributions, for every broadcast its callers use."""

import pytest
import torch
from torch.distributions import Normal

from vecfield.core.likelihood import bits_per_dim, gaussian_log_prob


def reference(x, std, mean, event_dims):
    """torch's per-element Normal log-density, summed over the last ``event_dims`` dims."""
    as_tensor = lambda value: torch.as_tensor(value, dtype=torch.float64)  # noqa: E731
    values = Normal(as_tensor(mean), as_tensor(std)).log_prob(x)
    return values.flatten(values.ndim - event_dims).sum(-1)


@pytest.mark.parametrize(("x_shape", "std", "mean", "event_dims"), [
    ((5, 3, 4), 1.0, 0.0, None),                                    # standard normal, (B, …) → (B,)
    ((5, 3, 4), 0.3, 0.0, None),                                    # isotropic source N(0, σ²)
    ((5, 6, 2), torch.rand(6, 1, dtype=torch.float64) + 0.2, 0.0, None),   # sphere noise, per node
    ((5, 7), torch.rand(5, 7, dtype=torch.float64) + 0.2, torch.randn(5, 7, dtype=torch.float64), 1),  # VAE q
    ((5, 7), torch.rand(4, 5, 7, dtype=torch.float64) + 0.2, torch.randn(4, 5, 7, dtype=torch.float64), 1),
])
def test_matches_torch_normal(x_shape, std, mean, event_dims):
    torch.manual_seed(0)
    x = torch.randn(x_shape, dtype=torch.float64)
    got = gaussian_log_prob(x, std, mean, event_dims)
    expected = reference(x, std, mean, x.ndim - 1 if event_dims is None else event_dims)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_bits_per_dim_of_tensors_and_numbers():
    assert bits_per_dim(-784 * 2 * torch.log(torch.tensor(2.0)), 784).item() == pytest.approx(2.0)
    assert bits_per_dim(-10.0 * 0.6931471805599453, 10) == pytest.approx(1.0)


def test_event_dims_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="event_dims must lie in"):
        gaussian_log_prob(torch.zeros(2, 3), event_dims=3)
