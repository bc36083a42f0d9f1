"""Poisson linear dynamical system: the Laplace E-step, batched over trials, by
block-tridiagonal Newton.

The latent x_t (k) of every trial follows x_1 ~ N(m_1, Q0), x_t = A x_{t-1} + B u_t + N(0, Q)
(prior mean trajectory m_t = A m_{t-1} + B u_t, :func:`prior_mean_trajectory`); counts
y_{t,i} ~ Poisson(exp(c_i^T (x_t + h_r) + d_i + o_{r,t,i})) with a per-trial offset h_r (zero
for the stationary PLDS) and an optional known log-rate offset o (the variance term
1/2 c_i^T S_r c_i of an uncertain h_r, say). The log posterior's Hessian in x is
block-tridiagonal, so each Newton step is a block Thomas solve over time, vectorised over
trials: O(R T k^3) work, never a dense (T k) x (T k) matrix. The posterior marginal
covariances and the lag-one cross-covariances come from the same factorisation. The
parameters may be shared by all trials or given per trial (a leading trial axis on A, C, d),
which fits independent models to many trials at once. This is the E-step of the PLDS and of
its nonstationary extension (Park, Bohner & Macke, NIPS 2015); the M-steps are in
:mod:`~neuroinverse.inference.plds_em`, the GP prior over trials in
:mod:`~neuroinverse.inference.nplds`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive_int

__all__ = [
    "LaplacePosterior",
    "check_counts",
    "block_tridiagonal_solve",
    "block_tridiagonal_covariances",
    "prior_mean_trajectory",
    "laplace_estep",
]


def check_counts(y, name: str = "y") -> torch.Tensor:
    """Spike counts (R, T, p) as float64; refuses NaN, negative or non-integer counts, naming
    ``y`` (or ``name``)."""
    arr = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=float)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (trials, T, p); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (arr < 0).any():
        raise ValueError(f"{name} must hold non-negative spike counts; found a negative value")
    if (arr != np.round(arr)).any():
        raise ValueError(f"{name} must hold integer spike counts; found a non-integer value")
    return torch.as_tensor(arr, dtype=torch.float64)


def _factor(D: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Forward Schur complements S_t = D_t - U^T S_{t-1}^{-1} U of a block-tridiagonal matrix.

    D (R, T, k, k) diagonal blocks; U (k, k) or (R, k, k) the constant super-diagonal block
    J_{t,t+1}. Returns the inverses S_t^{-1}, (R, T, k, k).
    """
    T = D.shape[1]
    Ut = U.transpose(-1, -2)
    Sinv = torch.empty_like(D)
    Sinv[:, 0] = torch.linalg.inv(D[:, 0])
    for t in range(1, T):
        S = D[:, t] - Ut @ Sinv[:, t - 1] @ U
        Sinv[:, t] = torch.linalg.inv(S)
    return Sinv


def block_tridiagonal_solve(
    D: torch.Tensor, U: torch.Tensor, b: torch.Tensor, Sinv=None
) -> torch.Tensor:
    """Solve J x = b for symmetric block-tridiagonal J (diagonal D (R,T,k,k), super-diagonal
    U (k,k) or (R,k,k)); b (R,T,k)."""
    Sinv = _factor(D, U) if Sinv is None else Sinv
    T = D.shape[1]
    Ut = U.transpose(-1, -2)
    z = torch.empty_like(b)
    z[:, 0] = b[:, 0]
    for t in range(1, T):
        z[:, t] = b[:, t] - (Ut @ (Sinv[:, t - 1] @ z[:, t - 1].unsqueeze(-1))).squeeze(-1)
    x = torch.empty_like(b)
    x[:, -1] = (Sinv[:, -1] @ z[:, -1].unsqueeze(-1)).squeeze(-1)
    for t in range(T - 2, -1, -1):
        rhs = z[:, t] - (U @ x[:, t + 1].unsqueeze(-1)).squeeze(-1)
        x[:, t] = (Sinv[:, t] @ rhs.unsqueeze(-1)).squeeze(-1)
    return x


def block_tridiagonal_covariances(
    D: torch.Tensor, U: torch.Tensor, Sinv=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Diagonal and first off-diagonal blocks of J^{-1} for symmetric block-tridiagonal J.

    Sigma_T = S_T^{-1}; with G_t = S_t^{-1} U: Sigma_{t,t+1} = -G_t Sigma_{t+1} and
    Sigma_t = S_t^{-1} + G_t Sigma_{t+1} G_t^T. Returns ``(cov (R,T,k,k), cross (R,T-1,k,k))``
    with ``cross[:, t]`` = Cov(x_t, x_{t+1}).
    """
    Sinv = _factor(D, U) if Sinv is None else Sinv
    Sig = torch.empty_like(Sinv)
    cross = torch.empty_like(Sinv[:, 1:])
    Sig[:, -1] = Sinv[:, -1]
    for t in range(Sinv.shape[1] - 2, -1, -1):
        G = Sinv[:, t] @ U
        GS = G @ Sig[:, t + 1]
        cross[:, t] = -GS
        Sig[:, t] = Sinv[:, t] + GS @ G.transpose(-1, -2)
    return Sig, cross


def _marginal_covariances(Sinv: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Diagonal blocks of J^{-1}: Sigma_T = S_T^{-1},
    Sigma_t = S_t^{-1} + S_t^{-1} U Sigma_{t+1} U^T S_t^{-1}."""
    return block_tridiagonal_covariances(Sinv, U, Sinv)[0]


@dataclass
class LaplacePosterior:
    """Posterior mode ``mean`` (R, T, k), marginal covariances ``cov`` (R, T, k, k), log-joint
    per trial; ``cross`` (R, T-1, k, k) holds Cov(x_t, x_{t+1})."""

    mean: torch.Tensor
    cov: torch.Tensor
    log_joint: torch.Tensor
    newton_steps: int
    cross: torch.Tensor | None = None


def prior_mean_trajectory(A, B, u, x0, T: int | None = None) -> torch.Tensor:
    """E[x_t] under the prior: m_1 = x0 + B u_1, m_t = A m_{t-1} + B u_t.

    A (k, k), B (k, m) (or (R, k, k), (R, k, m) per trial), u (T, m), x0 (k,). Returns (T, k),
    or (R, T, k) for per-trial parameters.
    """
    A, B, u, x0 = (
        torch.as_tensor(np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)).to(
            torch.float64
        )
        for v in (A, B, u, x0)
    )
    T = u.shape[0] if T is None else T
    k = A.shape[-1]
    if u.ndim != 2 or u.shape[0] != T or B.shape[-2:] != (k, u.shape[1]):
        raise ValueError(
            f"u must be (T, m) and B (k, m); got u {tuple(u.shape)}, B {tuple(B.shape)}"
        )
    Bu = u @ B.transpose(-1, -2)  # (T, k) or (R, T, k)
    batch = torch.broadcast_shapes(A.shape[:-2], Bu.shape[:-2])
    m = torch.empty(*batch, T, k, dtype=torch.float64)
    m[..., 0, :] = x0 + Bu[..., 0, :]
    for t in range(1, T):
        m[..., t, :] = (A @ m[..., t - 1, :].unsqueeze(-1)).squeeze(-1) + Bu[..., t, :]
    return m


def _prior_blocks(A, Q, Q0, T):
    """Prior precision blocks: diagonal (R or 1, T, k, k), super-diagonal U (R or 1, k, k)."""
    Qi, Q0i = torch.linalg.inv(Q), torch.linalg.inv(Q0)
    At = A.transpose(-1, -2)
    AtQiA = At @ Qi @ A  # (Rb, k, k)
    D = (Qi + AtQiA).unsqueeze(1).expand(-1, T, -1, -1).clone()
    D[:, 0] = Q0i + AtQiA
    D[:, -1] = Qi
    return D, -(At @ Qi), Qi, Q0i


def _eta(x, C, d, h, offset):
    eta = (x + h[:, None]) @ C.transpose(-1, -2) + d.unsqueeze(-2)
    return eta if offset is None else eta + offset


def _log_joint(x, y, C, d, h, A, Qi, Q0i, offset=None):
    eta = _eta(x, C, d, h, offset)
    ll = (y * eta - eta.exp()).sum((1, 2))
    e = x[:, 1:] - x[:, :-1] @ A.transpose(-1, -2)
    lp = -0.5 * ((e @ Qi) * e).sum((1, 2)) - 0.5 * ((x[:, 0] @ Q0i) * x[:, 0]).sum(-1)
    return ll + lp


def _as_param(v, name: str, shapes: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v))
    t = t.to(torch.float64)
    if tuple(t.shape) not in shapes:
        raise ValueError(
            f"{name} must have shape {' or '.join(map(str, shapes))}; got {tuple(t.shape)}"
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def laplace_estep(
    y,
    A,
    Q,
    Q0,
    C,
    d,
    h=None,
    *,
    x0=None,
    prior_mean=None,
    eta_offset=None,
    max_steps: int = 20,
    tol: float = 1e-8,
) -> LaplacePosterior:
    """Laplace approximation of p(x | y) for every trial at once (damped Newton with backtracking).

    Args:
        y: counts (R, T, p), checked by :func:`check_counts`.
        A: dynamics (k, k), or (R, k, k) for one model per trial.
        Q, Q0: innovation and initial covariances (k, k).
        C, d: loadings (p, k) and offsets (p,), or (R, p, k) and (R, p) per trial.
        h: per-trial latent offsets (R, k); zeros for the stationary PLDS.
        x0: Newton's starting point (R, T, k) (the previous mode, say); the prior mean by
            default.
        prior_mean: the prior mean trajectory E[x_t] (T, k) or (R, T, k) of an LDS with inputs
            (:func:`prior_mean_trajectory`); zeros by default (no inputs, x_1 ~ N(0, Q0)).
        eta_offset: known offsets added to every log rate, broadcastable to (R, T, p).
    """
    y = check_counts(y)
    R, T, p = y.shape
    A = torch.as_tensor(np.asarray(A.detach().cpu() if isinstance(A, torch.Tensor) else A))
    A = A.to(torch.float64)
    k = A.shape[-1]
    if k > p:
        raise ValueError(f"latent dimension k={k} must not exceed the population size p={p}")
    A = _as_param(A, "A", ((k, k), (R, k, k)))
    Q = _as_param(Q, "Q", ((k, k),))
    Q0 = _as_param(Q0, "Q0", ((k, k),))
    C = _as_param(C, "C", ((p, k), (R, p, k)))
    d = _as_param(d, "d", ((p,), (R, p)))
    max_steps = check_positive_int(max_steps, "max_steps")
    h = torch.zeros(R, k, dtype=torch.float64) if h is None else _as_param(h, "h", ((R, k),))
    Ab = A if A.ndim == 3 else A.unsqueeze(0)
    Dp, U, Qi, Q0i = _prior_blocks(Ab, Q, Q0, T)
    offset = None
    if eta_offset is not None:
        offset = torch.as_tensor(np.asarray(eta_offset), dtype=torch.float64)
        offset = offset.expand(R, T, p)
    m = None
    if prior_mean is not None:
        m = _as_param(prior_mean, "prior_mean", ((T, k), (R, T, k)))
        shift = m @ C.transpose(-1, -2)  # x = m + x~, x~ a zero-mean LDS
        offset = shift.expand(R, T, p) if offset is None else offset + shift
    x = torch.zeros(R, T, k, dtype=torch.float64)
    if x0 is not None:
        x = x + _as_param(x0, "x0", ((R, T, k),))
        if m is not None:
            x = x - m
    CC = (C.unsqueeze(-1) * C.unsqueeze(-2)).flatten(-2)  # (p or R p, k*k)

    def hessian_blocks(x):
        lam = _eta(x, C, d, h, offset).exp()
        return Dp + (lam @ CC).reshape(R, T, k, k), lam

    f = _log_joint(x, y, C, d, h, Ab, Qi, Q0i, offset)
    Ut = U.transpose(-1, -2)
    steps = 0
    for steps in range(1, max_steps + 1):  # noqa: B007 - the count is reported below
        D, lam = hessian_blocks(x)
        # gradient of the log joint: C^T (y - lam) - J_prior x
        prior_grad = -(Dp @ x.unsqueeze(-1)).squeeze(-1)
        prior_grad[:, :-1] -= x[:, 1:] @ Ut
        prior_grad[:, 1:] -= x[:, :-1] @ U
        g = (y - lam) @ C + prior_grad
        Sinv = _factor(D, U)
        delta = block_tridiagonal_solve(D, U, g, Sinv)
        step = torch.ones(R, dtype=torch.float64)
        for _ in range(30):  # backtracking per trial
            f_new = _log_joint(x + step[:, None, None] * delta, y, C, d, h, Ab, Qi, Q0i, offset)
            bad = f_new < f - 1e-12
            if not bad.any():
                break
            step = torch.where(bad, step / 2, step)
        x = x + step[:, None, None] * delta
        improvement = (f_new - f).abs().max()
        f = f_new
        if improvement < tol * (1 + f.abs().max()):
            break
    D, _ = hessian_blocks(x)
    cov, cross = block_tridiagonal_covariances(D, U)
    mean = x if m is None else x + m
    return LaplacePosterior(mean=mean, cov=cov, log_joint=f, newton_steps=steps, cross=cross)
