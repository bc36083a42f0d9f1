"""The nonstationary PLDS: the Fig-2 simulation, the E-step's extensions, the GP over trials (Kronecker
against dense), the M-steps, the EM loop, held-out prediction and bad input."""

import numpy as np
import pytest
import torch

from neuroinverse.inference import (
    LaplacePosterior,
    PLDSParams,
    block_tridiagonal_covariances,
    fit_plds,
    gp_kl,
    heldout_error,
    laplace_estep,
    laplace_h,
    poisson_glm_trial_means,
    predict_h,
    prior_mean_trajectory,
    select_hyperparameters,
    simulate_trial_means,
    timescale_from_trial_means,
    trial_kernel,
    update_dynamics,
    update_loadings,
)
from neuroinverse.inference.nplds import LOG_SIGMA2_GRID, LOG_TAU2_GRID
from neuroinverse.metrics import autocovariance_split, trial_mean_log_rates, variance_split
from neuroinverse.simulators import poisson_lds_inputs, simulate_poisson_lds

F64 = torch.float64


def test_simulation_is_the_papers_figure_2():
    d = simulate_poisson_lds(seed=1)
    assert d.y.shape == (100, 200, 40) and np.issubdtype(d.y.dtype, np.integer)
    np.testing.assert_array_equal(d.A, np.diag([0, 0, 0.9, 0.9]))
    np.testing.assert_array_equal(d.B, [[5, 0], [0, 6], [0, 0], [0, 0]])
    want_C = np.zeros((40, 4))
    want_C[:20, 0], want_C[:20, 2], want_C[20:, 1], want_C[20:, 3] = 0.1, 0.1 / 3, 0.1, 0.1 / 3
    np.testing.assert_allclose(d.C, want_C)
    np.testing.assert_array_equal(d.d, np.r_[np.full(20, -2.2), np.full(20, -1.2)])
    # h_1 = h_3 = g (peak 12 at trial 25, SD 12.5), h_2 = h_4 = -g reversed (trough at trial 76)
    assert d.h[:, 0].argmax() + 1 == 25 and d.h[:, 0].max() == pytest.approx(12.0)
    assert d.h[:, 1].argmin() + 1 == 76 and d.h[:, 1].min() == pytest.approx(-12.0)
    np.testing.assert_array_equal(d.h[:, 0], d.h[:, 2])
    np.testing.assert_allclose(d.h[:, 1], -d.h[::-1, 0])
    g = np.exp(-((np.arange(1, 101) - 25) ** 2) / (2 * 12.5**2)) * 12
    np.testing.assert_allclose(d.h[:, 0], g)
    # inputs: two cycles of a rotating stimulus in bins 51..150, zero elsewhere
    u = poisson_lds_inputs(200)
    np.testing.assert_array_equal(d.u, u)
    assert (u[:50] == 0).all() and (u[150:] == 0).all()
    np.testing.assert_allclose(u[50], 0.4 * np.array([np.cos(4 * np.pi * 51 / 100), np.sin(4 * np.pi * 51 / 100)]))
    np.testing.assert_allclose(d.z, (d.x + d.h[:, None]) @ d.C.T + d.d)
    # group trial-mean log rates: -2.2 -> -0.6 around trial 25, -1.2 -> -2.8 around trial 76
    gm = trial_mean_log_rates(d.z, d.groups)
    noise_free = (d.h @ d.C.T + d.d).reshape(100, 2, 20).mean(2)
    np.testing.assert_allclose(noise_free[24], [-0.6, -1.2], atol=0.01)
    np.testing.assert_allclose(noise_free[75], [-2.2, -2.8], atol=0.01)
    assert abs(noise_free[60:, 0] + 2.2).max() < 0.05 and abs(noise_free[:40, 1] + 1.2).max() < 0.05
    assert abs(gm - noise_free).max() < 0.15
    total, cond, share = variance_split(d.z)
    assert 0.25 < total - cond < 0.4 and 0.015 < cond < 0.04 and 0.85 < share < 0.95


def test_simulation_options_and_errors():
    d = simulate_poisson_lds(n_trials=20, T=40, p=6, k=2, ar_drift=(0.7, 0.95), seed=0)
    assert d.A_trials.shape == (20, 2, 2) and (d.A_trials == 0).all()  # k = 2: input-driven only
    d = simulate_poisson_lds(n_trials=20, T=40, p=6, k=4, ar_drift=(0.7, 0.95), seed=0)
    np.testing.assert_allclose(d.A_trials[[0, -1], 2, 2], [0.7, 0.95])
    with pytest.raises(ValueError, match="k=7 must not exceed"):
        simulate_poisson_lds(p=6, k=7)
    with pytest.raises(ValueError, match="ar_drift"):
        simulate_poisson_lds(ar_drift=(0.7, 1.2))


def _dense_prior_precision(A, T, k):
    J = torch.zeros(T * k, T * k, dtype=F64)
    Id = torch.eye(k, dtype=F64)
    for t in range(T):
        J[t * k : (t + 1) * k, t * k : (t + 1) * k] += Id
        if t + 1 < T:
            J[t * k : (t + 1) * k, t * k : (t + 1) * k] += A.T @ A
            J[t * k : (t + 1) * k, (t + 1) * k : (t + 2) * k] -= A.T
            J[(t + 1) * k : (t + 2) * k, t * k : (t + 1) * k] -= A
    return J


def test_block_tridiagonal_covariances_match_the_dense_inverse():
    g = torch.Generator().manual_seed(0)
    R, T, k = 2, 7, 3
    M = torch.randn(R, T, k, k, generator=g, dtype=F64)
    D = M @ M.mT + 5 * torch.eye(k, dtype=F64)
    U = torch.randn(R, k, k, generator=g, dtype=F64)  # one super-diagonal block per trial
    cov, cross = block_tridiagonal_covariances(D, U)
    for r in range(R):
        J = torch.zeros(T * k, T * k, dtype=F64)
        for t in range(T):
            J[t * k : (t + 1) * k, t * k : (t + 1) * k] = D[r, t]
            if t + 1 < T:
                J[t * k : (t + 1) * k, (t + 1) * k : (t + 2) * k] = U[r]
                J[(t + 1) * k : (t + 2) * k, t * k : (t + 1) * k] = U[r].T
        S = torch.linalg.inv(J)
        for t in range(T):
            torch.testing.assert_close(cov[r, t], S[t * k : (t + 1) * k, t * k : (t + 1) * k])
            if t + 1 < T:
                torch.testing.assert_close(cross[r, t], S[t * k : (t + 1) * k, (t + 1) * k : (t + 2) * k])


def test_estep_with_inputs_offsets_and_per_trial_parameters():
    d = simulate_poisson_lds(n_trials=3, T=12, p=6, k=2, seed=2)
    R, T, k = 3, 12, 2
    rng = np.random.default_rng(0)
    A = np.stack([0.5 * np.eye(k) + 0.1 * rng.standard_normal((k, k)) for _ in range(R)])
    C = 0.3 * rng.standard_normal((R, 6, k))
    dd = -1.0 + 0.1 * rng.standard_normal((R, 6))
    B = np.array([[1.0, 0.0], [0.0, -1.0]])
    m = prior_mean_trajectory(A, B, d.u[:T] * 5, np.zeros(k))
    off = 0.1 * rng.standard_normal((R, 1, 6))
    eye = np.eye(k)
    post = laplace_estep(d.y[:, :T], A, eye, eye, C, dd, d.h[:, :k] * 0.05, prior_mean=m, eta_offset=off)
    assert post.cross.shape == (R, T - 1, k, k)
    y = torch.as_tensor(d.y[:, :T], dtype=F64)
    At, Ct, dt, ht, ot = (torch.as_tensor(v) for v in (A, C, dd, d.h[:, :k] * 0.05, off))
    for r in range(R):
        x = post.mean[r].clone().requires_grad_(True)

        def f(x, r=r):
            eta = (x + ht[r]) @ Ct[r].T + dt[r] + ot[r]
            e = (x - m[r])[1:] - (x - m[r])[:-1] @ At[r].T
            return (y[r] * eta - eta.exp()).sum() - 0.5 * (e**2).sum() - 0.5 * ((x[0] - m[r, 0]) ** 2).sum()

        (grad,) = torch.autograd.grad(f(x), x)
        assert grad.abs().max() < 1e-6
        H = torch.autograd.functional.hessian(f, post.mean[r]).reshape(T * k, T * k)
        S = torch.linalg.inv(-H)
        torch.testing.assert_close(post.cov[r, 4], S[8:10, 8:10])
        torch.testing.assert_close(post.cross[r, 4], S[8:10, 10:12])


def test_estep_rejects_bad_input_naming_the_argument():
    y = np.ones((2, 5, 3))
    eye = np.eye(2)
    C, d = np.zeros((3, 2)), np.zeros(3)
    with pytest.raises(ValueError, match="k=4 must not exceed the population size p=3"):
        laplace_estep(y, np.eye(4), np.eye(4), np.eye(4), np.zeros((3, 4)), d)
    with pytest.raises(ValueError, match="C must have shape"):
        laplace_estep(y, eye, eye, eye, np.zeros((4, 2)), d)
    with pytest.raises(ValueError, match="d contains NaN"):
        laplace_estep(y, eye, eye, eye, C, np.array([0, np.nan, 0]))


def _offset_problem(R=6, k=2, p=5, seed=0):
    rng = np.random.default_rng(seed)
    C = torch.as_tensor(0.4 * rng.standard_normal((p, k)))
    base = torch.as_tensor(rng.uniform(5, 20, (R, p)))
    h = np.sin(np.arange(R) / 2)[:, None] * np.ones(k)
    Y = torch.as_tensor(rng.poisson(base.numpy() * np.exp(h @ C.numpy().T)), dtype=F64)
    return Y, base, C


def test_laplace_h_is_the_mode_and_its_inverse_hessian():
    Y, base, C = _offset_problem()
    R, k = Y.shape[0], C.shape[1]
    trials, m_h = np.arange(1, R + 1), torch.tensor([0.1, -0.2], dtype=F64)
    mean, cov = laplace_h(Y, base, C, m_h, trials, 2.0, 4.0)
    Kt = trial_kernel(trials, trials, 2.0, 4.0) + 1e-3 * torch.eye(R, dtype=F64)
    Ki = torch.linalg.inv(torch.kron(Kt, torch.eye(k, dtype=F64)))

    def psi(h):
        eta = h.reshape(R, k) @ C.T
        dev = h - m_h.repeat(R)
        return (Y * eta - base * eta.exp()).sum() - 0.5 * dev @ Ki @ dev

    h = mean.reshape(-1).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(psi(h), h)
    assert grad.abs().max() < 1e-6
    H = torch.autograd.functional.hessian(psi, mean.reshape(-1))
    torch.testing.assert_close(cov, torch.linalg.inv(-H), rtol=1e-6, atol=1e-9)


def test_kronecker_kl_matches_the_dense_kl():
    Y, base, C = _offset_problem(R=7, k=2)
    R, k = 7, 2
    trials = np.arange(1, R + 1) * 2.0
    mean, cov = laplace_h(Y, base, C, torch.zeros(k, dtype=F64), trials, 1.0, 9.0)
    m_h = mean.mean(0)
    ls2, lt2 = np.array([-1.0, 0.5]), np.array([-6.0, 1.0, 3.0])
    kl = gp_kl(mean, cov, m_h, trials, ls2, lt2)
    for i, a in enumerate(ls2):
        for j, b in enumerate(lt2):
            K = torch.kron(
                trial_kernel(trials, trials, np.exp(a), np.exp(b)) + 1e-3 * torch.eye(R, dtype=F64),
                torch.eye(k, dtype=F64),
            )
            dev = (mean - m_h).reshape(-1)
            dense = 0.5 * (torch.trace(torch.linalg.solve(K, cov)) + dev @ torch.linalg.solve(K, dev) + torch.logdet(K))
            assert kl[i, j] == pytest.approx(float(dense), rel=1e-8)
    sel = select_hyperparameters(mean, cov, m_h, trials, log_sigma2=ls2, log_tau2=lt2)
    assert sel.kl.shape == (2, 3) and np.exp(ls2).min() <= sel.sigma2 <= np.exp(ls2).max()
    assert len(LOG_SIGMA2_GRID) == 26 and len(LOG_TAU2_GRID) == 51


def test_predict_h_is_the_gp_mean_and_falls_back_to_the_prior_mean():
    rng = np.random.default_rng(0)
    tr, te = np.array([1.0, 2, 4, 5]), np.array([3.0])
    h, m_h = torch.as_tensor(rng.standard_normal((4, 2))), torch.tensor([0.5, -0.5], dtype=F64)
    K = trial_kernel(tr, tr, 2.0, 3.0) + 1e-3 * torch.eye(4, dtype=F64)
    want = m_h + trial_kernel(te, tr, 2.0, 3.0) @ torch.linalg.solve(K, h - m_h)
    torch.testing.assert_close(predict_h(te, tr, h, m_h, 2.0, 3.0), want)
    torch.testing.assert_close(predict_h(te, tr, h, m_h, 2.0, np.exp(-6)), m_h[None], atol=1e-12, rtol=0)


def test_timescale_from_trial_means_sees_slow_drift_and_not_shuffled_trials():
    d = simulate_poisson_lds(n_trials=60, T=50, seed=0)
    slow = np.sqrt(timescale_from_trial_means(d.y).tau2)
    fast = np.sqrt(timescale_from_trial_means(d.y[np.random.default_rng(0).permutation(60)]).tau2)
    assert slow > 4 and fast < 2


def test_update_dynamics_recovers_a_gaussian_lds():
    rng = np.random.default_rng(0)
    R, T, k = 40, 100, 2
    A = np.array([[0.8, 0.1], [-0.1, 0.7]])
    B = np.array([[1.0], [0.5]])
    u = rng.standard_normal((T, 1))
    x = np.zeros((R, T, k))
    x[:, 0] = u[0] @ B.T + rng.standard_normal((R, k))
    for t in range(1, T):
        x[:, t] = x[:, t - 1] @ A.T + u[t] @ B.T + rng.standard_normal((R, k))
    post = LaplacePosterior(
        mean=torch.as_tensor(x),
        cov=torch.zeros(R, T, k, k, dtype=F64),
        log_joint=torch.zeros(R),
        newton_steps=0,
        cross=torch.zeros(R, T - 1, k, k, dtype=F64),
    )
    A_hat, B_hat, _ = update_dynamics(post, torch.as_tensor(u))
    np.testing.assert_allclose(A_hat.numpy(), A, atol=0.03)
    np.testing.assert_allclose(B_hat.numpy(), B, atol=0.03)
    A_r, B_r, _ = update_dynamics(post, torch.as_tensor(u), per_trial=True)
    assert A_r.shape == (R, k, k) and B_r.shape == (R, k, 1)


def test_update_loadings_reaches_the_optimum():
    g = torch.Generator().manual_seed(0)
    R, T, k, p = 3, 20, 2, 5
    mu = 0.5 * torch.randn(R, T, k, generator=g, dtype=F64)
    M = 0.2 * torch.randn(R, T, k, k, generator=g, dtype=F64)
    cov = M @ M.mT + 0.05 * torch.eye(k, dtype=F64)
    y = torch.poisson(torch.full((R, T, p), 1.0, dtype=F64), generator=g)
    post = LaplacePosterior(mean=mu, cov=cov, log_joint=torch.zeros(R), newton_steps=0)
    C, d = update_loadings(
        y, post, 0.1 * torch.randn(p, k, generator=g, dtype=F64), torch.zeros(p, dtype=F64), steps=30
    )
    w = torch.cat([C, d[:, None]], 1).requires_grad_(True)
    c, dd = w[:, :k], w[:, k]
    lin = mu @ c.T + dd
    f = (y * lin - (lin + 0.5 * torch.einsum("rtij,pi,pj->rtp", cov, c, c)).exp()).sum()
    (grad,) = torch.autograd.grad(f, w)
    assert grad.abs().max() < 1e-8


@pytest.mark.parametrize("model", ["nplds", "no-coupling", "plds", "independent"])
def test_fit_plds_runs_every_variant(model):
    d = simulate_poisson_lds(n_trials=12, T=40, p=8, k=4, seed=0)
    fit = fit_plds(d.y, d.u, 2, model=model, n_iter=2, progress=False)
    assert fit.log_rates().shape == (12, 40, 8) and len(fit.history) == 2
    assert np.isfinite(fit.log_rates()).all()
    if model in ("nplds", "no-coupling"):
        assert fit.h_cov.shape == (24, 24) and fit.h_blocks().shape == (12, 2, 2)
        assert fit.predict_h([13, 14]).shape == (2, 2)
    if model == "independent":
        assert fit.params.A.shape == (12, 2, 2) and fit.params.C.shape == (12, 8, 2)
    else:
        pred = simulate_trial_means(fit.params, d.u, fit.predict_h([13]), n_sim=20)
        assert pred.shape == (1, 8) and (pred > 0).all()


def test_fit_plds_rejects_bad_input_naming_the_argument():
    d = simulate_poisson_lds(n_trials=4, T=10, p=6, k=2, seed=0)
    y = d.y.astype(float)
    for bad, match in [(-1.0, "y must hold non-negative"), (0.5, "y must hold integer"), (np.nan, "y contains NaN")]:
        yb = y.copy()
        yb[1, 2, 3] = bad
        with pytest.raises(ValueError, match=match):
            fit_plds(yb, d.u, 2, progress=False)
    with pytest.raises(ValueError, match="latent dimension k=7 must not exceed the population size p=6"):
        fit_plds(y, d.u, 7, progress=False)
    ub = d.u.copy()
    ub[3, 0] = np.nan
    with pytest.raises(ValueError, match="u contains NaN"):
        fit_plds(y, ub, 2, progress=False)
    with pytest.raises(ValueError, match="model must be one of"):
        fit_plds(y, d.u, 2, model="gp", progress=False)
    with pytest.raises(ValueError, match="trials must have one number per trial"):
        fit_plds(y, d.u, 2, trials=[1, 2], progress=False)


def test_simulated_trial_means_and_the_error_definition():
    P = PLDSParams(
        A=torch.zeros(2, 2, dtype=F64),
        B=torch.zeros(2, 1, dtype=F64),
        C=torch.zeros(3, 2, dtype=F64),
        d=torch.log(torch.tensor([0.5, 1.0, 2.0], dtype=F64)),
    )
    pred = simulate_trial_means(P, np.zeros((10, 1)), np.zeros((2, 2)), n_sim=5)
    np.testing.assert_allclose(pred, [[0.5, 1.0, 2.0]] * 2)
    y = np.zeros((2, 4, 3), dtype=int)
    y[0, :, 0] = 1  # observed mean 1 for neuron 0 in trial 0
    assert heldout_error(np.zeros((2, 3)), y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="predicted must be"):
        heldout_error(np.zeros((3, 3)), y)


def test_poisson_glm_follows_a_smooth_trial_modulation():
    rng = np.random.default_rng(0)
    R, T, p = 40, 400, 3
    rate = 0.5 * np.exp(np.sin(np.arange(1, R + 1) / 6))[:, None, None] * np.ones((1, T, p))
    y = rng.poisson(rate)
    test = np.array([10, 20, 30])
    train = np.setdiff1d(np.arange(R), test)
    pred, alpha = poisson_glm_trial_means(y[train], train + 1, test + 1)
    assert pred.shape == (3, p) and alpha > 0
    np.testing.assert_allclose(pred, rate[test, 0], rtol=0.2)


def test_covariance_split_metrics():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((30, 100, 4)) * 0.1 + rng.standard_normal((30, 1, 4))
    total, cond, share = variance_split(z)
    assert 0.8 < share < 1.0 and cond == pytest.approx(0.01, rel=0.2)
    tot, con = autocovariance_split(z, 3)
    assert tot.shape == con.shape == (4,) and tot[0] == pytest.approx(total, rel=0.05)
    assert trial_mean_log_rates(z, np.array([0, 0, 1, 1])).shape == (30, 2)
    with pytest.raises(ValueError, match="z contains NaN"):
        variance_split(np.full((2, 3, 4), np.nan))


def test_refit_offsets_is_the_offset_update_repeated_from_a_zero_mean():
    from neuroinverse.inference import refit_offsets, update_h_and_hyper

    Y, base, C = _offset_problem(R=12)
    trials = np.arange(1, 13)
    m_h, hyper = refit_offsets(Y, base, C, trials, tau2=4.0, n_rounds=2)
    m, s2, t2 = torch.zeros(C.shape[1], dtype=F64), 10.0, 4.0
    for _ in range(2):
        _, _, m, h = update_h_and_hyper(Y, base, C, m, trials, s2, t2)
        s2, t2 = h.sigma2, h.tau2
    torch.testing.assert_close(m_h, m)
    assert (hyper.sigma2, hyper.tau2) == (s2, t2)
    with pytest.raises(ValueError, match="n_rounds"):
        refit_offsets(Y, base, C, trials, tau2=4.0, n_rounds=0)
