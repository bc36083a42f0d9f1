"""The PLDS Laplace E-step: block-tridiagonal algebra against dense, the mode, bad counts."""

import numpy as np
import pytest
import torch

from neuroinverse.inference import block_tridiagonal_solve, check_counts, laplace_estep
from neuroinverse.simulators import simulate_poisson_lds


def _dense(D, U):
    R, T, k, _ = D.shape
    J = torch.zeros(R, T * k, T * k, dtype=D.dtype)
    for t in range(T):
        J[:, t * k : (t + 1) * k, t * k : (t + 1) * k] = D[:, t]
        if t + 1 < T:
            J[:, t * k : (t + 1) * k, (t + 1) * k : (t + 2) * k] = U
            J[:, (t + 1) * k : (t + 2) * k, t * k : (t + 1) * k] = U.T
    return J


def test_block_tridiagonal_solve_matches_dense():
    g = torch.Generator().manual_seed(0)
    R, T, k = 3, 6, 2
    M = torch.randn(R, T, k, k, generator=g, dtype=torch.float64)
    D = M @ M.transpose(-1, -2) + 4 * torch.eye(k, dtype=torch.float64)
    U = 0.5 * torch.randn(k, k, generator=g, dtype=torch.float64)
    b = torch.randn(R, T, k, generator=g, dtype=torch.float64)
    x = block_tridiagonal_solve(D, U, b)
    want = torch.linalg.solve(_dense(D, U), b.reshape(R, -1, 1)).reshape(R, T, k)
    torch.testing.assert_close(x, want)


def test_laplace_estep_finds_the_mode_and_its_covariance():
    d = simulate_poisson_lds(n_trials=4, T=15, p=10, k=2, seed=1)
    k = 2
    Q = (1 - 0.81) * np.eye(k)
    post = laplace_estep(d.y, d.A, Q, np.eye(k), d.C, d.d, d.h)
    x = post.mean.clone().requires_grad_(True)
    C, dd, h = (torch.as_tensor(v) for v in (d.C, d.d, d.h))
    A, Qi = torch.as_tensor(d.A), torch.linalg.inv(torch.as_tensor(Q))
    y = torch.as_tensor(d.y, dtype=torch.float64)
    eta = (x + h[:, None]) @ C.T + dd
    e = x[:, 1:] - x[:, :-1] @ A.T
    f = (y * eta - eta.exp()).sum() - 0.5 * torch.einsum("rti,ij,rtj->", e, Qi, e) - 0.5 * (x[:, 0] ** 2).sum()
    (grad,) = torch.autograd.grad(f, x)
    assert grad.abs().max() < 1e-6
    H = torch.autograd.functional.hessian(
        lambda z: (
            (y[0] * ((z + h[0]) @ C.T + dd) - ((z + h[0]) @ C.T + dd).exp()).sum()
            - 0.5 * torch.einsum("ti,ij,tj->", z[1:] - z[:-1] @ A.T, Qi, z[1:] - z[:-1] @ A.T)
            - 0.5 * (z[0] ** 2).sum()
        ),
        post.mean[0],
    ).reshape(15 * k, 15 * k)
    cov = torch.linalg.inv(-H)
    for t in range(15):
        torch.testing.assert_close(post.cov[0, t], cov[t * k : (t + 1) * k, t * k : (t + 1) * k])


@pytest.mark.parametrize(
    "bad,match",
    [(-1.0, "non-negative"), (0.5, "integer"), (np.nan, "NaN")],
)
def test_counts_are_checked(bad, match):
    y = np.zeros((2, 3, 4))
    y[1, 1, 1] = bad
    with pytest.raises(ValueError, match=match):
        check_counts(y)
    with pytest.raises(ValueError, match="shape"):
        check_counts(np.zeros((3, 4)))
