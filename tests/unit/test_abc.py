"""Tests of rejection ABC and the jittered resampling helper."""

import pytest
import torch

from neuroinverse.inference import rejection_abc, resample_with_jitter
from neuroinverse.simulators import (
    BoxUniform,
    GaussianPrior,
    gaussian_linear,
    gaussian_linear_posterior,
)


def gen(s=0):
    return torch.Generator().manual_seed(s)


def test_rejection_abc_recovers_the_gaussian_posterior_approximately():
    prior = GaussianPrior(torch.zeros(1), 1.0)
    x_o = torch.tensor([0.8])
    res = rejection_abc(
        prior,
        lambda t, generator: gaussian_linear(t, noise_var=0.25, generator=generator),
        x_o,
        n_simulations=40000,
        quantile=0.02,
        generator=gen(),
    )
    mean, cov = gaussian_linear_posterior(x_o, prior_var=1.0, noise_var=0.25)
    assert res.theta.shape == (800, 1)
    assert float(res.theta.mean()) == pytest.approx(float(mean[0]), abs=0.05)
    assert float(res.theta.std()) == pytest.approx(float(cov[0, 0].sqrt()), rel=0.1)
    assert (res.distances[1:] >= res.distances[:-1]).all()


def test_nearest_neighbours_are_the_smallest_distances():
    prior = BoxUniform([-1.0], [1.0])
    res = rejection_abc(
        prior,
        lambda t, generator: t * 2.0,
        torch.tensor([0.5]),
        n_simulations=500,
        n_keep=10,
        generator=gen(1),
        z_score=False,
    )
    assert torch.allclose(res.distances, (2 * res.theta[:, 0] - 0.5).abs())
    assert float(res.distances.max()) < 0.05


def test_resample_with_jitter_moments_and_support():
    s = torch.randn(300, 2, generator=gen(2)) * 0.3
    out = resample_with_jitter(s, 5000, prior=BoxUniform([-0.5, -0.5], [0.5, 0.5]), generator=gen(3))
    assert out.shape == (5000, 2)
    assert (out.abs() <= 0.5).all()
    free = resample_with_jitter(s, 20000, generator=gen(4))
    h = 300 ** (-1 / 6)
    expected = (s.var(0) * (1 + h**2)).sqrt()
    assert torch.allclose(free.std(0), expected, rtol=0.05)


def test_bad_inputs_name_the_argument():
    prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])
    sim = lambda t, generator: t + 0.0  # noqa: E731
    with pytest.raises(ValueError, match="n_simulations"):
        rejection_abc(prior, sim, torch.zeros(2), n_simulations=0, n_keep=1)
    with pytest.raises(ValueError, match="x_o"):
        rejection_abc(prior, sim, torch.zeros(3), n_simulations=10, n_keep=1)
    with pytest.raises(ValueError, match="simulator"):
        rejection_abc(prior, lambda t, generator: t[:, 0], torch.zeros(2), n_simulations=10, n_keep=1)
    with pytest.raises(ValueError, match="n_keep"):
        rejection_abc(prior, sim, torch.zeros(2), n_simulations=10, n_keep=11)
    with pytest.raises(ValueError, match="quantile"):
        rejection_abc(prior, sim, torch.zeros(2), n_simulations=10, quantile=1.5)

    class BadPrior:
        dim = 2

        def sample(self, n, generator=None):
            return torch.zeros(n, 3)

    with pytest.raises(ValueError, match="prior"):
        rejection_abc(BadPrior(), sim, torch.zeros(2), n_simulations=10, n_keep=1)
    with pytest.raises(ValueError, match="samples"):
        resample_with_jitter(torch.zeros(1, 2), 5)
