"""Classical spike-inference baselines: OASIS deconvolution and a discrete-time Gibbs sampler.

* OASIS (Friedrich, Zhou, Paninski, PLoS Comput. Biol. 2017) solves the AR(1) non-negative,
  L1-penalised deconvolution (the MAP problem of fast-oopsi) exactly; the book calls the
  ``oasis-deconv`` package.
* The Gibbs sampler follows the discrete-time MCMC of Pnevmatikakis et al. (2013), here for
  the linear model M1 with known parameters: each sweep visits every frame and resamples
  s_t ∈ {0, 1} from its exact conditional given all other spikes, then proposes to move
  every spike by a few frames (Metropolis, as the spike-time moves of that paper). Without
  the moves the chain freezes with spikes a few frames early: a long calcium transient is
  explained almost as well by a spike shortly before the true one, and no single flip can
  move it. It is vectorised over traces and loops over time, which is what makes per-trace
  MCMC slow.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm import tqdm  # text bar: no ipywidgets needed, renders in the built book

from .._checks import as_tensor, check_finite, check_ndim, check_positive_int, check_range

__all__ = ["oasis_deconvolve", "gibbs_spikes"]


def oasis_deconvolve(traces, *, gamma=None) -> tuple[np.ndarray, np.ndarray]:
    """Deconvolve each trace with OASIS (AR(1), L1 penalty, noise estimated per trace).

    Args:
        traces: ``(N, T)`` fluorescence.
        gamma: ``None`` to estimate the decay per trace from the power spectrum (the default
            of ``oasis.functions.deconvolve``), or ``(N,)`` true decays (oracle variant).

    Returns:
        ``(spikes, gamma_used)``: non-negative deconvolved activity ``(N, T)`` and ``(N,)``.
    """
    from oasis.functions import deconvolve

    y = check_finite(
        check_ndim(
            as_tensor(traces, "traces", dtype=torch.float64), "traces", 2, "(traces, frames)"
        ),
        "traces",
    ).numpy()
    if gamma is not None:
        gamma = np.asarray(gamma, dtype=float)
        if gamma.shape != (y.shape[0],) or ((gamma <= 0) | (gamma >= 1)).any():
            raise ValueError(f"gamma must be None or ({y.shape[0]},) values in (0, 1)")
    out = np.zeros_like(y)
    used = np.zeros(y.shape[0])
    for i, yi in enumerate(y):
        g = (None,) if gamma is None else (float(gamma[i]),)
        _, s, _, g_hat, _ = deconvolve(np.ascontiguousarray(yi), g=g, penalty=1)
        out[i] = np.maximum(s, 0.0)  # OASIS leaves round-off of order -1e-17 where s = 0
        used[i] = float(np.ravel(g_hat)[0])
    return out, used


def gibbs_spikes(
    traces,
    *,
    gamma,
    alpha,
    beta,
    sigma,
    prior_rate: float = 0.015,
    n_sweeps: int = 20,
    burn_in: int | None = None,
    generator: np.random.Generator | int = 0,
    kernel_tol: float = 1e-4,
    max_shift: int = 3,
    progress: bool = False,
) -> np.ndarray:
    """Posterior spike probabilities under M1 by single-site Gibbs sampling.

    Flipping s_t changes the noiseless trace by h = α γ^k (k ≥ 0). With r the residual
    without the spike at t, the conditional log odds of s_t = 1 are
    ``(h·r − ½ h·h) / σ² + log(π / (1 − π))``.

    Args:
        traces: ``(N, T)`` fluorescence.
        gamma, alpha, beta, sigma: ``(N,)`` model parameters per trace (σ is the noise SD).
        prior_rate: prior spike probability per frame π.
        n_sweeps: passes over all frames.
        burn_in: sweeps discarded before averaging (default: half).
        generator: NumPy generator or seed.
        kernel_tol: the kernel is truncated where γ^k < kernel_tol.
        max_shift: spike moves propose shifts of 1..max_shift frames either way (0: none).

    Returns:
        ``(N, T)`` fraction of kept sweeps with a spike at each frame.
    """
    f = check_finite(
        check_ndim(
            as_tensor(traces, "traces", dtype=torch.float64), "traces", 2, "(traces, frames)"
        ),
        "traces",
    ).numpy()
    N, T = f.shape
    par = {}
    for name, v in dict(gamma=gamma, alpha=alpha, beta=beta, sigma=sigma).items():
        a = np.broadcast_to(np.asarray(v, dtype=float), (N,)).copy()
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        par[name] = a
    if ((par["gamma"] <= 0) | (par["gamma"] >= 1)).any():
        raise ValueError("gamma must lie in (0, 1)")
    if (par["sigma"] <= 0).any():
        raise ValueError("sigma must be positive")
    check_range(prior_rate, "prior_rate", 1e-9, 1 - 1e-9)
    check_positive_int(n_sweeps, "n_sweeps")
    burn_in = n_sweeps // 2 if burn_in is None else burn_in
    check_range(burn_in, "burn_in", 0, n_sweeps, high_open=True)
    rng = (
        generator
        if isinstance(generator, np.random.Generator)
        else np.random.default_rng(generator)
    )
    L = int(min(T, math.ceil(math.log(kernel_tol) / math.log(par["gamma"].max()))))
    h = par["alpha"][:, None] * par["gamma"][:, None] ** np.arange(L)[None, :]  # (N, L)
    hh_full = np.cumsum(h * h, 1)  # ||h[:, :l]||² for every length l
    inv_var = 1.0 / par["sigma"] ** 2
    log_prior_odds = math.log(prior_rate / (1 - prior_rate))
    s = np.zeros((N, T))
    resid = f - par["beta"][:, None]  # residual with no spikes
    # pad so that every window has length L
    resid = np.concatenate([resid, np.zeros((N, L))], 1)
    counts = np.zeros((N, T))
    rows = np.arange(N)
    for sweep in tqdm(range(n_sweeps), desc="Gibbs sweeps", disable=not progress):
        u = np.log(rng.random((N, T)))
        for t in range(T):
            win = resid[:, t : t + L]
            cur = s[:, t]
            r0 = win + cur[:, None] * h  # residual without a spike at t
            l_eff = min(L, T - t)
            dot = np.einsum("nl,nl->n", h[:, :l_eff], r0[:, :l_eff])
            logit = (dot - 0.5 * hh_full[rows, l_eff - 1]) * inv_var + log_prior_odds
            # s_t = 1 with probability sigmoid(logit): compare log u with log sigmoid(logit)
            new = (u[:, t] < -np.logaddexp(0.0, -logit)).astype(float)
            resid[:, t : t + L] = r0 - new[:, None] * h
            s[:, t] = new
        if max_shift > 0:
            _shift_moves(s, resid, h, inv_var, max_shift, rng)
        if sweep >= burn_in:
            counts += s
    return counts / (n_sweeps - burn_in)


def _shift_moves(
    s: np.ndarray,
    resid: np.ndarray,
    h: np.ndarray,
    inv_var: np.ndarray,
    max_shift: int,
    rng: np.random.Generator,
) -> None:
    """One Metropolis pass proposing to move each spike by ±1..max_shift frames (in place).

    The spike count is unchanged, so the prior cancels; the acceptance ratio is the
    likelihood ratio, ``exp(−(‖r + v‖² − ‖r‖²) / 2σ²)`` with ``v`` the change of residual.
    """
    N, T = s.shape
    L = h.shape[1]
    rows = np.arange(N)
    d_all = rng.integers(1, max_shift + 1, (N, T)) * rng.choice([-1, 1], (N, T))
    log_u = np.log(rng.random((N, T)))
    # residual (already padded by L on the right) padded by max_shift on both sides, so
    # that the window [t - max_shift, t + L + max_shift) always lies inside it
    pad = np.concatenate([np.zeros((N, max_shift)), resid, np.zeros((N, max_shift))], 1)
    W = L + 2 * max_shift
    for t in range(T):
        d = d_all[:, t]
        dest = t + d
        ok = (s[:, t] == 1) & (dest >= 0) & (dest < T)
        if not ok.any():
            continue
        ok &= s[rows, np.clip(dest, 0, T - 1)] == 0
        if not ok.any():
            continue
        win = pad[:, t : t + W]  # original frames [t - max_shift, t + L + max_shift)
        v = np.zeros_like(win)
        v[:, max_shift : max_shift + L] += h  # the spike at t is removed: residual grows by h
        for n in np.where(ok)[0]:
            o = max_shift + d[n]
            v[n, o : o + L] -= h[n]
        dlog = -(2 * np.einsum("nw,nw->n", win, v) + np.einsum("nw,nw->n", v, v)) * 0.5 * inv_var
        acc = ok & (log_u[:, t] < dlog)
        if acc.any():
            pad[acc, t : t + W] = win[acc] + v[acc]
            s[acc, t] = 0
            s[acc, dest[acc]] = 1
    resid[:] = pad[:, max_shift : max_shift + resid.shape[1]]
