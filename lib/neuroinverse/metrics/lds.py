"""Scores of fitted linear dynamical systems: subspace angles, matched eigenvalues, covariance
correlation.

Latent models are defined only up to an invertible transform of the latent space, so these
compare what is invariant: the subspace spanned by the loading matrix, the eigenvalues of
the dynamics and predicted covariances.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import subspace_angles
from scipy.optimize import linear_sum_assignment

from .._checks import to_numpy

__all__ = ["subspace_error", "eigenvalue_error", "match_eigenvalues", "pearson_r"]


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
