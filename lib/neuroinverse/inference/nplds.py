"""The hierarchical part of the nonstationary PLDS: a Gaussian-process prior over trials on the
per-trial latent offsets h_r, its Laplace posterior and its hyper-parameters.

Park, Bohner & Macke (NIPS 2015) add to a Poisson LDS a latent offset h_r (k) per trial that
enters the log rates through the loadings, z_{r,t} = C (x_{r,t} + h_r) + d, with a GP prior over
the trial index, independent and identical across the k latent dimensions:

    Cov(h_j(r), h_j(r')) = sigma2 exp(-(r - r')^2 / (2 tau2)) + eps delta_{r r'},  eps = 1e-3,

and prior mean m_h. Over all trials the prior covariance is the Kronecker product
K = K_trial (R x R) ⊗ I_k (trial-major ordering of vec h). Given the Gaussian posteriors of the
within-trial latents, the expected log likelihood of h_r depends on the data only through two
(R, p) tables: the spike count Y_{r,i} of neuron i in trial r and its expected count without
the offset, base_{r,i} = sum_t E[exp(c_i^T x_{r,t} + d_i)]. :func:`laplace_h` finds the
posterior mode of h by Newton's method in the numerically stable form of Rasmussen & Williams
(GPML, Algorithm 3.1, with k x k blocks for W) and returns the Laplace covariance (R k x R k;
small: it is trials times latents, never times time bins). :func:`select_hyperparameters`
picks (sigma2, tau2) on a grid by minimising KL(q(h) || p(h)): with the eigendecomposition
of one R x R kernel matrix per tau2, every sigma2 of the grid costs O(R k) (the Kronecker
structure), so the ~1,300 grid points of the reference code take milliseconds.
:func:`predict_h` interpolates h to held-out trials.

The grid step moves tau2 little from where it starts: q(h) was computed under the old prior, so
a short tau2 leaves trial-to-trial roughness in E[h] that only a short tau2 explains, and a long
one leaves E[h] smooth (the familiar slowness of EM for GP hyper-parameters when the prior
shapes the posterior). The reference code therefore starts tau2, for real data, from a GP fit to
the per-trial mean responses; :func:`timescale_from_trial_means` is that start: the GP marginal
likelihood of every neuron's per-trial log mean count, one R x R eigendecomposition per tau2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive, check_positive_int

__all__ = [
    "refit_offsets",
    "GP_JITTER",
    "LOG_SIGMA2_GRID",
    "LOG_TAU2_GRID",
    "NO_COUPLING_LOG_TAU2",
    "trial_kernel",
    "laplace_h",
    "HyperSelection",
    "gp_kl",
    "select_hyperparameters",
    "predict_h",
    "update_h_and_hyper",
    "TimescaleInit",
    "timescale_from_trial_means",
]

#: The reference code's jitter eps on the diagonal of the trial kernel.
GP_JITTER = 1e-3
#: log sigma2 grid of the reference code: -3, -2.8, ..., 2.
LOG_SIGMA2_GRID = np.round(np.arange(-3.0, 2.0 + 1e-9, 0.2), 10)
#: log tau2 grid of the reference code (tau2 in trials^2): -6, -2, -1, 0, 1, 2, 2.5,
#: 3.00, 3.05, ..., 5.00, 5.5, 6, 7. log tau2 = -6 means no coupling between trials.
LOG_TAU2_GRID = np.round(
    np.concatenate([[-6, -2, -1, 0, 1, 2, 2.5], np.arange(3.0, 5.0 + 1e-9, 0.05), [5.5, 6, 7]]),
    10,
)
#: The no-coupling variant fixes log tau2 here: neighbouring trials are independent.
NO_COUPLING_LOG_TAU2 = -6.0


def _f64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def trial_kernel(trials_a, trials_b, sigma2: float, tau2: float) -> torch.Tensor:
    """sigma2 exp(-(r - r')^2 / (2 tau2)) between trial numbers ``trials_a`` and ``trials_b``
    (no jitter); (len(a), len(b))."""
    check_positive(sigma2, "sigma2")
    check_positive(tau2, "tau2")
    a, b = _f64(trials_a).reshape(-1, 1), _f64(trials_b).reshape(1, -1)
    return sigma2 * torch.exp(-((a - b) ** 2) / (2 * tau2))


def _prior_cov(trials, sigma2, tau2, k, jitter=GP_JITTER) -> torch.Tensor:
    Kt = trial_kernel(trials, trials, sigma2, tau2)
    Kt = Kt + jitter * torch.eye(Kt.shape[0], dtype=torch.float64)
    return torch.kron(Kt, torch.eye(k, dtype=torch.float64))


def _sym_sqrt(W: torch.Tensor) -> torch.Tensor:
    ev, V = torch.linalg.eigh(W)
    return (V * ev.clamp_min(0).sqrt().unsqueeze(-2)) @ V.transpose(-1, -2)


def laplace_h(
    Y,
    base,
    C,
    m_h,
    trials,
    sigma2: float,
    tau2: float,
    *,
    jitter: float = GP_JITTER,
    max_steps: int = 50,
    tol: float = 1e-10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Laplace approximation of q(h) ∝ prod_r exp(E[log p(y_r | x, h_r)]) N(vec h; 1 ⊗ m_h, K).

    Args:
        Y: spike counts per trial and neuron (R, p).
        base: expected counts without the offset, sum_t E[exp(c_i^T x_t + d_i)] (R, p).
        C: loadings (p, k).
        m_h: prior mean (k,).
        trials: trial numbers (R,) (the GP's inputs).
        sigma2, tau2: GP variance and squared length scale (trials^2).

    Returns:
        ``(mean (R, k), cov (R k, R k))``, vec h trial-major (index r * k + j).
    """
    Y, base, C, m_h = (_f64(v) for v in (Y, base, C, m_h))
    R, p = Y.shape
    k = C.shape[1]
    if base.shape != (R, p) or C.shape[0] != p or m_h.shape != (k,):
        raise ValueError(
            f"Y and base must be (R, p), C (p, k), m_h (k,); got {tuple(Y.shape)}, "
            f"{tuple(base.shape)}, {tuple(C.shape)}, {tuple(m_h.shape)}"
        )
    if (base <= 0).any() or not torch.isfinite(base).all():
        raise ValueError("base must hold positive, finite expected counts")
    check_positive_int(max_steps, "max_steps")
    K = _prior_cov(trials, sigma2, tau2, k, jitter)
    eye = torch.eye(R * k, dtype=torch.float64)
    f = torch.zeros(R * k, dtype=torch.float64)  # h - m_h, trial-major
    a = torch.zeros_like(f)  # K^{-1} f

    def loglik(fv):
        eta = (fv.reshape(R, k) + m_h) @ C.T  # (R, p)
        return (Y * eta - base * eta.exp()).sum(), eta

    ll, eta = loglik(f)
    psi = ll
    for _ in range(max_steps):
        rate = base * eta.exp()
        grad = ((Y - rate) @ C).reshape(-1)
        W = torch.einsum("rp,pi,pj->rij", rate, C, C)
        sW = torch.block_diag(*_sym_sqrt(W))
        L = torch.linalg.cholesky(eye + sW @ K @ sW)
        b = torch.block_diag(*W) @ f + grad
        v = torch.cholesky_solve((sW @ (K @ b)).unsqueeze(-1), L).squeeze(-1)
        a_full = b - sW @ v
        f_full = K @ a_full
        step = 1.0
        for _ in range(30):
            f_new, a_new = f + step * (f_full - f), a + step * (a_full - a)
            ll_new, eta_new = loglik(f_new)
            psi_new = ll_new - 0.5 * a_new @ f_new
            if psi_new >= psi - 1e-12:
                break
            step /= 2
        f, a, eta = f_new, a_new, eta_new
        done = abs(float(psi_new - psi)) < tol * (1 + abs(float(psi_new)))
        psi = psi_new
        if done:
            break
    rate = base * eta.exp()
    W = torch.einsum("rp,pi,pj->rij", rate, C, C)
    sW = torch.block_diag(*_sym_sqrt(W))
    L = torch.linalg.cholesky(eye + sW @ K @ sW)
    V = torch.linalg.solve_triangular(L, sW @ K, upper=False)
    cov = K - V.T @ V
    return f.reshape(R, k) + m_h, (cov + cov.T) / 2


@dataclass
class HyperSelection:
    """The grid search of (sigma2, tau2): the chosen values and KL(q || p) on the whole grid
    (``kl`` (len(log_sigma2), len(log_tau2)), up to a constant)."""

    sigma2: float
    tau2: float
    log_sigma2: np.ndarray
    log_tau2: np.ndarray
    kl: np.ndarray


def gp_kl(mean, cov, m_h, trials, log_sigma2, log_tau2, *, jitter: float = GP_JITTER) -> np.ndarray:
    """KL(N(mean, cov) || N(1 ⊗ m_h, K(sigma2, tau2))) on a grid, up to a constant.

    K = (sigma2 G_tau + eps I) ⊗ I_k: with G_tau = U diag(g) U^T (one eigendecomposition per
    tau2), K^{-1} and log|K| are diagonal in U for every sigma2, and only the k diagonal
    (R x R) blocks of ``cov`` enter. Returns (len(log_sigma2), len(log_tau2)).
    """
    mean, cov, m_h, trials = (_f64(v) for v in (mean, cov, m_h, trials))
    R, k = mean.shape
    if cov.shape != (R * k, R * k):
        raise ValueError(f"cov must be (R k, R k) = {(R * k, R * k)}; got {tuple(cov.shape)}")
    dev = (mean - m_h).T  # (k, R)
    Sjj = torch.stack([cov[j::k, j::k] for j in range(k)])  # (k, R, R)
    s2 = torch.exp(_f64(log_sigma2)).reshape(-1, 1)  # (ns, 1)
    out = np.empty((len(log_sigma2), len(log_tau2)))
    r = trials.reshape(-1, 1)
    for n, lt in enumerate(np.asarray(log_tau2, dtype=float)):
        G = torch.exp(-((r - r.T) ** 2) / (2 * np.exp(lt)))
        g, U = torch.linalg.eigh(G)
        g = g.clamp_min(0)
        proj = dev @ U  # (k, R)
        dS = torch.einsum("in,jim,mn->jn", U, Sjj, U)  # diag(U^T S_jj U), (k, R)
        num = (proj**2 + dS).sum(0)  # (R,)
        e = s2 * g + jitter  # (ns, R)
        out[:, n] = (0.5 * ((num / e).sum(1) + k * torch.log(e).sum(1))).numpy()
    return out


def select_hyperparameters(
    mean,
    cov,
    m_h,
    trials,
    *,
    log_sigma2=LOG_SIGMA2_GRID,
    log_tau2=LOG_TAU2_GRID,
    jitter: float = GP_JITTER,
) -> HyperSelection:
    """(sigma2, tau2) minimising KL(q(h) || p(h)) over the grid (the reference code's M-step)."""
    log_sigma2, log_tau2 = np.atleast_1d(log_sigma2), np.atleast_1d(log_tau2)
    kl = gp_kl(mean, cov, m_h, trials, log_sigma2, log_tau2, jitter=jitter)
    i, j = np.unravel_index(np.argmin(kl), kl.shape)
    return HyperSelection(
        sigma2=float(np.exp(log_sigma2[i])),
        tau2=float(np.exp(log_tau2[j])),
        log_sigma2=log_sigma2,
        log_tau2=log_tau2,
        kl=kl,
    )


def predict_h(
    test_trials,
    train_trials,
    h_mean,
    m_h,
    sigma2: float,
    tau2: float,
    *,
    jitter: float = GP_JITTER,
) -> torch.Tensor:
    """GP interpolation of the offsets to held-out trials: m_h + K_* K^{-1} (E[h] - m_h), (R*, k).

    The reference code omits m_h; adding it back is the correct GP predictive mean (with
    tau2 -> 0, the no-coupling variant, it returns m_h).
    """
    h_mean, m_h = _f64(h_mean), _f64(m_h)
    Kt = trial_kernel(train_trials, train_trials, sigma2, tau2)
    Kt = Kt + jitter * torch.eye(Kt.shape[0], dtype=torch.float64)
    Ks = trial_kernel(test_trials, train_trials, sigma2, tau2)
    return m_h + Ks @ torch.linalg.solve(Kt, h_mean - m_h)


def update_h_and_hyper(
    Y,
    base,
    C,
    m_h,
    trials,
    sigma2: float,
    tau2: float,
    *,
    log_sigma2=LOG_SIGMA2_GRID,
    log_tau2=LOG_TAU2_GRID,
    jitter: float = GP_JITTER,
):
    """One M-step for the offsets in the reference code's order: q(h) by Laplace under the current
    prior; m_h <- mean_r E[h_r]; (sigma2, tau2) on the grid; q(h) again under the new prior.

    Returns ``(h_mean (R, k), h_cov (R k, R k), m_h (k,), HyperSelection)``.
    """
    h_mean, h_cov = laplace_h(Y, base, C, m_h, trials, sigma2, tau2, jitter=jitter)
    m_h = h_mean.mean(0)
    hyper = select_hyperparameters(
        h_mean, h_cov, m_h, trials, log_sigma2=log_sigma2, log_tau2=log_tau2, jitter=jitter
    )
    h_mean, h_cov = laplace_h(Y, base, C, m_h, trials, hyper.sigma2, hyper.tau2, jitter=jitter)
    return h_mean, h_cov, m_h, hyper


def refit_offsets(
    Y, base, C, trials, *, tau2: float, n_rounds: int, sigma2: float = 10.0
) -> tuple[torch.Tensor, HyperSelection]:
    """Re-run only the offsets' updates (q(h), m_h and the (sigma2, tau2) grid) ``n_rounds``
    times on a fitted model's statistics (:func:`neuroinverse.inference.offset_statistics`),
    from ``m_h = 0`` and the given start; returns the final ``m_h`` and hyper-parameters.

    How the chapter asks what the timescale update does from another start or with the trial
    order shuffled, without refitting the dynamics.
    """
    if int(n_rounds) < 1:
        raise ValueError(f"n_rounds must be >= 1; got {n_rounds!r}")
    m_h = torch.zeros(C.shape[1], dtype=torch.float64)
    s2, t2 = float(sigma2), float(tau2)
    hyper = None
    for _ in range(int(n_rounds)):
        _, _, m_h, hyper = update_h_and_hyper(Y, base, C, m_h, trials, s2, t2)
        s2, t2 = hyper.sigma2, hyper.tau2
    return m_h, hyper


@dataclass
class TimescaleInit:
    """tau2 maximising the summed GP log marginal likelihood of the neurons' per-trial log mean
    counts; ``log_ml`` (len(log_tau2),) the profile over the grid (amplitude and noise of each
    neuron maximised)."""

    tau2: float
    log_tau2: np.ndarray
    log_ml: np.ndarray


def timescale_from_trial_means(
    y, trials=None, *, log_tau2=LOG_TAU2_GRID, n_levels: int = 13
) -> TimescaleInit:
    """A start for tau2: a GP fit to every neuron's per-trial log mean count.

    z_i (R,) = log(mean count of neuron i in each trial + 1/(2T)), centred, is modelled as
    N(0, a_i G_tau + s_i I) with a_i, s_i on log grids of ``n_levels`` values relative to
    var(z_i) (a in [1e-3, 10] var, s in [1e-3, 2] var); tau2 (shared) on ``log_tau2``. With
    G_tau = U diag(g) U^T, each (a, s) costs O(R).
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 3:
        raise ValueError(f"y must have shape (trials, T, p); got {y.shape}")
    R, T, _ = y.shape
    trials = np.arange(1, R + 1) if trials is None else np.asarray(trials, dtype=float)
    if trials.shape != (R,):
        raise ValueError(f"trials must have shape ({R},); got {trials.shape}")
    z = np.log(y.mean(1) + 1 / (2 * T))
    z = z - z.mean(0)
    var = z.var(0) + 1e-12  # (p,)
    amp = np.logspace(-3, 1, n_levels)[:, None, None] * var  # (na, 1, p)
    noise = np.logspace(-3, np.log10(2), n_levels)[None, :, None] * var  # (1, ns, p)
    r = torch.as_tensor(trials, dtype=torch.float64).reshape(-1, 1)
    lt = torch.as_tensor(np.asarray(log_tau2, dtype=float)).reshape(-1, 1, 1)
    gs, Us = torch.linalg.eigh(torch.exp(-((r - r.T) ** 2) / (2 * lt.exp())))  # all tau2 at once
    gs = gs.clamp_min(0).numpy()
    proj2s = ((Us.transpose(-1, -2) @ torch.as_tensor(z)) ** 2).numpy()  # (n_tau, R, p)
    out = np.empty(len(log_tau2))
    for n in range(len(out)):
        g, proj2 = gs[n], proj2s[n]
        e = amp[..., None] * g + noise[..., None]  # (na, ns, p, R)
        ll = -0.5 * ((proj2.T / e) + np.log(e)).sum(-1)  # (na, ns, p)
        out[n] = ll.reshape(-1, ll.shape[-1]).max(0).sum()
    return TimescaleInit(
        tau2=float(np.exp(log_tau2[int(np.argmax(out))])),
        log_tau2=np.asarray(log_tau2),
        log_ml=out,
    )
