"""Scores of connectivity estimates: correlation with the true coupling and detection AUC.

Only off-diagonal entries (connections between different cells) are scored.
"""

from __future__ import annotations

import numpy as np

from .._checks import to_numpy

__all__ = ["off_diagonal", "connectivity_correlation", "connection_auc"]


def off_diagonal(w) -> np.ndarray:
    """The off-diagonal entries of a square matrix ``(N, N)``, row by row, ``(N (N − 1),)``."""
    x = to_numpy(w, "w").astype(float)
    if x.ndim != 2 or x.shape[0] != x.shape[1] or x.shape[0] < 2:
        raise ValueError(f"w must be a square matrix of at least 2 x 2; got {x.shape}")
    return x[~np.eye(x.shape[0], dtype=bool)]


def _pair(w_hat, w_true) -> tuple[np.ndarray, np.ndarray]:
    a, b = off_diagonal(w_hat), off_diagonal(w_true)
    if a.shape != b.shape:
        raise ValueError(
            f"w_hat and w_true must have the same shape; got {len(a)} and {len(b)} "
            "off-diagonal entries"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("w_hat and w_true must be finite")
    return a, b


def connectivity_correlation(w_hat, w_true) -> float:
    """Pearson correlation of the off-diagonal entries of ``w_hat`` and ``w_true``."""
    a, b = _pair(w_hat, w_true)
    if a.std() == 0 or b.std() == 0:
        raise ValueError(
            "an estimate or truth with constant off-diagonal entries has no correlation"
        )
    return float(np.corrcoef(a, b)[0, 1])


def connection_auc(w_hat, w_true) -> float:
    """ROC AUC of |ŵ_ij| for telling the non-zero off-diagonal entries of ``w_true`` from the
    zeros."""
    from sklearn.metrics import roc_auc_score

    a, b = _pair(w_hat, w_true)
    present = b != 0
    if present.all() or not present.any():
        raise ValueError("w_true needs both zero and non-zero off-diagonal entries for an AUC")
    return float(roc_auc_score(present, np.abs(a)))
