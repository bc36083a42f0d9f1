"""Fitting Poisson linear dynamical systems to many trials: the M-steps, the (VB)EM loop and its
variants, and held-out trial prediction.

One model for counts y_{r,t,i} of trial r, bin t, neuron i (Park, Bohner & Macke, NIPS 2015):
x_{r,1} = x0 + B u_1 + N(0, V0), x_{r,t} = A x_{r,t-1} + B u_t + N(0, Q),
z_{r,t} = C (x_{r,t} + h_r) + d, y ~ Poisson(exp z), with x0 = 0, V0 = Q = I fixed (they set the
scale of the latents). The variants differ only in h_r:

* ``"nplds"``: h_r has a GP prior over the trial index (:mod:`~neuroinverse.inference.nplds`),
  hyper-parameters by grid search;
* ``"no-coupling"``: the same with tau2 fixed at e^-6 (trials independent; a held-out trial's
  offset is the prior mean m_h);
* ``"plds"``: h_r = 0 (the stationary PLDS);
* ``"independent"``: h_r = 0 and every trial has its own A, B, C, d (one PLDS per trial,
  fitted all at once through the batched E-step).

Each iteration (the reference code's order): the Laplace E-step for x, batched over trials
(:func:`~neuroinverse.inference.plds.laplace_estep`, expected rates with the variance term
of q(h)); A and B as the posterior mean of a Bayesian linear regression with ARD precisions
(alpha, beta) chosen on the grid log alpha, log beta in {-6, -5.8, ..., 6} by the evidence;
C and d jointly by Newton's method, one small concave problem per neuron; then q(h) by
Laplace, (sigma2, tau2) on the grid and m_h, and q(h) again. Nothing of size (R T k)^2 is
formed: the E-step works on k x k blocks, q(h) on (R k)^2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm  # text bar: no ipywidgets needed, renders in the built book

from .._checks import check_choice, check_positive_int
from .nplds import (
    LOG_SIGMA2_GRID,
    LOG_TAU2_GRID,
    NO_COUPLING_LOG_TAU2,
    HyperSelection,
    predict_h,
    timescale_from_trial_means,
    update_h_and_hyper,
)
from .plds import LaplacePosterior, check_counts, laplace_estep, prior_mean_trajectory

__all__ = [
    "MODELS",
    "ARD_GRID",
    "PLDSParams",
    "PLDSFit",
    "check_plds_data",
    "update_dynamics",
    "update_loadings",
    "offset_statistics",
    "fit_plds",
    "simulate_trial_means",
    "heldout_error",
    "poisson_glm_trial_means",
]

MODELS = ("nplds", "no-coupling", "plds", "independent")
#: log alpha and log beta grid of the ARD precisions on A and B (the reference code's).
ARD_GRID = np.round(np.arange(-6.0, 6.0 + 1e-9, 0.2), 10)


@dataclass
class PLDSParams:
    """A (k, k), B (k, m), C (p, k), d (p,); with a leading trial axis for ``"independent"``.
    Q = V0 = I and x0 = 0 are fixed."""

    A: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    d: torch.Tensor

    @property
    def k(self) -> int:
        return self.A.shape[-1]

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of A (k,), or (R, k) per trial."""
        return np.linalg.eigvals(self.A.numpy())


@dataclass
class PLDSFit:
    """A fitted model: parameters, the posterior over x of the training trials, q(h).

    ``h_mean`` (R, k) (zeros without offsets), ``h_cov`` (R k, R k) or ``None``; ``trials`` the
    training trials' numbers; ``hyper`` the last grid search (``None`` without a GP);
    ``history`` one dict per iteration (log joint, sigma2, tau2, seconds).
    """

    model: str
    params: PLDSParams
    posterior: LaplacePosterior
    h_mean: torch.Tensor
    h_cov: torch.Tensor | None
    m_h: torch.Tensor
    sigma2: float | None
    tau2: float | None
    trials: np.ndarray
    u: torch.Tensor
    hyper: HyperSelection | None = None
    history: list[dict] = field(default_factory=list)

    def h_blocks(self) -> torch.Tensor:
        """Per-trial covariances S_r (R, k, k) of q(h) (zeros without offsets)."""
        R, k = self.h_mean.shape
        if self.h_cov is None:
            return torch.zeros(R, k, k, dtype=torch.float64)
        idx = torch.arange(R)
        return self.h_cov.reshape(R, k, R, k)[idx, :, idx, :]

    def log_rates(self) -> np.ndarray:
        """Estimated log rates z^ = C (mu_t + E[h_r]) + d of the training trials, (R, T, p)."""
        P = self.params
        z = (self.posterior.mean + self.h_mean[:, None]) @ P.C.transpose(-1, -2)
        return (z + P.d.unsqueeze(-2)).numpy()

    def predict_h(self, test_trials) -> torch.Tensor:
        """Offsets of held-out trials: GP interpolation for ``"nplds"`` and ``"no-coupling"``
        (m_h + K_* K^-1 (E[h] - m_h)), zeros otherwise."""
        test = np.asarray(test_trials)
        if self.model in ("plds", "independent"):
            return torch.zeros(len(test), self.params.k, dtype=torch.float64)
        return predict_h(test, self.trials, self.h_mean, self.m_h, self.sigma2, self.tau2)


def check_plds_data(y, u, k: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Counts (R, T, p) checked (non-negative integers, no NaN; errors name ``y``), inputs
    (T, m) finite (errors name ``u``), latent dimension 1 <= k <= p (errors name ``k``)."""
    y = check_counts(y, "y")
    R, T, p = y.shape
    k = check_positive_int(k, "k")
    if k > p:
        raise ValueError(f"latent dimension k={k} must not exceed the population size p={p}")
    if T < 2:
        raise ValueError(f"y must have at least 2 time bins per trial; got T={T}")
    u = torch.as_tensor(np.zeros((T, 1)) if u is None else np.asarray(u), dtype=torch.float64)
    if u.ndim != 2 or u.shape[0] != T:
        raise ValueError(f"u must have shape (T, m) with T={T}; got {tuple(u.shape)}")
    if not torch.isfinite(u).all():
        raise ValueError("u contains NaN or infinite values")
    return y, u, k


def _ard_evidence(Szz, Sxz, k, m, grid):
    """log evidence of the rows of [A B] under N(0, diag(alpha I_k, beta I_m)^-1) on the grid;
    Szz (G, k+m, k+m), Sxz (G, k, k+m). Returns (G, len(grid), len(grid)) and the posterior
    means (G, len, len, k, k+m)."""
    la, lb = torch.meshgrid(torch.as_tensor(grid), torch.as_tensor(grid), indexing="ij")
    lam = torch.cat([la[..., None].expand(*la.shape, k), lb[..., None].expand(*lb.shape, m)], -1)
    lam = lam.exp().to(torch.float64)  # (na, nb, k+m)
    P = Szz[:, None, None] + torch.diag_embed(lam)[None]  # (G, na, nb, k+m, k+m)
    L = torch.linalg.cholesky(P)
    W = torch.cholesky_solve(Sxz[:, None, None].transpose(-1, -2), L).transpose(-1, -2)
    fit = 0.5 * (W * Sxz[:, None, None]).sum((-1, -2))  # sum_j w_j^T P w_j / 2
    logdetP = 2 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    ev = fit - 0.5 * k * logdetP + 0.5 * k * torch.log(lam).sum(-1)[None]
    return ev, W


def update_dynamics(post: LaplacePosterior, u: torch.Tensor, *, per_trial: bool = False):
    """A, B from the expected sufficient statistics, ARD precisions by the evidence on a grid.

    Regression of x_t on z_t = [x_{t-1}; u_t] (with x_0 = 0, so the first bin informs B),
    unit noise (Q = V0 = I). Returns ``(A, B, (log alpha, log beta))``; with ``per_trial`` one
    A, B per trial, (R, k, k) and (R, k, m).
    """
    mu, cov, cross = post.mean, post.cov, post.cross
    R, T, k = mu.shape
    m = u.shape[1]
    Exx = cov + mu.unsqueeze(-1) * mu.unsqueeze(-2)  # E[x_t x_t^T] (R, T, k, k)
    # E[x_t x_{t-1}^T] = mu_t mu_{t-1}^T + Cov(x_t, x_{t-1}); cross[t] = Cov(x_t, x_{t+1})
    Ex1x0 = mu[:, 1:].unsqueeze(-1) * mu[:, :-1].unsqueeze(-2) + cross.transpose(-1, -2)
    Sxx_prev = Exx[:, :-1].sum(1)  # (R, k, k)
    Sxu_prev = torch.einsum("rti,tj->rij", mu[:, :-1], u[1:])  # (R, k, m)
    Suu = (u.T @ u).expand(R, m, m)
    Szz = torch.cat(
        [torch.cat([Sxx_prev, Sxu_prev], -1), torch.cat([Sxu_prev.transpose(-1, -2), Suu], -1)],
        -2,
    )
    Sxz = torch.cat([Ex1x0.sum(1), torch.einsum("rti,tj->rij", mu, u)], -1)  # (R, k, k+m)
    if not per_trial:
        Szz, Sxz = Szz.sum(0, keepdim=True), Sxz.sum(0, keepdim=True)
    grid = ARD_GRID[::5] if per_trial else ARD_GRID  # 13 x 13 per trial, 61 x 61 shared
    ev, W = _ard_evidence(Szz, Sxz, k, m, grid)
    G = ev.shape[0]
    best = ev.reshape(G, -1).argmax(1)
    Wb = W.reshape(G, -1, k, k + m)[torch.arange(G), best]
    ia, ib = np.unravel_index(best.numpy(), ev.shape[1:])
    A, B = Wb[..., :k], Wb[..., k:]
    if not per_trial:
        A, B = A[0], B[0]
    return A, B, (grid[ia], grid[ib])


def update_loadings(
    y: torch.Tensor,
    post: LaplacePosterior,
    C: torch.Tensor,
    d: torch.Tensor,
    h_mean: torch.Tensor | None = None,
    h_blocks: torch.Tensor | None = None,
    *,
    per_trial: bool = False,
    steps: int = 5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """C and d maximising sum y (c_i^T nu + d_i) - exp(c_i^T nu + d_i + c_i^T V c_i / 2).

    nu_{r,t} = mu_{r,t} + E[h_r], V_{r,t} = Sigma_{r,t} + S_r. The objective is concave in
    (c_i, d_i) and separate per neuron (and per trial with ``per_trial``), so every neuron takes
    ``steps`` damped Newton steps on its own (k + 1)-dimensional problem, all at once.
    """
    mu, Sig = post.mean, post.cov
    R, T, k = mu.shape
    p = y.shape[-1]
    K1 = k + 1
    nu = mu if h_mean is None else mu + h_mean[:, None]
    V = Sig if h_blocks is None else Sig + h_blocks[:, None]
    G = R if per_trial else 1
    nu, V, yy = nu.reshape(G, -1, k), V.reshape(G, -1, k, k), y.reshape(G, -1, p)
    N = nu.shape[1]
    w = torch.cat([C.reshape(G, p, k), d.reshape(G, p, 1)], -1)  # (G, p, k+1)
    nu1 = torch.cat([nu, torch.ones(G, N, 1, dtype=torch.float64)], -1)  # (G, N, k+1)
    Ynu = yy.transpose(-1, -2) @ nu1  # (G, p, k+1): sum_n y (nu; 1)
    # every sum over bins below is one matrix product with lam^T (G, p, N)
    Vf = V.reshape(G, N, k * k)
    nuV = (nu1.unsqueeze(-1) * Vf.unsqueeze(-2)).reshape(G, N, K1 * k * k)
    VV = (Vf.unsqueeze(-1) * Vf.unsqueeze(-2)).reshape(G, N, k**4)
    nunu = (nu1.unsqueeze(-1) * nu1.unsqueeze(-2)).reshape(G, N, K1 * K1)

    def objective(w):
        c = w[..., :k]
        cc = (c.unsqueeze(-1) * c.unsqueeze(-2)).reshape(G, p, k * k)
        eta = nu1 @ w.transpose(-1, -2) + 0.5 * Vf @ cc.transpose(-1, -2)  # (G, N, p)
        lam = eta.exp()
        return (Ynu * w).sum(-1) - lam.sum(1), lam  # (G, p)

    val, lam = objective(w)
    for _ in range(steps):
        c = w[..., :k]
        lt = lam.transpose(-1, -2)  # (G, p, N)
        SV = (lt @ Vf).reshape(G, p, k, k)  # sum lam V
        SVc = (SV @ c.unsqueeze(-1)).squeeze(-1)  # sum lam V c
        grad = Ynu - lt @ nu1
        grad[..., :k] -= SVc
        H = (lt @ nunu).reshape(G, p, K1, K1)
        cross = torch.einsum("gpajk,gpk->gpaj", (lt @ nuV).reshape(G, p, K1, k, k), c)
        quad = torch.einsum("gpijkl,gpj,gpl->gpik", (lt @ VV).reshape(G, p, k, k, k, k), c, c)
        H[..., :, :k] += cross
        H[..., :k, :] += cross.transpose(-1, -2)
        H[..., :k, :k] += quad + SV
        delta = torch.linalg.solve(H, grad.unsqueeze(-1)).squeeze(-1)  # ascent direction
        step = torch.ones(G, p, 1, dtype=torch.float64)
        for _ in range(20):
            new_val, new_lam = objective(w + step * delta)
            bad = (new_val < val - 1e-10).unsqueeze(-1)
            if not bad.any():
                break
            step = torch.where(bad, step / 2, step)
        w = w + step * delta
        val, lam = new_val, new_lam
    C_new, d_new = w[..., :k], w[..., k]
    if not per_trial:
        return C_new[0], d_new[0]
    return C_new, d_new


def offset_statistics(y, post: LaplacePosterior, C, d) -> tuple[torch.Tensor, torch.Tensor]:
    """What the offsets' likelihood needs: spike counts per trial and neuron Y (R, p) and the
    expected counts without the offset, base (R, p) = sum_t exp(c_i^T mu_t + d_i +
    c_i^T Sigma_t c_i / 2), from the posterior over x."""
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    R, T, k = post.mean.shape
    cc = (C.unsqueeze(-1) * C.unsqueeze(-2)).reshape(-1, k * k)
    q = post.cov.reshape(R, T, k * k) @ cc.T
    base = (post.mean @ C.T + d + 0.5 * q).exp().sum(1)
    return y.sum(1), base


def fit_plds(
    y,
    u,
    k: int,
    *,
    model: str = "nplds",
    trials=None,
    n_iter: int = 12,
    seed: int = 0,
    newton_steps: int = 10,
    loading_steps: int = 5,
    tau2_init: float | str | None = None,
    sigma2_init: float | None = None,
    log_sigma2_grid=LOG_SIGMA2_GRID,
    log_tau2_grid=LOG_TAU2_GRID,
    init: PLDSParams | None = None,
    progress: bool = True,
) -> PLDSFit:
    """Fit a PLDS variant (``model`` in :data:`MODELS`) to counts ``y`` (R, T, p) with inputs
    ``u`` (T, m) shared by all trials (``None``: no inputs), by ``n_iter`` EM iterations.

    ``trials``: the trial numbers (R,) the GP sees (default 1..R; pass the numbers of the
    training trials when some are held out). Initialisation as in the reference code, but with
    d estimated: C = 0.2 N(0, 1), A = 0.5 I, B = 0, d = log mean count, h = m_h = 0 (or
    ``init``); sigma2 ~ 10 |N(0, 1)| (seeded by ``seed``); tau2 from
    :func:`~neuroinverse.inference.nplds.timescale_from_trial_means` (the reference code's
    start for real data), ``"random"`` for its simulation start 10 U(0, 1), or a number.
    """
    check_choice(model, "model", MODELS)
    y, u, k = check_plds_data(y, u, k)
    n_iter = check_positive_int(n_iter, "n_iter")
    R, T, p = y.shape
    m = u.shape[1]
    trials = np.arange(1, R + 1) if trials is None else np.asarray(trials, dtype=float)
    if trials.shape != (R,):
        raise ValueError(f"trials must have one number per trial, shape ({R},); got {trials.shape}")
    per_trial = model == "independent"
    gp = model in ("nplds", "no-coupling")
    rng = np.random.default_rng(seed)
    C = torch.as_tensor(0.2 * rng.standard_normal((p, k)))
    A = 0.5 * torch.eye(k, dtype=torch.float64)
    B = torch.zeros(k, m, dtype=torch.float64)
    rate = y.mean((0, 1)).clamp_min(0.5 / (R * T))
    d = torch.log(rate)
    if per_trial:
        C, A, B = C.expand(R, p, k).clone(), A.expand(R, k, k).clone(), B.expand(R, k, m).clone()
        d = torch.log(y.mean(1).clamp_min(0.5 / T))
    if init is not None:
        A, B, C, d = (
            torch.as_tensor(np.asarray(v), dtype=torch.float64).clone()
            for v in (init.A, init.B, init.C, init.d)
        )
    if tau2_init == "random":  # the reference code's start for its simulation
        tau2 = float(10 * rng.uniform())
    elif tau2_init is None:  # its start for real data: a GP fit to per-trial mean counts
        tau2 = timescale_from_trial_means(y.numpy(), trials).tau2 if gp else 1.0
    else:
        tau2 = float(tau2_init)
    sigma2 = float(10 * abs(rng.standard_normal())) if sigma2_init is None else float(sigma2_init)
    if model == "no-coupling":
        tau2, log_tau2_grid = float(np.exp(NO_COUPLING_LOG_TAU2)), [NO_COUPLING_LOG_TAU2]
    h_mean = torch.zeros(R, k, dtype=torch.float64)
    h_cov, m_h, hyper = None, torch.zeros(k, dtype=torch.float64), None
    eye = torch.eye(k, dtype=torch.float64)
    post, x_start, history = None, None, []
    bar = tqdm(range(n_iter), desc=f"EM {model}", disable=not progress, leave=True, ncols=90)
    for it in bar:
        t0 = time.perf_counter()
        S = torch.zeros(R, k, k, dtype=torch.float64)
        if h_cov is not None:
            idx = torch.arange(R)
            S = h_cov.reshape(R, k, R, k)[idx, :, idx, :]
        Cb = C if per_trial else C.expand(R, p, k)
        var_term = 0.5 * torch.einsum("rpi,rij,rpj->rp", Cb, S, Cb)[:, None]
        mean0 = prior_mean_trajectory(A, B, u, torch.zeros(k))
        post = laplace_estep(
            y,
            A,
            eye,
            eye,
            C,
            d,
            h_mean,
            x0=x_start,
            prior_mean=mean0,
            eta_offset=var_term,
            max_steps=newton_steps,
        )
        x_start = post.mean
        A, B, _ = update_dynamics(post, u, per_trial=per_trial)
        C, d = update_loadings(y, post, C, d, h_mean, S, per_trial=per_trial, steps=loading_steps)
        if gp:
            Y, base = offset_statistics(y, post, C, d)
            h_mean, h_cov, m_h, hyper = update_h_and_hyper(
                Y,
                base,
                C,
                m_h,
                trials,
                sigma2,
                tau2,
                log_sigma2=log_sigma2_grid,
                log_tau2=log_tau2_grid,
            )
            sigma2, tau2 = hyper.sigma2, hyper.tau2
        lj = float(post.log_joint.sum())
        history.append(
            dict(
                iteration=it + 1,
                log_joint=lj,
                newton_steps=post.newton_steps,
                sigma2=sigma2 if gp else None,
                tau2=tau2 if gp else None,
                seconds=time.perf_counter() - t0,
            )
        )
        post_fix = {"log joint": f"{lj:.1f}"}
        if gp:
            post_fix["tau"] = f"{np.sqrt(tau2):.2f}"
        bar.set_postfix(post_fix)
    bar.close()
    return PLDSFit(
        model=model,
        params=PLDSParams(A=A, B=B, C=C, d=d),
        posterior=post,
        h_mean=h_mean,
        h_cov=h_cov,
        m_h=m_h,
        sigma2=sigma2 if gp else None,
        tau2=tau2 if gp else None,
        trials=trials,
        u=u,
        hyper=hyper,
        history=history,
    )


def simulate_trial_means(
    params: PLDSParams, u, h, *, n_sim: int = 1000, seed: int = 0, batch: int = 250
) -> np.ndarray:
    """Predicted mean count per bin of each neuron for trials with offsets ``h`` (R*, k).

    Draws ``n_sim`` trials from the fitted model (x0 = 0, V0 = Q = I, inputs ``u``) for each
    offset, takes each simulated trial's within-trial mean of exp(z) and returns the median over
    simulations (the reference code's prediction), (R*, p).
    """
    if params.A.ndim != 2:
        raise ValueError("simulate_trial_means needs one shared model (not per-trial params)")
    n_sim = check_positive_int(n_sim, "n_sim")
    u = torch.as_tensor(np.asarray(u), dtype=torch.float64)
    h = torch.as_tensor(np.asarray(h), dtype=torch.float64)
    A, B, C, d = params.A, params.B, params.C, params.d
    T, k = u.shape[0], A.shape[0]
    Bu = u @ B.T
    g = torch.Generator().manual_seed(seed)
    means = []
    for start in range(0, n_sim, batch):
        n = min(batch, n_sim - start)
        xi = torch.randn(len(h), n, T, k, generator=g, dtype=torch.float64)
        x = Bu[0] + xi[:, :, 0]
        acc = torch.zeros(len(h), n, C.shape[0], dtype=torch.float64)
        for t in range(T):
            if t:
                x = x @ A.T + Bu[t] + xi[:, :, t]
            acc += ((x + h[:, None]) @ C.T + d).exp()
        means.append(acc / T)
    return torch.cat(means, 1).median(1).values.numpy()


def heldout_error(predicted, y_test) -> float:
    """The reference code's prediction error: sqrt(sum over neurons and held-out trials of
    (predicted - observed mean count per bin)^2). ``predicted`` (R*, p), ``y_test`` (R*, T, p)."""
    y_test = check_counts(y_test, "y_test").numpy()
    predicted = np.asarray(predicted, dtype=float)
    if predicted.shape != (y_test.shape[0], y_test.shape[2]):
        raise ValueError(
            f"predicted must be (held-out trials, p) = {(y_test.shape[0], y_test.shape[2])}; "
            f"got {predicted.shape}"
        )
    return float(np.sqrt(((predicted - y_test.mean(1)) ** 2).sum()))


def poisson_glm_trial_means(
    y_train,
    train_trials,
    test_trials,
    *,
    n_basis: int = 12,
    alphas=(1e-5, 1e-4, 1e-3, 1e-2),
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """A model-free baseline for held-out trials: one Poisson GLM per neuron
    (scikit-learn's ``PoissonRegressor``) of the mean count per bin on Gaussian bumps over the
    trial number.

    ``n_basis`` bumps with centres spread evenly over the trial range and an SD of their spacing;
    each training trial is one sample with weight T (its number of bins), which is the Poisson
    likelihood of all its counts under a rate constant within the trial. The L2 penalty is
    picked from ``alphas`` by ``folds``-fold cross-validation over training trials (summed
    Poisson deviance of all neurons). Returns ``(predicted (R*, p), alpha)``.
    """
    from sklearn.linear_model import PoissonRegressor

    y_train = check_counts(y_train, "y_train").numpy()
    R, T, p = y_train.shape
    tr = np.asarray(train_trials, dtype=float)
    te = np.asarray(test_trials, dtype=float)
    if tr.shape != (R,):
        raise ValueError(f"train_trials must have shape ({R},); got {tr.shape}")
    lo, hi = min(tr.min(), te.min()), max(tr.max(), te.max())
    centres = np.linspace(lo, hi, check_positive_int(n_basis, "n_basis"))
    width = (hi - lo) / max(n_basis - 1, 1)

    def feats(t):
        return np.exp(-((t[:, None] - centres) ** 2) / (2 * width**2))

    rate = y_train.mean(1)  # (R, p)
    w = np.full(R, float(T))

    def fit_predict(alpha, idx_fit, x_new):
        out = np.empty((len(x_new), p))
        for i in range(p):
            m = PoissonRegressor(alpha=alpha, solver="newton-cholesky", max_iter=200)
            m.fit(feats(tr[idx_fit]), rate[idx_fit, i], sample_weight=w[idx_fit])
            out[:, i] = m.predict(feats(x_new))
        return out

    order = np.random.default_rng(seed).permutation(R)
    dev = np.zeros(len(alphas))
    for f in range(folds):
        held = order[f::folds]
        keep = np.setdiff1d(np.arange(R), held)
        for a, alpha in enumerate(alphas):
            mu = np.clip(fit_predict(alpha, keep, tr[held]), 1e-12, None)
            obs = rate[held]
            dev[a] += (T * (mu - obs * np.log(mu))).sum()  # Poisson deviance up to constants
    best = float(alphas[int(np.argmin(dev))])
    return fit_predict(best, np.arange(R), te), best
