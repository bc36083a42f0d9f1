"""NSLS (dynamics drifting across trials): the simulator's drift, the GP-smoothed M-step for A^(r) from exact
sufficient statistics, the fit's shapes on a small problem, and bad input."""

import numpy as np
import pytest
import torch

from neuroinverse.inference import (
    LaplacePosterior,
    dynamics_statistics,
    fit_nsls,
    fit_plds,
    gp_dynamics_posterior,
    slow_coefficients,
    update_dynamics_gp,
)
from neuroinverse.metrics import pearson_r
from neuroinverse.simulators import simulate_poisson_lds

F64 = torch.float64


def exact_posterior(x):
    """A 'posterior' that is the true latents: zero covariances."""
    x = torch.as_tensor(x, dtype=F64)
    R, T, k = x.shape
    return LaplacePosterior(
        mean=x,
        cov=torch.zeros(R, T, k, k, dtype=F64),
        log_joint=torch.zeros(R, dtype=F64),
        newton_steps=0,
        cross=torch.zeros(R, T - 1, k, k, dtype=F64),
    )


def test_simulator_drift_and_slow_loading_leave_the_default_alone():
    base = simulate_poisson_lds(n_trials=5, T=20, seed=3)
    same = simulate_poisson_lds(n_trials=5, T=20, seed=3, slow_loading=0.1 / 3)
    np.testing.assert_array_equal(base.y, same.y)
    d = simulate_poisson_lds(n_trials=11, T=20, ar_drift=(0.7, 0.95), slow_loading=0.3, seed=0)
    np.testing.assert_allclose(d.A_trials[:, 2, 2], np.linspace(0.7, 0.95, 11))
    np.testing.assert_allclose(d.A_trials[:, 0, 0], 0.0)
    assert np.isclose(d.C[0, 2], 0.3) and np.isclose(d.C[0, 0], 0.1)
    with pytest.raises(ValueError, match="slow_loading"):
        simulate_poisson_lds(n_trials=3, T=10, slow_loading=-1.0)


def test_gp_mstep_recovers_a_linear_drift_from_exact_statistics():
    d = simulate_poisson_lds(n_trials=60, T=200, ar_drift=(0.7, 0.95), seed=1)
    post = exact_posterior(d.x)
    S, b = dynamics_statistics(post, d.u, d.B)
    assert S.shape == b.shape == (60, 4, 4)
    trials = np.arange(1, 61)
    A, B, M, hyper = update_dynamics_gp(post, d.u, torch.as_tensor(d.B), trials, 1e-3, 400.0, torch.zeros(4, 4))
    assert A.shape == (60, 4, 4) and B.shape == (4, 2) and M.shape == (4, 4)
    true = d.A_trials[:, 2, 2]
    for j in (2, 3):
        assert pearson_r(A[:, j, j].numpy(), true) > 0.9
        assert np.sqrt(((A[:, j, j].numpy() - true) ** 2).mean()) < 0.05
    assert np.abs(A[:, :2].numpy()).max() < 0.2  # the input-driven rows stay near 0
    np.testing.assert_allclose(B.numpy(), d.B, atol=0.5)
    assert np.sqrt(hyper.tau2) > 5  # a smooth drift is seen as smooth
    c = slow_coefficients(A, 2)
    assert c.shape == (60,) and pearson_r(c, true) > 0.9
    # the GP smooths: the per-trial least-squares estimates are much noisier
    ls = torch.linalg.solve(S, b.transpose(-1, -2)).transpose(-1, -2)[:, 2, 2].numpy()
    assert np.abs(np.diff(ls)).mean() > 3 * np.abs(np.diff(A[:, 2, 2].numpy())).mean()


def test_gp_posterior_agrees_with_a_dense_solve():
    rng = np.random.default_rng(0)
    R, k = 6, 2
    G = rng.standard_normal((R, 5, k))
    S = torch.as_tensor(np.einsum("rti,rtj->rij", G, G), dtype=F64)
    b = torch.as_tensor(rng.standard_normal((R, k, k)), dtype=F64)
    M = torch.as_tensor(rng.standard_normal((k, k)), dtype=F64)
    trials = np.arange(1, R + 1)
    mean, cov = gp_dynamics_posterior(S, b, trials, 0.5, 4.0, M, jitter=1e-2)
    r = np.arange(1, R + 1)
    Kt = 0.5 * np.exp(-((r[:, None] - r[None]) ** 2) / 8.0) + 1e-2 * np.eye(R)
    K = np.kron(Kt, np.eye(k))
    P = np.linalg.inv(K) + _blockdiag(S.numpy())
    np.testing.assert_allclose(cov.numpy(), np.linalg.inv(P), atol=1e-10)
    for i in range(k):
        want = np.linalg.solve(P, np.linalg.solve(K, np.tile(M[i].numpy(), R)) + b[:, i, :].numpy().ravel())
        np.testing.assert_allclose(mean[:, i, :].numpy().ravel(), want, atol=1e-9)


def _blockdiag(S):
    R, k, _ = S.shape
    out = np.zeros((R * k, R * k))
    for r in range(R):
        out[r * k : (r + 1) * k, r * k : (r + 1) * k] = S[r]
    return out


def test_fit_nsls_shapes_on_a_small_problem():
    d = simulate_poisson_lds(n_trials=8, T=30, p=10, ar_drift=(0.7, 0.95), slow_loading=0.3, seed=0)
    start = fit_plds(d.y, d.u, 4, model="nplds", n_iter=2, seed=0, progress=False)
    f = fit_nsls(d.y, d.u, start, n_iter=2, progress=False)
    assert f.A_trials.shape == (8, 4, 4) and f.B.shape == (4, 2) and f.C.shape == (10, 4)
    assert f.h_mean.shape == (8, 4) and f.posterior.mean.shape == (8, 30, 4)
    assert len(f.history) == 2 and np.isfinite(f.A_trials.numpy()).all()
    assert f.sigma2_A > 0 and f.tau2_A > 0


def test_bad_input_names_the_argument():
    d = simulate_poisson_lds(n_trials=4, T=20, p=10, seed=0)
    S = torch.eye(2, dtype=F64).expand(4, 2, 2)
    with pytest.raises(ValueError, match="b must"):
        gp_dynamics_posterior(S, torch.zeros(4, 3, 3), np.arange(4), 1.0, 1.0, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="M must"):
        gp_dynamics_posterior(S, torch.zeros(4, 2, 2), np.arange(4), 1.0, 1.0, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="trials must"):
        gp_dynamics_posterior(S, torch.zeros(4, 2, 2), np.arange(5), 1.0, 1.0, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="sigma2"):
        gp_dynamics_posterior(S, torch.zeros(4, 2, 2), np.arange(4), -1.0, 1.0, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="n_slow"):
        slow_coefficients(np.zeros((3, 2, 2)), 3)
    with pytest.raises(ValueError, match="A_trials"):
        slow_coefficients(np.zeros((3, 2)))
    start = fit_plds(d.y, d.u, 2, model="plds", n_iter=1, seed=0, progress=False)
    with pytest.raises(ValueError, match="start"):
        fit_nsls(d.y, d.u, start, n_iter=1, progress=False)
    start = fit_plds(d.y, d.u, 2, model="nplds", n_iter=1, seed=0, progress=False)
    with pytest.raises(ValueError, match="n_iter"):
        fit_nsls(d.y, d.u, start, n_iter=0, progress=False)
    with pytest.raises(ValueError, match="y"):
        fit_nsls(-d.y, d.u, start, n_iter=1, progress=False)
    with pytest.raises(ValueError, match="start must be fitted to the same"):
        fit_nsls(d.y[:3], d.u, start, n_iter=1, progress=False)
