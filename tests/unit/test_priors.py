"""Tests of the SBI priors."""

import math

import pytest
import torch

from neuroinverse.simulators import BoxUniform, GaussianPrior


def test_box_uniform_samples_moments_and_density():
    p = BoxUniform([-1.0, 0.0], [1.0, 4.0])
    s = p.sample(50000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (50000, 2)
    assert p.contains(s).all()
    assert torch.allclose(s.mean(0), p.mean, atol=0.03)
    assert torch.allclose(s.std(0), p.std, atol=0.02)
    lp = p.log_prob(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
    assert float(lp[0]) == pytest.approx(-math.log(8.0))
    assert lp[1] == -math.inf


def test_box_uniform_bad_inputs():
    with pytest.raises(ValueError, match="high"):
        BoxUniform([0.0], [0.0])
    with pytest.raises(ValueError, match="low"):
        BoxUniform([0.0, 1.0], [1.0])
    p = BoxUniform([0.0], [1.0])
    with pytest.raises(ValueError, match="theta"):
        p.log_prob(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="theta"):
        p.contains(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="n"):
        p.sample(0)


def test_gaussian_prior_density_matches_torch_and_samples():
    p = GaussianPrior([0.0, 1.0], [0.5, 2.0])
    x = torch.tensor([[0.3, -1.0], [1.0, 4.0]])
    ref = torch.distributions.Normal(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 2.0])).log_prob(x).sum(1)
    assert torch.allclose(p.log_prob(x), ref)
    assert p.contains(x).all()
    s = p.sample(40000, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(s.std(0), p.std, rtol=0.03)
    assert GaussianPrior(torch.zeros(3), 0.1).std.shape == (3,)


def test_gaussian_prior_bad_inputs():
    with pytest.raises(ValueError, match="std"):
        GaussianPrior([0.0, 0.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="std"):
        GaussianPrior([0.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="theta"):
        GaussianPrior([0.0], 1.0).log_prob(torch.zeros(2, 2))
