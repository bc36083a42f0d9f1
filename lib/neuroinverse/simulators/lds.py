"""Latent linear dynamical systems: Gaussian LDS with partial observation, Poisson LDS with
slow drift.

Both simulators return the truth beside the data. The Gaussian generator follows the
parameter recipe of Nonnenmacher, Turaga & Macke (NIPS 2017): eigenvalues in slow complex
pairs, a whitened latent space (stationary covariance Pi = I), rows of C scaled so every
neuron has unit variance with a chosen noise-to-signal ratio. The Poisson generator is the
simulation of Park, Bohner & Macke (NIPS 2015, Fig. 2) with the values of the authors' code: a
4-d latent process (two input-driven, two slow AR dimensions), two neuron groups whose
trial-wise latent offset h drifts slowly across trials as a Gaussian bump (up for one group,
down for the other).
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
    "poisson_lds_inputs",
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
    """Spike counts ``y`` (R, T, p) with log rates ``z`` = C(x + h_r) + d; truth beside them.

    ``A`` is the dynamics of the first trial; ``A_trials`` (R, k, k) holds every trial's (all
    equal unless the AR coefficient drifts, ``ar_drift``). Inputs ``u`` (T, m) are the same in
    every trial and enter as ``B u_t``; ``x0``, ``V0`` and ``Q`` are the initial mean, initial
    covariance and innovation covariance.
    """

    y: np.ndarray
    z: np.ndarray
    x: np.ndarray  # (R, T, k)
    h: np.ndarray  # (R, k) per-trial latent offset
    A: np.ndarray
    C: np.ndarray
    d: np.ndarray
    groups: np.ndarray  # (p,) group label of each neuron
    B: np.ndarray | None = None  # (k, m)
    u: np.ndarray | None = None  # (T, m)
    Q: np.ndarray | None = None
    V0: np.ndarray | None = None
    x0: np.ndarray | None = None
    A_trials: np.ndarray | None = None  # (R, k, k)


def poisson_lds_inputs(T: int = 200) -> np.ndarray:
    """The inputs of Park, Bohner & Macke's Fig. 2: u_t = 0.4 [cos phi_t, sin phi_t] w_t with
    phi_t = 4 pi t / 100 (t = 1..T) and a window w_t = 1 on bins T/4 + 1 .. 3T/4 (bins 51-150
    of 200), else 0. Returns (T, 2)."""
    T = check_positive_int(T, "T")
    t = np.arange(1, T + 1)
    phi = 4 * np.pi * t / 100
    w = ((t > T // 4) & (t <= 3 * T // 4)).astype(float)
    return 0.4 * np.stack([np.cos(phi), np.sin(phi)], 1) * w[:, None]


def simulate_poisson_lds(
    n_trials: int = 100,
    T: int = 200,
    p: int = 40,
    k: int = 4,
    *,
    a: float = 0.9,
    bump_sd: float | None = None,
    bump_height: float = 12.0,
    ar_drift: tuple[float, float] | None = None,
    slow_loading: float = 0.1 / 3,
    seed: int = 0,
) -> PoissonLDSData:
    """The simulation of Park, Bohner & Macke (NIPS 2015), Fig. 2: a Poisson LDS over trials whose
    latent offset h_r drifts slowly from trial to trial.

    At the defaults (100 trials of 200 bins, p = 40, k = 4) these are the values of the authors'
    ``generate_data.m``: A = diag(0, 0, a, a) with a = 0.9; B = [[5, 0], [0, 6], [0, 0], [0, 0]];
    x_1 = B u_1 + N(0, I), x_t = A x_{t-1} + B u_t + N(0, I); neurons of group 0 (the first p/2)
    load 0.1 on latent 0 and 0.1/3 on latent 2, group 1 loads 0.1 on latent 1 and 0.1/3 on
    latent 3; d = -2.2 (group 0), -1.2 (group 1). The offsets: g(r) is a Gaussian bump over
    trials r = 1..R, centre R/4, SD ``bump_sd`` (default R/8), peak ``bump_height``; h_0 = h_2
    = g(r) and h_1 = h_3 = -g(R + 1 - r). So the trial-mean log rate of group 0 rises from -2.2
    to -0.6 around trial 25 and that of group 1 falls from -1.2 to -2.8 around trial 76.
    Counts: y ~ Poisson(exp(C (x + h_r) + d)).

    Other k: latent j belongs to group j % 2 and is input-driven (j < 2, rows of B) or slow
    (j >= 2, AR coefficient ``a``, loading 0.1/3); even j carry +g, odd j the reversed -g.
    ``ar_drift=(a_first, a_last)`` lets the AR coefficient of the slow latents change linearly
    across trials (the non-stationary dynamics of the arXiv version, arXiv:1410.3111).
    ``slow_loading`` (default 0.1/3, the paper's) is the loading of the slow latents on their
    group's neurons; a larger value makes the slow dynamics visible in the counts.
    """
    n_trials = check_positive_int(n_trials, "n_trials")
    T = check_positive_int(T, "T")
    p = check_positive_int(p, "p", minimum=2)
    k = check_positive_int(k, "k", minimum=2)
    if k > p:
        raise ValueError(f"latent dimension k={k} must not exceed the population size p={p}")
    check_range(a, "a", -1.0, 1.0, low_open=True, high_open=True)
    check_range(slow_loading, "slow_loading", 0.0, np.inf)
    R = n_trials
    rng = np.random.default_rng(seed)
    groups = (np.arange(p) >= p // 2).astype(int)
    lat = np.arange(k)
    C = np.zeros((p, k))
    for j in lat:
        C[groups == j % 2, j] = 0.1 if j < 2 else slow_loading
    d = np.where(groups == 0, -2.2, -1.2)
    B = np.zeros((k, 2))
    B[0, 0], B[1, 1] = 5.0, 6.0
    slow = np.where(lat >= 2, 1.0, 0.0)
    if ar_drift is None:
        coef = np.full(R, float(a))
    else:
        for i, v in enumerate(ar_drift):
            check_range(v, f"ar_drift[{i}]", -1.0, 1.0, low_open=True, high_open=True)
        coef = np.linspace(ar_drift[0], ar_drift[1], R)
    A_trials = coef[:, None, None] * np.diag(slow)[None]
    u = poisson_lds_inputs(T)
    sd = R / 8 if bump_sd is None else check_range(bump_sd, "bump_sd", 0.0, np.inf, low_open=True)
    r = np.arange(1, R + 1)
    g = bump_height * np.exp(-((r - R / 4) ** 2) / (2 * sd**2))
    g_rev = g[::-1]
    h = np.where(lat % 2 == 0, g[:, None], -g_rev[:, None])
    Bu = u @ B.T  # (T, k)
    x = np.empty((R, T, k))
    xi = rng.standard_normal((R, T, k))
    x[:, 0] = Bu[0] + xi[:, 0]
    for t in range(1, T):
        x[:, t] = np.einsum("rij,rj->ri", A_trials, x[:, t - 1]) + Bu[t] + xi[:, t]
    z = (x + h[:, None, :]) @ C.T + d
    y = rng.poisson(np.exp(z))
    return PoissonLDSData(
        y=y,
        z=z,
        x=x,
        h=h,
        A=A_trials[0].copy(),
        C=C,
        d=d,
        groups=groups,
        B=B,
        u=u,
        Q=np.eye(k),
        V0=np.eye(k),
        x0=np.zeros(k),
        A_trials=A_trials,
    )
