"""S3ID stitching: the LDS simulators, lagged covariances, both loss paths, the fit, the scores, the work counter."""

import numpy as np
import pytest
import torch
from scipy.linalg import solve_discrete_lyapunov

from neuroinverse.inference import (
    S3ID,
    dense_loss,
    empirical_lagged_covariances,
    fit_s3id,
    step_work,
    stochastic_loss,
)
from neuroinverse.metrics import eigenvalue_error, pearson_r, subspace_error
from neuroinverse.simulators import (
    lagged_covariances_true,
    missing_at_random_mask,
    random_lds,
    simulate_lds,
    simulate_poisson_lds,
    subpopulation_mask,
)


def test_random_lds_is_whitened_with_unit_variance():
    P = random_lds(50, 4, moduli=(0.9, 0.97), nsr=(1, 1), seed=3)
    np.testing.assert_allclose(solve_discrete_lyapunov(P.A, P.Q), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(np.einsum("in,in->i", P.C, P.C) + P.R, 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sort(np.abs(P.eigenvalues)), [0.9, 0.9, 0.97, 0.97], atol=1e-8)
    S = lagged_covariances_true(P, 3)
    assert S.shape == (3, 50, 50)
    np.testing.assert_allclose(np.diag(S[0]), 1.0, atol=1e-12)


def test_random_lds_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n=6 must not exceed"):
        random_lds(4, 6)
    with pytest.raises(ValueError, match="even"):
        random_lds(10, 3)


@pytest.mark.parametrize("p,o", [(200, 20), (200, 2), (1000, 5), (11, 0)])
def test_subpopulation_mask_has_the_overlap(p, o):
    mask, s1, s2 = subpopulation_mask(p, 100, o, n_blocks=4)
    assert len(np.intersect1d(s1, s2)) == o
    assert set(np.union1d(s1, s2)) == set(range(p))
    assert mask.any(0).all()
    co = mask.T.astype(int) @ mask.astype(int)
    a, b = np.setdiff1d(s1, s2), np.setdiff1d(s2, s1)
    assert co[np.ix_(a, b)].max() == 0


def test_simulate_lds_masks_and_centres():
    P = random_lds(20, 2, seed=0)
    m = missing_at_random_mask(20, 500, 0.5, seed=1)
    d = simulate_lds(P, 500, mask=m, seed=2)
    assert d.y.shape == (500, 20) and d.x.shape == (500, 2)
    assert (d.y[~m] == 0).all()
    np.testing.assert_allclose(d.y.sum(0) / m.sum(0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="mask must have shape"):
        simulate_lds(P, 500, mask=m[:, :10])
    bad = m.copy()
    bad[:, 3] = False
    with pytest.raises(ValueError, match="neuron 3 never observed"):
        simulate_lds(P, 500, mask=bad)


def test_poisson_lds_counts_and_truth():
    d = simulate_poisson_lds(n_trials=12, T=30, p=8, k=4, seed=0)
    assert d.y.shape == (12, 30, 8) and d.z.shape == d.y.shape and d.h.shape == (12, 4)
    assert d.y.min() >= 0 and np.issubdtype(d.y.dtype, np.integer)
    np.testing.assert_allclose(d.z, (d.x + d.h[:, None]) @ d.C.T + d.d)
    with pytest.raises(ValueError, match="k=9 must not exceed"):
        simulate_poisson_lds(p=8, k=9)


def test_empirical_lagged_covariances_match_the_definition():
    rng = np.random.default_rng(0)
    y, mask = rng.standard_normal((60, 5)), rng.random((60, 5)) > 0.3
    y = np.where(mask, y, 0.0)
    S, N = empirical_lagged_covariances(y, mask, 3)
    for s in range(3):
        for i in range(5):
            for j in range(5):
                t = [t for t in range(60 - s) if mask[t + s, i] and mask[t, j]]
                assert N[s, i, j] == len(t)
                want = np.mean([y[u + s, i] * y[u, j] for u in t]) if t else 0.0
                assert S[s, i, j].item() == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("kind", ["mask shape", "never", "nan", "n>p"])
def test_fit_s3id_bad_input_names_the_argument(kind):
    y, mask = np.zeros((50, 6)), np.ones((50, 6), bool)
    n, match = 2, {"mask shape": "mask must have the shape", "never": "neuron 2 is never observed"}.get(kind)
    if kind == "mask shape":
        mask = mask[:, :5]
    elif kind == "never":
        mask[:, 2] = False
    elif kind == "nan":
        y[3, 1], match = np.nan, "y contains NaN"
    else:
        n, match = 7, "n=7 must not exceed"
    with pytest.raises(ValueError, match=match):
        fit_s3id(y, mask, n, 2, steps_nl=1, steps_ln=1)


def test_stochastic_gradient_averages_to_the_dense_gradient():
    """Summed over every time point and lag, the O(p n^2) loss has the dense count-weighted loss's gradient."""
    torch.manual_seed(0)
    T, p, n, K = 40, 7, 3, 3
    y = torch.randn(T, p, dtype=torch.float64)
    m = (torch.rand(T, p) > 0.3).double()
    y = y * m
    model = S3ID(p, n, K, generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        model.X.copy_(0.3 * torch.randn(K, n, n, dtype=torch.float64))
        model.R.copy_(torch.rand(p, dtype=torch.float64))
    Sigma, N = empirical_lagged_covariances(y.numpy(), m.numpy().astype(bool), K, dtype=torch.float64)
    dense_loss(model, Sigma, N).backward()
    g_dense = [q.grad.clone() for q in (model.C, model.X, model.R)]
    model.zero_grad()
    total = 0
    for s in range(K):
        t = torch.arange(T - s)
        total = total + stochastic_loss(model.C, model.X[s], model.R, y[t + s], y[t], m[t + s], m[t], s)
    total.backward()
    for a, b in zip(g_dense, (model.C.grad, model.X.grad, model.R.grad), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_s3id_recovers_a_small_system():
    P = random_lds(30, 2, moduli=(0.95, 0.95), seed=1)
    d = simulate_lds(P, 4000, seed=2)
    f = fit_s3id(d.y, d.mask, 2, 5, steps_nl=400, steps_ln=200, lr_nl=0.02, init_scale=0.1, seed=0)
    assert subspace_error(P.C, f.model.C.detach()) < 0.15
    assert eigenvalue_error(P.eigenvalues, f.model.eigenvalues()) < 0.05
    lag0 = fit_s3id(d.y, d.mask, 2, 1, steps_nl=50, steps_ln=50)
    assert lag0.history_ln is None and lag0.model.mode == "nl"


def test_scores():
    rng = np.random.default_rng(0)
    C = rng.standard_normal((20, 3))
    assert subspace_error(C, C @ rng.standard_normal((3, 3))) < 1e-6
    Q, _ = np.linalg.qr(rng.standard_normal((20, 6)))
    assert subspace_error(Q[:, :3], Q[:, 3:]) == pytest.approx(1.0)
    lam = np.array([0.9 + 0.1j, 0.9 - 0.1j, 0.5])
    assert eigenvalue_error(lam, lam[::-1]) == pytest.approx(0.0)
    assert pearson_r([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same p"):
        subspace_error(C, C[:5])


def test_work_of_a_stochastic_step_is_linear_in_p():
    f1, m1 = step_work(1000, 4)
    f2, m2 = step_work(10000, 4)
    assert 0.8 < np.log10(f2 / f1) < 1.2 and 0.8 < np.log10(m2 / m1) < 1.2
    d1, _ = step_work(100, 4, path="dense")
    d2, _ = step_work(1000, 4, path="dense")
    assert np.log10(d2 / d1) > 1.8
