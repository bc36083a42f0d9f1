"""Dynamics that drift across trials (NSLS): a Gaussian-process prior over trials on every entry
of a per-trial dynamics matrix A^(r), its posterior from the E-step's moments, and the EM fit.

The earlier version of the N-PLDS paper (Park & Macke, "Hierarchical models for neural population
dynamics in the presence of non-stationarity", arXiv:1410.3111; model ``NSLS`` of the reference
code ``mackelab/nonstat_plds``) lets the dynamics matrix change smoothly from trial to trial:
x_{r,t} = A^(r) x_{r,t-1} + B u_t + N(0, I), with each entry A_ij(.) an independent GP over the
trial index, Cov(A_ij(r), A_ij(r')) = sigma2 exp(-(r - r')^2 / (2 tau2)) + eps delta_{rr'},
prior mean M_ij. Everything else is the N-PLDS (:mod:`~neuroinverse.inference.plds_em`).

With Q = I the rows of A^(r) are independent given the latents, and row i's log likelihood in
trial r is quadratic: a S_r a^T / -2 + a . b_{r,i}, with S_r = sum_t E[x_{t-1} x_{t-1}^T] and
b_{r,i} = sum_t E[(x_t - B u_t)_i x_{t-1}^T] from the Laplace posterior over x. Stacking row i
over trials (R k values, trial-major) gives a Gaussian posterior with precision
K^{-1} + blockdiag(S_r), the same for every row: one Cholesky of an (R k) x (R k) matrix per
M-step. K = K_trial ⊗ I_k is inverted through one eigendecomposition of K_trial, and
(sigma2, tau2) are chosen on a grid by minimising the summed KL(q(row) || p(row)) with the
Kronecker evaluation of :func:`~neuroinverse.inference.nplds.gp_kl`. B is then the least-squares
input gain given the A^(r). :func:`fit_nsls` starts from a fitted N-PLDS and alternates the
batched E-step with per-trial A, this M-step, C and d, and q(h) with its GP hyper-parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from .._checks import check_positive, check_positive_int
from .nplds import LOG_TAU2_GRID, HyperSelection, gp_kl, trial_kernel, update_h_and_hyper
from .plds import LaplacePosterior, laplace_estep, prior_mean_trajectory
from .plds_em import PLDSFit, check_plds_data, offset_statistics, update_loadings

__all__ = [
    "A_JITTER",
    "LOG_SIGMA2_A_GRID",
    "dynamics_statistics",
    "gp_dynamics_posterior",
    "update_dynamics_gp",
    "NSLSFit",
    "fit_nsls",
    "slow_coefficients",
]

#: White-noise variance added to the trial kernel of the entries of A (per-trial roughness).
A_JITTER = 1e-6
#: log sigma2 grid for the entries of A: -12, -11.75, ..., 0.
LOG_SIGMA2_A_GRID = np.round(np.arange(-12.0, 0.0 + 1e-9, 0.25), 10)


def _f64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def dynamics_statistics(post: LaplacePosterior, u, B) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-trial sufficient statistics of the regression x_t - B u_t = A^(r) x_{t-1} (t >= 2):
    ``S`` (R, k, k) = sum_t E[x_{t-1} x_{t-1}^T] and ``b`` (R, k, k) = sum_t E[(x_t - B u_t)
    x_{t-1}^T] (row i: the target latent i)."""
    mu, cov, cross = post.mean, post.cov, post.cross
    if cross is None:
        raise ValueError("post must carry the lag-one cross-covariances (post.cross)")
    u, B = _f64(u), _f64(B)
    S = (cov[:, :-1] + mu[:, :-1].unsqueeze(-1) * mu[:, :-1].unsqueeze(-2)).sum(1)
    Ex1x0 = mu[:, 1:].unsqueeze(-1) * mu[:, :-1].unsqueeze(-2) + cross.transpose(-1, -2)
    Bu = u[1:] @ B.T  # (T-1, k)
    b = Ex1x0.sum(1) - torch.einsum("ti,rtj->rij", Bu, mu[:, :-1])
    return S, b


def gp_dynamics_posterior(
    S, b, trials, sigma2: float, tau2: float, M, *, jitter: float = A_JITTER
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian posterior over A^(r) given per-trial statistics ``S``, ``b`` (R, k, k) and the GP
    prior (sigma2, tau2, mean ``M`` (k, k)) on every entry across ``trials`` (R,).

    Returns ``(mean (R, k, k), cov (R k, R k))``: ``cov`` is the posterior covariance of any
    row of A stacked over trials (trial-major, index r * k + j), the same for every row.
    """
    S, b, M, trials = _f64(S), _f64(b), _f64(M), _f64(trials)
    if S.ndim != 3 or S.shape[1] != S.shape[2]:
        raise ValueError(f"S must have shape (R, k, k); got {tuple(S.shape)}")
    R, k, _ = S.shape
    if b.shape != (R, k, k):
        raise ValueError(f"b must have shape {(R, k, k)}; got {tuple(b.shape)}")
    if M.shape != (k, k):
        raise ValueError(f"M must have shape {(k, k)}; got {tuple(M.shape)}")
    if trials.shape != (R,):
        raise ValueError(f"trials must have shape ({R},); got {tuple(trials.shape)}")
    check_positive(jitter, "jitter")
    g, U = torch.linalg.eigh(trial_kernel(trials, trials, sigma2, tau2))
    Kt_inv = (U / (g.clamp_min(0) + jitter)) @ U.T
    eye = torch.eye(k, dtype=torch.float64)
    K_inv = torch.kron(Kt_inv, eye)
    P = K_inv + torch.block_diag(*S)
    L = torch.linalg.cholesky((P + P.T) / 2)
    prior = M.expand(R, k, k)  # (R, i, j)
    rhs = (K_inv @ prior.permute(0, 2, 1).reshape(R * k, k)).reshape(R, k, k)  # (R, j, i)
    rhs = rhs + b.permute(0, 2, 1)
    mean = torch.cholesky_solve(rhs.reshape(R * k, k), L).reshape(R, k, k).permute(0, 2, 1)
    cov = torch.cholesky_inverse(L)
    return mean.contiguous(), (cov + cov.T) / 2


def update_dynamics_gp(
    post: LaplacePosterior,
    u,
    B,
    trials,
    sigma2: float,
    tau2: float,
    M,
    *,
    log_sigma2=LOG_SIGMA2_A_GRID,
    log_tau2=LOG_TAU2_GRID,
    jitter: float = A_JITTER,
):
    """One M-step for the dynamics: q(A^(1:R)) under the current prior; M <- mean over trials;
    (sigma2, tau2) minimising the KL summed over the k rows on the grid; q(A) again; then B by
    least squares given the A^(r) (x_0 = 0, so the first bin informs B).

    Returns ``(A (R, k, k), B (k, m), M (k, k), HyperSelection)``.
    """
    S, b = dynamics_statistics(post, u, B)
    A, cov = gp_dynamics_posterior(S, b, trials, sigma2, tau2, M, jitter=jitter)
    M = A.mean(0)
    k = M.shape[0]
    log_sigma2, log_tau2 = np.atleast_1d(log_sigma2), np.atleast_1d(log_tau2)
    kl = sum(
        gp_kl(A[:, i, :], cov, M[i], trials, log_sigma2, log_tau2, jitter=jitter) for i in range(k)
    )
    i, j = np.unravel_index(np.argmin(kl), kl.shape)
    hyper = HyperSelection(
        float(np.exp(log_sigma2[i])), float(np.exp(log_tau2[j])), log_sigma2, log_tau2, kl
    )
    A, _ = gp_dynamics_posterior(S, b, trials, hyper.sigma2, hyper.tau2, M, jitter=jitter)
    mu, u = post.mean, _f64(u)
    prev = torch.cat([torch.zeros_like(mu[:, :1]), mu[:, :-1]], 1)  # x_0 = 0
    resid = mu - prev @ A.transpose(-1, -2)  # E[x_t - A^(r) x_{t-1}], (R, T, k)
    Sxu = torch.einsum("rti,tj->ij", resid, u)
    Suu = mu.shape[0] * (u.T @ u) + 1e-8 * torch.eye(u.shape[1], dtype=torch.float64)
    B_new = torch.linalg.solve(Suu, Sxu.T).T
    return A, B_new, M, hyper


def slow_coefficients(A_trials, n_slow: int = 1) -> np.ndarray:
    """Per-trial AR coefficient of the slow subspace: the mean of the ``n_slow`` largest
    eigenvalue moduli of each A^(r) (basis-free, so comparable across fits), (R,)."""
    A = np.asarray(_f64(A_trials))
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"A_trials must have shape (R, k, k); got {A.shape}")
    n_slow = check_positive_int(n_slow, "n_slow")
    if n_slow > A.shape[1]:
        raise ValueError(f"n_slow must be at most k={A.shape[1]}; got {n_slow}")
    mod = np.sort(np.abs(np.linalg.eigvals(A)), axis=1)[:, ::-1]
    return mod[:, :n_slow].mean(1)


@dataclass
class NSLSFit:
    """The fitted NSLS: per-trial dynamics ``A_trials`` (R, k, k), their prior mean ``M`` and
    GP hyper-parameters (``sigma2_A``, ``tau2_A``), shared B, C, d, q(h) and its GP, the
    posterior over x, the N-PLDS fit it started from, and one history dict per iteration."""

    A_trials: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    d: torch.Tensor
    M: torch.Tensor
    sigma2_A: float
    tau2_A: float
    h_mean: torch.Tensor
    m_h: torch.Tensor
    sigma2: float
    tau2: float
    posterior: LaplacePosterior
    start: PLDSFit
    history: list[dict] = field(default_factory=list)


def fit_nsls(
    y,
    u,
    start: PLDSFit,
    *,
    n_iter: int = 10,
    newton_steps: int = 10,
    loading_steps: int = 5,
    sigma2_A: float = 1e-3,
    tau2_A: float = 400.0,
    log_sigma2_A=LOG_SIGMA2_A_GRID,
    log_tau2_A=LOG_TAU2_GRID,
    progress: bool = True,
) -> NSLSFit:
    """Fit the NSLS to counts ``y`` (R, T, p) with inputs ``u`` (T, m), starting from a fitted
    N-PLDS ``start`` (``model="nplds"``, same trials) whose A is the common start of every
    A^(r); ``n_iter`` EM iterations: E-step with per-trial A, :func:`update_dynamics_gp`,
    C and d, q(h) and its hyper-parameters (the N-PLDS's updates)."""
    if not isinstance(start, PLDSFit) or start.model != "nplds":
        raise ValueError("start must be a PLDSFit of model 'nplds'")
    k = start.params.k
    y, u, k = check_plds_data(y, u, k)
    R, T, p = y.shape
    if start.h_mean.shape[0] != R or u.shape[1] != start.params.B.shape[1]:
        raise ValueError(
            f"start must be fitted to the same {R} trials and inputs; got "
            f"{start.h_mean.shape[0]} trials and B {tuple(start.params.B.shape)}"
        )
    n_iter = check_positive_int(n_iter, "n_iter")
    check_positive(sigma2_A, "sigma2_A")
    check_positive(tau2_A, "tau2_A")
    trials = start.trials
    A = start.params.A.expand(R, k, k).clone()
    B, C, d = start.params.B.clone(), start.params.C.clone(), start.params.d.clone()
    M = start.params.A.clone()
    h_mean, h_cov, m_h = start.h_mean, start.h_cov, start.m_h
    sigma2, tau2 = start.sigma2, start.tau2
    eye = torch.eye(k, dtype=torch.float64)
    x_start, history = start.posterior.mean, []
    bar = tqdm(range(n_iter), desc="EM nsls", disable=not progress, leave=True, ncols=90)
    for it in bar:
        t0 = time.perf_counter()
        idx = torch.arange(R)
        Sh = h_cov.reshape(R, k, R, k)[idx, :, idx, :]
        var_term = 0.5 * torch.einsum("pi,rij,pj->rp", C, Sh, C)[:, None]
        mean0 = prior_mean_trajectory(A, B, u, torch.zeros(k))
        post = laplace_estep(
            y, A, eye, eye, C, d, h_mean, x0=x_start, prior_mean=mean0,
            eta_offset=var_term, max_steps=newton_steps,
        )  # fmt: skip
        x_start = post.mean
        A, B, M, hyp = update_dynamics_gp(
            post, u, B, trials, sigma2_A, tau2_A, M, log_sigma2=log_sigma2_A, log_tau2=log_tau2_A
        )
        sigma2_A, tau2_A = hyp.sigma2, hyp.tau2
        C, d = update_loadings(y, post, C, d, h_mean, Sh, steps=loading_steps)
        Y, base = offset_statistics(y, post, C, d)
        h_mean, h_cov, m_h, hh = update_h_and_hyper(Y, base, C, m_h, trials, sigma2, tau2)
        sigma2, tau2 = hh.sigma2, hh.tau2
        lj = float(post.log_joint.sum())
        history.append(
            dict(
                iteration=it + 1,
                log_joint=lj,
                sigma2_A=sigma2_A,
                tau2_A=tau2_A,
                seconds=time.perf_counter() - t0,
            )
        )
        bar.set_postfix({"log joint": f"{lj:.1f}", "tau_A": f"{np.sqrt(tau2_A):.1f}"})
    bar.close()
    return NSLSFit(
        A_trials=A, B=B, C=C, d=d, M=M, sigma2_A=sigma2_A, tau2_A=tau2_A, h_mean=h_mean,
        m_h=m_h, sigma2=sigma2, tau2=tau2, posterior=post, start=start, history=history,
    )  # fmt: skip
