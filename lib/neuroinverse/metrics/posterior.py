"""Posterior quality metrics: classifier two-sample test (C2ST).

C2ST (Lopez-Paz & Oquab, ICLR 2017) as used by the SBI benchmark sbibm (Lueckmann et al.,
AISTATS 2021) and by the book's SBI chapters: a classifier is trained to tell samples of
the reference posterior from samples of the estimate; its cross-validated accuracy is 0.5
when the two distributions are the same and 1.0 when they do not overlap.
"""

from __future__ import annotations

import warnings
from concurrent.futures import Future

import numpy as np
import torch

from ..runtime import background

__all__ = ["c2st", "c2st_async"]


def _as_samples(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d); got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def c2st(p_samples, q_samples, *, folds: int = 5, seed: int = 0, max_iter: int = 10000, n_jobs: int = 1) -> float:
    """Classifier two-sample test accuracy between two sample sets (sbibm's classifier).

    Both sets are z-scored with the mean and standard deviation of ``p_samples`` (the
    reference); then scikit-learn's ``MLPClassifier(hidden_layer_sizes=(10·d, 10·d),
    activation="relu", solver="adam", max_iter=max_iter)`` (its early stopping on the
    training loss, ``tol=1e-4`` over 10 epochs, as in sbibm) is scored by stratified
    ``folds``-fold cross-validation (shuffled with ``seed``), with one BLAS thread.

    Args:
        p_samples: ``(n_p, d)`` samples, e.g. of the reference posterior.
        q_samples: ``(n_q, d)`` samples, e.g. of the estimated posterior.
        folds: number of cross-validation folds (>= 2).
        seed: seeds the fold split and the classifier's initialisation.
        max_iter: the classifier's epoch cap (sbibm: 10000).
        n_jobs: folds fitted in parallel processes (the result does not depend on it).

    Returns:
        Mean held-out accuracy in [0, 1]; 0.5 means indistinguishable.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    p = _as_samples(p_samples, "p_samples")
    q = _as_samples(q_samples, "q_samples")
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"p_samples and q_samples must have the same dimension; got {p.shape[1]} and {q.shape[1]}")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer; got {n_jobs!r}")
    if not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    for name, a in (("p_samples", p), ("q_samples", q)):
        if a.shape[0] < max(2 * folds, 10):
            raise ValueError(f"{name} needs at least {max(2 * folds, 10)} samples for {folds}-fold C2ST; "
                             f"got {a.shape[0]}")
    mean, std = p.mean(0), p.std(0)
    std = np.where(std > 0, std, 1.0)
    X = (np.concatenate([p, q]) - mean) / std
    y = np.concatenate([np.zeros(len(p)), np.ones(len(q))])
    d = X.shape[1]
    clf = MLPClassifier(hidden_layer_sizes=(10 * d, 10 * d), activation="relu", solver="adam",
                        max_iter=max_iter, random_state=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One BLAS thread: the same floating-point results on every machine, and no contention
    # with torch when a chapter runs on two cores.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(clf, X, y, cv=cv, scoring="accuracy", n_jobs=n_jobs)
    return float(np.mean(scores))


def c2st_async(p_samples, q_samples, *, folds: int = 5, seed: int = 0, max_iter: int = 10000,
               workers: int = 1) -> Future:
    """Start :func:`c2st` in a background process; returns a ``concurrent.futures.Future``.

    The test runs in :func:`neuroinverse.runtime.background`'s pool of ``workers``
    processes, so that a single-threaded caller, e.g. a chapter training torch models on one
    core, keeps working while the classifiers train on another core. ``future.result()`` is exactly ``c2st(p_samples, q_samples, folds=folds, seed=seed,
    max_iter=max_iter)``: the folds are fitted one after the other in the worker. The
    samples are checked here, so bad input raises at once rather than in ``result()``.
    """
    p = _as_samples(p_samples, "p_samples")
    q = _as_samples(q_samples, "q_samples")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer; got {workers!r}")
    return background(c2st, p, q, folds=folds, seed=seed, max_iter=max_iter, n_jobs=1, workers=workers)
