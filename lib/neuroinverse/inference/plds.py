"""Poisson linear dynamical system: the Laplace E-step, batched over trials, by
block-tridiagonal Newton.

The latent x_t (k) of every trial follows x_1 ~ N(0, Q0), x_t = A x_{t-1} + N(0, Q); counts
y_{t,i} ~ Poisson(exp(c_i^T (x_t + h_r) + d_i)) with a per-trial offset h_r (zero for the
stationary PLDS). The log posterior's Hessian in x is block-tridiagonal, so each Newton step
is a block Thomas solve over time, vectorised over trials: O(R T k^3) work, never a dense
(T k) x (T k) matrix. The posterior marginal covariances come from the same factorisation.
This is the E-step of the PLDS and of its nonstationary extension (Park, Bohner & Macke,
NIPS 2015); the M-steps and the GP prior over trials are not part of this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive_int

__all__ = ["LaplacePosterior", "check_counts", "block_tridiagonal_solve", "laplace_estep"]


def check_counts(y) -> torch.Tensor:
    """Spike counts (R, T, p) as float64; refuses NaN, negative or non-integer counts, naming
    ``y``."""
    arr = np.asarray(y, dtype=float)
    if arr.ndim != 3:
        raise ValueError(f"y must have shape (trials, T, p); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("y contains NaN or infinite values")
    if (arr < 0).any():
        raise ValueError("y must hold non-negative spike counts; found a negative value")
    if (arr != np.round(arr)).any():
        raise ValueError("y must hold integer spike counts; found a non-integer value")
    return torch.as_tensor(arr, dtype=torch.float64)


def _factor(D: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Forward Schur complements S_t = D_t - U^T S_{t-1}^{-1} U of a block-tridiagonal matrix.

    D (R, T, k, k) diagonal blocks; U (k, k) the constant super-diagonal block J_{t,t+1}.
    Returns the inverses S_t^{-1}, (R, T, k, k).
    """
    T = D.shape[1]
    Sinv = torch.empty_like(D)
    Sinv[:, 0] = torch.linalg.inv(D[:, 0])
    for t in range(1, T):
        S = D[:, t] - U.T @ Sinv[:, t - 1] @ U
        Sinv[:, t] = torch.linalg.inv(S)
    return Sinv


def block_tridiagonal_solve(
    D: torch.Tensor, U: torch.Tensor, b: torch.Tensor, Sinv=None
) -> torch.Tensor:
    """Solve J x = b for symmetric block-tridiagonal J (diagonal D (R,T,k,k), super-diagonal
    U (k,k)); b (R,T,k)."""
    Sinv = _factor(D, U) if Sinv is None else Sinv
    T = D.shape[1]
    z = torch.empty_like(b)
    z[:, 0] = b[:, 0]
    for t in range(1, T):
        z[:, t] = b[:, t] - (U.T @ (Sinv[:, t - 1] @ z[:, t - 1].unsqueeze(-1))).squeeze(-1)
    x = torch.empty_like(b)
    x[:, -1] = (Sinv[:, -1] @ z[:, -1].unsqueeze(-1)).squeeze(-1)
    for t in range(T - 2, -1, -1):
        x[:, t] = (Sinv[:, t] @ (z[:, t] - x[:, t + 1] @ U.T).unsqueeze(-1)).squeeze(-1)
    return x


def _marginal_covariances(Sinv: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Diagonal blocks of J^{-1}: Sigma_T = S_T^{-1},
    Sigma_t = S_t^{-1} + S_t^{-1} U Sigma_{t+1} U^T S_t^{-1}."""
    Sig = torch.empty_like(Sinv)
    Sig[:, -1] = Sinv[:, -1]
    for t in range(Sinv.shape[1] - 2, -1, -1):
        G = Sinv[:, t] @ U
        Sig[:, t] = Sinv[:, t] + G @ Sig[:, t + 1] @ G.transpose(-1, -2)
    return Sig


@dataclass
class LaplacePosterior:
    """Posterior mode ``mean`` (R, T, k), marginal covariances ``cov`` (R, T, k, k), log-joint
    per trial."""

    mean: torch.Tensor
    cov: torch.Tensor
    log_joint: torch.Tensor
    newton_steps: int


def _prior_blocks(A, Q, Q0, T):
    Qi, Q0i = torch.linalg.inv(Q), torch.linalg.inv(Q0)
    AtQiA = A.T @ Qi @ A
    D = (Qi + AtQiA).expand(T, -1, -1).clone()
    D[0] = Q0i + AtQiA
    D[-1] = Qi
    return D, -(A.T @ Qi), Qi, Q0i


def _log_joint(x, y, C, d, h, A, Qi, Q0i):
    eta = (x + h[:, None]) @ C.T + d
    ll = (y * eta - eta.exp()).sum((1, 2))
    e = x[:, 1:] - x[:, :-1] @ A.T
    lp = -0.5 * torch.einsum("rti,ij,rtj->r", e, Qi, e) - 0.5 * torch.einsum(
        "ri,ij,rj->r", x[:, 0], Q0i, x[:, 0]
    )
    return ll + lp


def laplace_estep(
    y, A, Q, Q0, C, d, h=None, *, x0=None, max_steps: int = 20, tol: float = 1e-8
) -> LaplacePosterior:
    """Laplace approximation of p(x | y) for every trial at once (damped Newton with backtracking).

    Args:
        y: counts (R, T, p), checked by :func:`check_counts`.
        A, Q, Q0: dynamics (k, k), innovation and initial covariances (k, k).
        C, d: loadings (p, k) and offsets (p,).
        h: per-trial latent offsets (R, k); zeros for the stationary PLDS.
        x0: starting point (R, T, k); zeros by default.
    """
    y = check_counts(y)
    R, T, p = y.shape
    A, Q, Q0, C, d = (torch.as_tensor(np.asarray(v), dtype=torch.float64) for v in (A, Q, Q0, C, d))
    k = A.shape[0]
    if C.shape != (p, k):
        raise ValueError(f"C must have shape (p, k) = {(p, k)}; got {tuple(C.shape)}")
    if k > p:
        raise ValueError(f"latent dimension k={k} must not exceed the population size p={p}")
    max_steps = check_positive_int(max_steps, "max_steps")
    h = (
        torch.zeros(R, k, dtype=torch.float64)
        if h is None
        else torch.as_tensor(np.asarray(h), dtype=torch.float64)
    )
    Dp, U, Qi, Q0i = _prior_blocks(A, Q, Q0, T)
    x = (
        torch.zeros(R, T, k, dtype=torch.float64)
        if x0 is None
        else torch.as_tensor(x0, dtype=torch.float64).clone()
    )
    f = _log_joint(x, y, C, d, h, A, Qi, Q0i)
    steps = 0
    for steps in range(1, max_steps + 1):  # noqa: B007 - the count is reported below
        lam = ((x + h[:, None]) @ C.T + d).exp()  # (R, T, p)
        # gradient of the log joint: C^T (y - lam) - J_prior x
        prior_grad = -(torch.einsum("tij,rtj->rti", Dp, x))
        prior_grad[:, :-1] -= x[:, 1:] @ U.T
        prior_grad[:, 1:] -= x[:, :-1] @ U
        g = (y - lam) @ C + prior_grad
        D = Dp + torch.einsum("pi,rtp,pj->rtij", C, lam, C)
        Sinv = _factor(D, U)
        delta = block_tridiagonal_solve(D, U, g, Sinv)
        step = torch.ones(R, dtype=torch.float64)
        for _ in range(30):  # backtracking per trial
            f_new = _log_joint(x + step[:, None, None] * delta, y, C, d, h, A, Qi, Q0i)
            bad = f_new < f - 1e-12
            if not bad.any():
                break
            step = torch.where(bad, step / 2, step)
        x = x + step[:, None, None] * delta
        improvement = (f_new - f).abs().max()
        f = f_new
        if improvement < tol * (1 + f.abs().max()):
            break
    lam = ((x + h[:, None]) @ C.T + d).exp()
    D = Dp + torch.einsum("pi,rtp,pj->rtij", C, lam, C)
    cov = _marginal_covariances(_factor(D, U), U)
    return LaplacePosterior(mean=x, cov=cov, log_joint=f, newton_steps=steps)
