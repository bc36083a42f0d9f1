"""Latent linear dynamical systems: Gaussian LDS with partial observation, Poisson LDS with
slow drift.

Both simulators return the truth beside the data. The Gaussian generator follows the
parameter recipe of Nonnenmacher, Turaga & Macke (NIPS 2017): eigenvalues in slow complex
pairs, a whitened latent space (stationary covariance Pi = I), rows of C scaled so every
neuron has unit variance with a chosen noise-to-signal ratio. The Poisson generator is the
simulation of Park, Bohner & Macke (NIPS 2015, Fig. 2): a 4-d latent AR process, two neuron
groups whose trial-wise offset h drifts slowly across trials as a sum of Gaussian bumps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import orth, solve_discrete_lyapunov

from .._checks import check_positive_int, check_probability, check_range

__all__ = [
    "LDSParams",
    "LDSData",
    "random_lds",
    "simulate_lds",
    "lagged_covariances_true",
    "subpopulation_mask",
    "missing_at_random_mask",
    "PoissonLDSData",
    "simulate_poisson_lds",
]


@dataclass(frozen=True)
class LDSParams:
    """x_{t+1} = A x_t + N(0, Q); y_t = C x_t + N(0, diag R); Pi the stationary latent
    covariance."""

    A: np.ndarray  # (n, n)
    Q: np.ndarray  # (n, n)
    C: np.ndarray  # (p, n)
    R: np.ndarray  # (p,)
    Pi: np.ndarray  # (n, n)

    @property
    def eigenvalues(self) -> np.ndarray:
        return np.linalg.eigvals(self.A)


@dataclass(frozen=True)
class LDSData:
    """Observations ``y`` (T, p), centred per neuron over its observed entries; ``mask`` (T, p)
    True where observed (``y`` is 0 elsewhere); the true latents ``x`` (T, n) and parameters."""

    y: np.ndarray
    mask: np.ndarray
    x: np.ndarray
    params: LDSParams


def random_lds(
    p: int,
    n: int,
    *,
    moduli: tuple[float, float] = (0.95, 0.99),
    kappa: float = 1000.0,
    nsr: tuple[float, float] = (1.0, 1.0),
    orthogonal_c: bool = True,
    seed: int = 0,
) -> LDSParams:
    """A random stable LDS with ``n/2`` slow complex eigenvalue pairs and Pi = I.

    Pair moduli are equally spaced in ``moduli``; angles are 2*pi*v with v ~ vonMises(0, kappa).
    Q ~ Wishart(5n, I)/n; the latent space is then whitened. C has N(0, 1/n) entries
    (orthonormalised if ``orthogonal_c``); each row is scaled so that the neuron's variance is
    1 with noise-to-signal ratio drawn from U[nsr].
    """
    p = check_positive_int(p, "p")
    n = check_positive_int(n, "n")
    if n % 2:
        raise ValueError(f"n must be even (eigenvalues come in complex pairs); got {n}")
    if n > p:
        raise ValueError(f"latent dimension n={n} must not exceed the population size p={p}")
    check_range(moduli[0], "moduli[0]", 0.0, 1.0, high_open=True)
    check_range(moduli[1], "moduli[1]", 0.0, 1.0, high_open=True)
    rng = np.random.default_rng(seed)
    r = np.linspace(moduli[0], moduli[1], n // 2)
    theta = 2 * np.pi * rng.vonmises(0.0, kappa, size=n // 2)
    blocks = np.zeros((n, n))
    for k in range(n // 2):
        c, s = r[k] * np.cos(theta[k]), r[k] * np.sin(theta[k])
        blocks[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = [[c, -s], [s, c]]
    M = rng.standard_normal((n, n))
    A = M @ blocks @ np.linalg.inv(M)
    G = rng.standard_normal((5 * n, n))
    Q = G.T @ G / n
    Pi = solve_discrete_lyapunov(A, Q)
    L = np.linalg.cholesky((Pi + Pi.T) / 2)
    Li = np.linalg.inv(L)
    A, Q = Li @ A @ L, Li @ Q @ Li.T
    C = rng.standard_normal((p, n)) / np.sqrt(n)
    if orthogonal_c:
        C = orth(C)
    ratio = rng.uniform(nsr[0], nsr[1], size=p)
    signal = np.einsum("in,in->i", C, C)  # Pi = I
    C = C / np.sqrt(signal * (1 + ratio))[:, None]
    R = np.einsum("in,in->i", C, C) * ratio
    return LDSParams(A=A, Q=(Q + Q.T) / 2, C=C, R=R, Pi=np.eye(n))


def simulate_lds(
    params: LDSParams, T: int, *, mask: np.ndarray | None = None, seed: int = 0
) -> LDSData:
    """Draw T time points (x_0 ~ N(0, Pi)); entries outside ``mask`` (T, p) are set to 0.

    Each neuron is centred using only the time points at which it is observed.
    """
    T = check_positive_int(T, "T", minimum=2)
    p, n = params.C.shape
    if mask is None:
        mask = np.ones((T, p), dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (T, p):
        raise ValueError(f"mask must have shape (T, p) = {(T, p)}; got {mask.shape}")
    if not mask.any(0).all():
        raise ValueError(
            f"mask leaves neuron {int(np.flatnonzero(~mask.any(0))[0])} never observed"
        )
    rng = np.random.default_rng(seed)
    Lq = np.linalg.cholesky(params.Q)
    eta = rng.standard_normal((T, n)) @ Lq.T
    x = np.empty((T, n))
    x[0] = np.linalg.cholesky(params.Pi) @ rng.standard_normal(n)
    for t in range(1, T):
        x[t] = params.A @ x[t - 1] + eta[t]
    y = x @ params.C.T + rng.standard_normal((T, p)) * np.sqrt(params.R)
    y = np.where(mask, y, 0.0)
    mean = y.sum(0) / mask.sum(0)
    y = np.where(mask, y - mean, 0.0)
    return LDSData(y=y, mask=mask, x=x, params=params)


def lagged_covariances_true(params: LDSParams, K: int, rows=None, cols=None) -> np.ndarray:
    """Model covariances C A^s Pi C^T (+ diag R at s = 0) for s = 0..K-1,
    (K, len(rows), len(cols))."""
    C = params.C
    rows = np.arange(C.shape[0]) if rows is None else np.asarray(rows)
    cols = np.arange(C.shape[0]) if cols is None else np.asarray(cols)
    out, As = [], np.eye(params.A.shape[0])
    for s in range(K):
        S = C[rows] @ As @ params.Pi @ C[cols].T
        if s == 0:
            S = S + (rows[:, None] == cols[None, :]) * params.R[rows][:, None]
        out.append(S)
        As = params.A @ As
    return np.stack(out)


def subpopulation_mask(
    p: int, T: int, overlap: int, *, n_blocks: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two subpopulations S1 = {0..ceil((p+o)/2)-1} and S2 (the last p - |S1| + o neurons), sharing
    exactly o neurons, imaged in alternating time blocks. Returns ``(mask (T, p), S1, S2)``.
    """
    p = check_positive_int(p, "p")
    T = check_positive_int(T, "T")
    if not 0 <= overlap <= p:
        raise ValueError(f"overlap must lie in [0, p]; got {overlap} for p={p}")
    end1 = (p + overlap + 1) // 2
    s1 = np.arange(0, end1)
    s2 = np.arange(end1 - overlap, p)
    mask = np.zeros((T, p), dtype=bool)
    edges = np.linspace(0, T, n_blocks + 1).astype(int)
    for b in range(n_blocks):
        mask[edges[b] : edges[b + 1], s1 if b % 2 == 0 else s2] = True
    return mask, s1, s2


def missing_at_random_mask(p: int, T: int, missing: float, *, seed: int = 0) -> np.ndarray:
    """Each entry missing independently with probability ``missing``; (T, p) bool,
    True = observed."""
    check_probability(missing, "missing")
    rng = np.random.default_rng(seed)
    return rng.random((T, p)) >= missing


@dataclass(frozen=True)
class PoissonLDSData:
    """Spike counts ``y`` (R, T, p) with log rates ``z`` = C(x + h_r) + d; truth beside them."""

    y: np.ndarray
    z: np.ndarray
    x: np.ndarray  # (R, T, k)
    h: np.ndarray  # (R, k) per-trial latent offset
    A: np.ndarray
    C: np.ndarray
    d: np.ndarray
    groups: np.ndarray  # (p,) group label of each neuron


def simulate_poisson_lds(
    n_trials: int = 100,
    T: int = 200,
    p: int = 40,
    k: int = 4,
    *,
    a: float = 0.9,
    bump_sd: float = 12.5,
    seed: int = 0,
) -> PoissonLDSData:
    """Poisson LDS over trials with slow trial-to-trial drift of the latent offset.

    x_t = a x_{t-1} + N(0, (1 - a^2) I) within each trial; h_r (k) is constant within trial r
    and drifts across trials as a Gaussian bump of SD ``bump_sd`` trials (rising for the first
    half of the latents, falling for the second). C is block-structured so that neuron group g
    loads on latent pair g; d = -1.4.
    """
    n_trials = check_positive_int(n_trials, "n_trials")
    T = check_positive_int(T, "T")
    p = check_positive_int(p, "p", minimum=2)
    k = check_positive_int(k, "k", minimum=2)
    if k > p:
        raise ValueError(f"latent dimension k={k} must not exceed the population size p={p}")
    rng = np.random.default_rng(seed)
    groups = (np.arange(p) >= p // 2).astype(int)
    C = 0.3 * np.abs(rng.standard_normal((p, k)))
    half = k // 2
    C[groups == 0, half:] = 0.0
    C[groups == 1, :half] = 0.0
    d = np.full(p, -1.4)
    r = np.arange(n_trials)
    up = 2.0 * np.exp(-0.5 * ((r - 0.75 * n_trials) / bump_sd) ** 2)
    down = -2.0 * np.exp(-0.5 * ((r - 0.3 * n_trials) / bump_sd) ** 2)
    h = np.zeros((n_trials, k))
    h[:, :half] = up[:, None] / np.maximum(C[groups == 0, :half].sum(1).mean(), 1e-9) / half * 0.5
    h[:, half:] = (
        down[:, None] / np.maximum(C[groups == 1, half:].sum(1).mean(), 1e-9) / (k - half) * 0.5
    )
    A = a * np.eye(k)
    x = np.empty((n_trials, T, k))
    x[:, 0] = rng.standard_normal((n_trials, k))
    noise = rng.standard_normal((n_trials, T, k)) * np.sqrt(1 - a**2)
    for t in range(1, T):
        x[:, t] = x[:, t - 1] @ A.T + noise[:, t]
    z = (x + h[:, None, :]) @ C.T + d
    y = rng.poisson(np.exp(z))
    return PoissonLDSData(y=y, z=z, x=x, h=h, A=A, C=C, d=d, groups=groups)
