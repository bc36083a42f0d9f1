"""Tests of the toy SBI simulators and their exact answers."""

import math

import numpy as np
import pytest
import torch

from neuroinverse.simulators import (
    GAUSSIAN_1D_X_O,
    SLCP_THETA_O,
    TWO_MOONS_THETA_O,
    TWO_MOONS_X_O,
    gaussian_1d,
    gaussian_1d_log_likelihood,
    gaussian_1d_posterior_log_prob,
    gaussian_linear,
    gaussian_linear_log_likelihood,
    gaussian_linear_posterior,
    slcp,
    slcp_distractors,
    slcp_log_likelihood,
    slcp_prior,
    slcp_reference_posterior,
    two_moons,
    two_moons_grid_posterior,
    two_moons_log_likelihood,
    two_moons_prior,
    two_moons_reference_posterior,
)


def gen(s=0):
    return torch.Generator().manual_seed(s)


def test_two_moons_likelihood_integrates_to_one_over_x():
    theta = torch.tensor([[0.3, -0.6]], dtype=torch.float64)
    centre = two_moons(theta.float(), generator=gen()).double()[0]
    a = torch.linspace(float(centre[0]) - 0.3, float(centre[0]) + 0.3, 1201, dtype=torch.float64)
    b = torch.linspace(float(centre[1]) - 0.3, float(centre[1]) + 0.3, 1201, dtype=torch.float64)
    A, B = torch.meshgrid(a, b, indexing="ij")
    x = torch.stack([A.ravel(), B.ravel()], 1)
    lik = two_moons_log_likelihood(theta.expand(len(x), 2), x).exp().reshape(1201, 1201)
    mass = torch.trapezoid(torch.trapezoid(lik, b, dim=1), a).item()
    assert mass == pytest.approx(1.0, abs=0.01)


def test_two_moons_likelihood_matches_monte_carlo_histogram():
    theta = torch.tensor([[-0.4, 0.2]])
    x = two_moons(theta.expand(200000, 2), generator=gen(1)).double()
    edges_u = np.linspace(float(x[:, 0].min()), float(x[:, 0].max()), 9)
    edges_v = np.linspace(float(x[:, 1].min()), float(x[:, 1].max()), 9)
    hist, _, _ = np.histogram2d(x[:, 0].numpy(), x[:, 1].numpy(), bins=[edges_u, edges_v])
    hist /= len(x)
    # integrate the analytic density over each bin on a fine sub-grid
    k = 60
    fu = np.linspace(edges_u[0], edges_u[-1], 8 * k + 1)
    fv = np.linspace(edges_v[0], edges_v[-1], 8 * k + 1)
    cu, cv = (fu[1:] + fu[:-1]) / 2, (fv[1:] + fv[:-1]) / 2
    U, V = np.meshgrid(cu, cv, indexing="ij")
    pts = torch.as_tensor(np.stack([U.ravel(), V.ravel()], 1))
    dens = two_moons_log_likelihood(theta.double().expand(len(pts), 2), pts).exp().numpy().reshape(8 * k, 8 * k)
    mass = dens.reshape(8, k, 8, k).sum((1, 3)) * (fu[1] - fu[0]) * (fv[1] - fv[0])
    assert np.abs(mass - hist).max() < 0.01
    assert mass.sum() == pytest.approx(1.0, abs=0.01)


def test_two_moons_true_parameter_is_likely_for_the_observation():
    ll_true = two_moons_log_likelihood(torch.tensor([TWO_MOONS_THETA_O]), TWO_MOONS_X_O)
    ll_far = two_moons_log_likelihood(torch.tensor([[0.8, 0.8]]), TWO_MOONS_X_O)
    assert float(ll_true) > 0 > float(ll_far)


def test_grid_posterior_is_normalised_and_symmetric():
    axis, dens = two_moons_grid_posterior(TWO_MOONS_X_O, grid=200)
    h = axis[1] - axis[0]
    assert dens.shape == (200, 200)
    assert dens.sum() * h * h == pytest.approx(1.0, abs=1e-9)
    # x depends on θ only through |θ1 + θ2| and θ2 - θ1: the posterior is symmetric under
    # (θ1, θ2) -> (-θ2, -θ1), i.e. the grid flipped on both axes and transposed.
    assert np.allclose(dens, dens[::-1, ::-1].T, atol=1e-6 * dens.max())


def _exact_two_moons_posterior(x_o, n, g):
    """Exact sampler: invert x = p + f(θ) for each noise draw p (both branches, |det| = 1)."""
    out = []
    s2 = math.sqrt(2)
    while sum(len(o) for o in out) < n:
        m = 4 * n
        a = math.pi * (torch.rand(m, generator=g, dtype=torch.float64) - 0.5)
        r = 0.1 + 0.01 * torch.randn(m, generator=g, dtype=torch.float64)
        p = torch.stack([r * torch.cos(a) + 0.25, r * torch.sin(a)], 1)
        f = torch.tensor(x_o, dtype=torch.float64) - p
        s = -s2 * f[:, 0] * torch.where(torch.rand(m, generator=g) < 0.5, -1.0, 1.0).double()
        d = s2 * f[:, 1]
        th = torch.stack([(s - d) / 2, (s + d) / 2], 1)
        ok = (f[:, 0] <= 0) & (th.abs() <= 1).all(1)
        out.append(th[ok])
    return torch.cat(out)[:n]


def test_grid_reference_samples_match_exact_posterior():
    ref = two_moons_reference_posterior(TWO_MOONS_X_O, 20000, generator=gen(2)).double()
    exact = _exact_two_moons_posterior(TWO_MOONS_X_O, 20000, gen(3))
    assert torch.allclose(ref.mean(0), exact.mean(0), atol=0.02)
    assert torch.allclose(ref.std(0), exact.std(0), atol=0.02)
    # fraction in the lower-left crescent
    assert float((ref.sum(1) < 0).double().mean()) == pytest.approx(float((exact.sum(1) < 0).double().mean()), abs=0.02)
    assert ref.shape == (20000, 2) and (ref.abs() <= 1).all()


def test_gaussian_linear_posterior_matches_conjugate_computation():
    x_o = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    mean, cov = gaussian_linear_posterior(x_o, prior_var=0.2, noise_var=0.05)
    S0, S = 0.2 * torch.eye(3, dtype=torch.float64), 0.05 * torch.eye(3, dtype=torch.float64)
    P = torch.linalg.inv(S0) + torch.linalg.inv(S)
    cov_ref = torch.linalg.inv(P)
    mean_ref = cov_ref @ torch.linalg.inv(S) @ x_o
    assert torch.allclose(cov, cov_ref) and torch.allclose(mean, mean_ref)
    # sbibm numbers: prior and noise variance 0.1 -> cov 0.05 I, mean x_o / 2
    m, c = gaussian_linear_posterior(x_o, prior_var=0.1, noise_var=0.1)
    assert torch.allclose(c, 0.05 * torch.eye(3, dtype=torch.float64)) and torch.allclose(m, x_o / 2)


def test_gaussian_linear_simulator_and_likelihood():
    theta = torch.tensor([[1.0, -2.0]]).expand(50000, 2)
    x = gaussian_linear(theta, noise_var=0.1, generator=gen(4))
    assert x.shape == (50000, 2)
    assert torch.allclose(x.mean(0), theta[0], atol=0.01)
    assert torch.allclose(x.var(0), torch.full((2,), 0.1), atol=0.005)
    ll = gaussian_linear_log_likelihood(theta[:1], torch.tensor([1.0, -2.0]), noise_var=0.1)
    assert float(ll) == pytest.approx(-math.log(2 * math.pi * 0.1), rel=1e-5)


def test_gaussian_1d_posterior_is_normalised_truncated_gaussian():
    grid = torch.linspace(-2, 2, 40001, dtype=torch.float64)
    p = gaussian_1d_posterior_log_prob(grid.unsqueeze(1), GAUSSIAN_1D_X_O).exp()
    assert torch.trapezoid(p, grid).item() == pytest.approx(1.0, abs=1e-6)
    # near the edge the truncation matters: x_o = 1.9 puts mass against θ = 2
    p2 = gaussian_1d_posterior_log_prob(grid.unsqueeze(1), 1.9).exp()
    assert torch.trapezoid(p2, grid).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.isinf(gaussian_1d_posterior_log_prob(torch.tensor([[2.5]]))).all()
    # the posterior is the prior (flat) times the likelihood, renormalised
    lik = gaussian_1d_log_likelihood(grid.unsqueeze(1), torch.tensor([GAUSSIAN_1D_X_O])).exp()
    assert torch.allclose(p, lik / torch.trapezoid(lik, grid), rtol=1e-5)
    x = gaussian_1d(torch.zeros(40000, 1), generator=gen(5))
    assert float(x.var()) == pytest.approx(0.1, rel=0.03)


def test_slcp_likelihood_matches_empirical_moments_and_mvn():
    theta = torch.tensor([SLCP_THETA_O])
    x = slcp(theta.expand(40000, 5), generator=gen(6)).reshape(-1, 2)
    s1, s2, rho = 1.0, 0.81, math.tanh(0.6)
    cov = torch.tensor([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    assert torch.allclose(x.mean(0), torch.tensor([0.7, -2.9]), atol=0.02)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.03)
    xo = slcp(theta, generator=gen(7))
    mvn = torch.distributions.MultivariateNormal(torch.tensor([0.7, -2.9]).double(), cov.double())
    ref = mvn.log_prob(xo.double().reshape(4, 2)).sum()
    assert float(slcp_log_likelihood(theta, xo)) == pytest.approx(float(ref), abs=1e-4)


def test_slcp_distractors_and_reference_posterior_symmetry():
    theta = slcp_prior().sample(4, generator=gen(8))
    assert slcp_distractors(theta, n_distractors=20, generator=gen(9)).shape == (4, 28)
    xo = slcp(torch.tensor([SLCP_THETA_O]), generator=gen(10))[0]
    ref = slcp_reference_posterior(xo, 400, n_chains=40, n_warmup=300, thin=2, generator=gen(11))
    assert ref.shape == (400, 5)
    assert (ref.abs() <= 3).all()
    # the four sign modes of (θ3, θ4) are equally weighted
    assert 0.35 < float((ref[:, 2] > 0).float().mean()) < 0.65
    assert 0.35 < float((ref[:, 3] > 0).float().mean()) < 0.65


def test_simulators_reject_bad_theta():
    for fn, d in [(two_moons, 2), (slcp, 5), (gaussian_1d, 1)]:
        with pytest.raises(ValueError, match="theta"):
            fn(torch.zeros(3, d + 1))
        with pytest.raises(ValueError, match="theta"):
            fn(torch.full((3, d), float("nan")))
    with pytest.raises(ValueError, match="theta"):
        gaussian_linear(torch.zeros(3))
    with pytest.raises(ValueError, match="x"):
        two_moons_log_likelihood(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="x_o"):
        two_moons_grid_posterior((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="noise_var"):
        gaussian_linear(torch.zeros(3, 2), noise_var=0.0)


def test_priors_of_the_tasks():
    p = two_moons_prior()
    assert p.dim == 2 and torch.equal(p.low, torch.tensor([-1.0, -1.0]))
    assert slcp_prior().dim == 5
