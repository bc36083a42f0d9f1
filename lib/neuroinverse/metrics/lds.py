"""Scores of fitted linear dynamical systems: subspace angles, matched eigenvalues, covariance
correlation.

Latent models are defined only up to an invertible transform of the latent space, so these
compare what is invariant: the subspace spanned by the loading matrix, the eigenvalues of
the dynamics and predicted covariances. For Poisson models with trial-to-trial drift, the
trial-mean log rates of neuron groups and the split of the log-rate variance into its
within-trial and across-trial parts.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import subspace_angles
from scipy.optimize import linear_sum_assignment

from .._checks import to_numpy

__all__ = [
    "subspace_error",
    "eigenvalue_error",
    "match_eigenvalues",
    "pearson_r",
    "trial_mean_log_rates",
    "variance_split",
    "autocovariance_split",
]


def subspace_error(C_true, C_est) -> float:
    """Largest principal angle between span(C_true) and span(C_est), divided by pi/2 (0 = same,
    1 = orthogonal)."""
    a, b = to_numpy(C_true, "C_true"), to_numpy(C_est, "C_est")
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"C_true and C_est must be (p, n) matrices with the same p; got {a.shape} and {b.shape}"
        )
    return float(np.max(subspace_angles(a, b)) / (np.pi / 2))


def match_eigenvalues(lam_true, lam_est) -> tuple[np.ndarray, np.ndarray]:
    """Pair estimated with true eigenvalues minimising the summed |difference| (Hungarian)."""
    a, b = np.asarray(lam_true, complex).ravel(), np.asarray(lam_est, complex).ravel()
    if a.shape != b.shape:
        raise ValueError(
            f"lam_true and lam_est must have the same length; got {a.size} and {b.size}"
        )
    rows, cols = linear_sum_assignment(np.abs(a[:, None] - b[None, :]))
    return a[rows], b[cols]


def eigenvalue_error(lam_true, lam_est) -> float:
    """Mean |lambda_hat - lambda| after optimal matching."""
    a, b = match_eigenvalues(lam_true, lam_est)
    return float(np.mean(np.abs(a - b)))


def pearson_r(pred, target) -> float:
    """Pearson correlation of two arrays (flattened); NaN-free inputs required."""
    x, y = to_numpy(pred, "pred").ravel(), to_numpy(target, "target").ravel()
    if x.shape != y.shape:
        raise ValueError(f"pred and target must have the same size; got {x.size} and {y.size}")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def _log_rates(z, name: str) -> np.ndarray:
    a = np.asarray(to_numpy(z, name), dtype=float)
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (trials, T, p); got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def trial_mean_log_rates(z, groups) -> np.ndarray:
    """Mean log rate of each neuron group in each trial: the mean over the group's neurons and
    the trial's bins of ``z`` (R, T, p). ``groups`` (p,) integer labels 0..G-1; returns (R, G)."""
    z = _log_rates(z, "z")
    g = np.asarray(groups)
    if g.shape != (z.shape[2],):
        raise ValueError(f"groups must have one label per neuron, shape ({z.shape[2]},)")
    return np.stack([z[:, :, g == v].mean((1, 2)) for v in np.unique(g)], 1)


def variance_split(z) -> tuple[float, float, float]:
    """Lag-0 log-rate variance pooled over neurons: ``(total, conditional, ratio)``.

    total = variance over all trials and bins, conditional = within-trial variance (averaged
    over trials), both averaged over neurons; ratio = (total - conditional) / total, the share
    of the variance that is across trials (Park, Bohner & Macke, NIPS 2015, Fig. 2E)."""
    z = _log_rates(z, "z")
    total = float(z.var(axis=(0, 1)).mean())
    cond = float(z.var(axis=1).mean())
    return total, cond, (total - cond) / total if total > 0 else 0.0


def autocovariance_split(z, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Total and conditional (within-trial) auto-covariance of the log rates at lags
    0..max_lag, averaged over neurons: the total centres on the mean over all trials, the
    conditional on each trial's own mean. Returns two (max_lag + 1,) arrays."""
    z = _log_rates(z, "z")
    if not 0 <= max_lag < z.shape[1]:
        raise ValueError(f"max_lag must lie in [0, T-1] = [0, {z.shape[1] - 1}]; got {max_lag}")
    tot = z - z.mean((0, 1))
    cond = z - z.mean(1, keepdims=True)
    T = z.shape[1]

    def acov(a):
        return np.array([(a[:, s:] * a[:, : T - s]).mean() for s in range(max_lag + 1)])

    return acov(tot), acov(cond)
