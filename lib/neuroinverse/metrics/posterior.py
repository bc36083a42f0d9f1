"""Posterior quality metrics: KL divergence, highest-density-region mass, and C2ST.

* :class:`GridDensity`: a reference density tabulated on a regular grid (e.g. the two-moons
  posterior); its log density at any point, its highest-density regions, and the exact
  KL divergence to another grid density.
* :func:`kl_from_samples`: KL(p ‖ q) = E_p[log p − log q], estimated from samples of p with
  both log densities (a grid reference and a flow's own ``log_prob``), with its standard error.
* :func:`hpd_mass`: the fraction of a posterior's samples inside the reference's 95 %
  highest-density region (0.95 for a perfect estimate; a visibly blobby posterior scores low).
* :func:`c2st`: the classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017) as used by the
  SBI benchmark sbibm (Lueckmann et al., AISTATS 2021): a classifier is trained to tell
  samples of the reference posterior from samples of the estimate; its cross-validated
  accuracy is 0.5 when the two distributions are the same and 1.0 when they do not overlap.
  A C2ST can be blind at small sample sizes: :func:`c2st_calibrated` reports it beside its
  floor (the reference against an independent draw of itself) and a positive control (the
  reference with small Gaussian jitter), and says when it cannot see that control.
"""

from __future__ import annotations

import math
import warnings
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive, check_positive_int, check_range
from ..runtime import background

__all__ = [
    "GridDensity",
    "kl_from_samples",
    "hpd_mass",
    "c2st",
    "c2st_async",
    "c2st_calibrated",
    "c2st_calibrated_async",
    "C2STCalibration",
]


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


def c2st(
    p_samples, q_samples, *, folds: int = 5, seed: int = 0, max_iter: int = 10000, n_jobs: int = 1
) -> float:
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
        raise ValueError(
            "p_samples and q_samples must have the same dimension; "
            f"got {p.shape[1]} and {q.shape[1]}"
        )
    check_positive_int(n_jobs, "n_jobs")
    check_positive_int(folds, "folds", minimum=2)
    for name, a in (("p_samples", p), ("q_samples", q)):
        if a.shape[0] < max(2 * folds, 10):
            raise ValueError(
                f"{name} needs at least {max(2 * folds, 10)} samples for {folds}-fold C2ST; "
                f"got {a.shape[0]}"
            )
    mean, std = p.mean(0), p.std(0)
    std = np.where(std > 0, std, 1.0)
    X = (np.concatenate([p, q]) - mean) / std
    y = np.concatenate([np.zeros(len(p)), np.ones(len(q))])
    d = X.shape[1]
    clf = MLPClassifier(
        hidden_layer_sizes=(10 * d, 10 * d),
        activation="relu",
        solver="adam",
        max_iter=max_iter,
        random_state=seed,
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # One BLAS thread: the same floating-point results on every machine, and no contention
    # with torch when a chapter runs on two cores.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(clf, X, y, cv=cv, scoring="accuracy", n_jobs=n_jobs)
    return float(np.mean(scores))


def c2st_async(
    p_samples, q_samples, *, folds: int = 5, seed: int = 0, max_iter: int = 10000, workers: int = 1
) -> Future:
    """Start :func:`c2st` in a background process; returns a ``concurrent.futures.Future``.

    The test runs in :func:`neuroinverse.runtime.background`'s pool of ``workers``
    processes, so that a single-threaded caller, e.g. a chapter training torch models on one
    core, keeps working while the classifiers train on another core. ``future.result()`` is
    exactly ``c2st(p_samples, q_samples, folds=folds, seed=seed, max_iter=max_iter)``: the folds
    are fitted one after the other in the worker. The
    samples are checked here, so bad input raises at once rather than in ``result()``.
    """
    p = _as_samples(p_samples, "p_samples")
    q = _as_samples(q_samples, "q_samples")
    check_positive_int(workers, "workers")
    return background(
        c2st, p, q, folds=folds, seed=seed, max_iter=max_iter, n_jobs=1, workers=workers
    )


# ----------------------------------------------------------------------------- grids, KL, HPD
@dataclass(frozen=True)
class GridDensity:
    """A density tabulated on a regular grid of cells, normalised to integrate to one.

    Args:
        axes: one 1-D array of equally spaced cell centres per dimension.
        density: array of shape ``(len(axes[0]), len(axes[1]), …)``; non-negative, any
            normalisation (it is renormalised so that ``density.sum() · cell volume == 1``).
    """

    axes: tuple
    density: np.ndarray

    def __post_init__(self) -> None:
        axes = tuple(np.asarray(a, dtype=np.float64) for a in self.axes)
        dens = np.asarray(self.density, dtype=np.float64)
        if dens.ndim != len(axes) or dens.shape != tuple(len(a) for a in axes):
            raise ValueError(
                f"density of shape {dens.shape} does not match axes of lengths "
                f"{tuple(len(a) for a in axes)}"
            )
        for a in axes:
            if (
                a.ndim != 1
                or len(a) < 2
                or not np.allclose(np.diff(a), a[1] - a[0])
                or not a[1] > a[0]
            ):
                raise ValueError(
                    "each axis must hold at least two increasing, equally spaced cell centres"
                )
        if not np.isfinite(dens).all() or (dens < 0).any() or not dens.sum() > 0:
            raise ValueError("density must be finite, non-negative and not all zero")
        vol = float(np.prod([a[1] - a[0] for a in axes]))
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "density", dens / (dens.sum() * vol))

    @property
    def cell_volume(self) -> float:
        return float(np.prod([a[1] - a[0] for a in self.axes]))

    def cell_index(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Cell indices ``(n, d)`` of ``points`` ``(n, d)`` and a mask of points inside the grid."""
        x = _as_samples(points, "points")
        if x.shape[1] != len(self.axes):
            raise ValueError(f"points must have {len(self.axes)} columns; got {x.shape[1]}")
        idx = np.empty(x.shape, dtype=np.int64)
        inside = np.ones(len(x), dtype=bool)
        for k, a in enumerate(self.axes):
            h = a[1] - a[0]
            i = np.floor((x[:, k] - (a[0] - h / 2)) / h).astype(np.int64)
            inside &= (i >= 0) & (i < len(a))
            idx[:, k] = np.clip(i, 0, len(a) - 1)
        return idx, inside

    def log_prob(self, points) -> np.ndarray:
        """Log density at ``points`` ``(n, d)``: that of their cell; ``-inf`` outside the grid."""
        idx, inside = self.cell_index(points)
        with np.errstate(divide="ignore"):
            out = np.log(self.density[tuple(idx.T)])
        return np.where(inside, out, -np.inf)

    def hpd_level(self, mass: float = 0.95) -> float:
        """The density level ``t`` whose region ``{density ≥ t}`` holds at least ``mass``."""
        check_range(mass, "mass", 0.0, 1.0, low_open=True, high_open=True)
        d = np.sort(self.density.ravel())[::-1]
        cum = np.cumsum(d) * self.cell_volume
        return float(d[min(int(np.searchsorted(cum, mass)), d.size - 1)])

    def kl_to(self, other: "GridDensity") -> float:
        """Exact KL(self ‖ other) = Σ_cells p log(p / q) · cell volume on the same grid."""
        if len(self.axes) != len(other.axes) or any(
            a.shape != b.shape or not np.allclose(a, b)
            for a, b in zip(self.axes, other.axes, strict=True)
        ):
            raise ValueError("both densities must live on the same grid")
        p, q = self.density, other.density
        on = p > 0
        if (q[on] == 0).any():
            return math.inf
        return float(np.sum(p[on] * (np.log(p[on]) - np.log(q[on]))) * self.cell_volume)


def kl_from_samples(log_p, log_q) -> tuple[float, float]:
    """KL(p ‖ q) ≈ mean(log p − log q) over samples of p, and its standard error.

    Args:
        log_p: ``(n,)`` log densities of the reference at its own samples.
        log_q: ``(n,)`` log densities of the estimate at the same samples.

    Returns:
        ``(kl, standard error)``; ``inf`` if q is zero where p has samples.
    """
    lp = np.asarray(
        log_p.detach().cpu() if isinstance(log_p, torch.Tensor) else log_p, dtype=np.float64
    )
    lq = np.asarray(
        log_q.detach().cpu() if isinstance(log_q, torch.Tensor) else log_q, dtype=np.float64
    )
    if lp.ndim != 1 or lp.shape != lq.shape or lp.size < 2:
        raise ValueError(
            f"log_p and log_q must be 1-D of the same length >= 2; got {lp.shape} and {lq.shape}"
        )
    if np.isnan(lp).any() or np.isnan(lq).any() or not np.isfinite(lp).all():
        raise ValueError("log_p must be finite at p's own samples, and neither may contain NaN")
    if np.isneginf(lq).any():
        return math.inf, math.inf
    d = lp - lq
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))


def hpd_mass(samples, reference: GridDensity, *, mass: float = 0.95) -> float:
    """Fraction of ``samples`` ``(n, d)`` inside the reference's ``mass`` highest-density region."""
    level = reference.hpd_level(mass)
    idx, inside = reference.cell_index(samples)
    return float(np.mean(inside & (reference.density[tuple(idx.T)] >= level)))


# ----------------------------------------------------------------------------- calibrated C2ST
@dataclass(frozen=True)
class C2STCalibration:
    """A C2ST accuracy beside its floor and positive control at the same sample size."""

    value: float
    floor: float
    positive: float
    jitter: float
    n: int
    folds: int

    @property
    def blind(self) -> bool:
        """True when the positive control does not score at least 0.05 above the floor."""
        return self.positive - self.floor < 0.05

    def __str__(self) -> str:
        note = (
            "; BLIND at this size: it cannot tell the jittered reference from the reference"
            if self.blind
            else ""
        )
        return (
            f"C2ST {self.value:.3f} (floor {self.floor:.3f}: reference vs an independent reference "
            f"draw; positive control {self.positive:.3f}: reference + N(0, {self.jitter}²) jitter; "
            f"{self.n} vs {self.n}, {self.folds} folds){note}"
        )


def c2st_calibrated(
    reference,
    reference_2,
    samples,
    *,
    jitter: float = 0.05,
    folds: int = 5,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> C2STCalibration:
    """C2ST of ``samples`` against ``reference``, with its floor and a positive control.

    Args:
        reference: ``(n, d)`` reference samples.
        reference_2: ``(n, d)`` an independent draw of the same reference (the floor).
        samples: ``(n, d)`` samples of the estimate.
        jitter: standard deviation of the Gaussian noise added to ``reference_2`` for the
            positive control (a deliberately wrong posterior of a known, small error).
        folds, seed: as for :func:`c2st`; the three tests share them.
        generator: draws the jitter.
    """
    return c2st_calibrated_async(
        reference, reference_2, samples, jitter=jitter, folds=folds, seed=seed, generator=generator
    ).result()


class _PendingCalibration:
    def __init__(self, floor_job, positive_job, value_jobs, single: bool, **meta):
        self._floor, self._positive, self._values, self._single, self._meta = (
            floor_job,
            positive_job,
            value_jobs,
            single,
            meta,
        )

    def result(self):
        floor, positive = self._floor.result(), self._positive.result()
        out = {
            k: C2STCalibration(value=j.result(), floor=floor, positive=positive, **self._meta)
            for k, j in self._values.items()
        }
        return out[None] if self._single else out


def c2st_calibrated_async(
    reference,
    reference_2,
    samples,
    *,
    jitter: float = 0.05,
    folds: int = 5,
    seed: int = 0,
    generator: torch.Generator | None = None,
):
    """:func:`c2st_calibrated` with its tests started in the background; ``.result()`` waits.

    ``samples`` may also be a mapping of names to sample sets: the floor and the positive
    control are then computed once and shared, and ``.result()`` returns a dict of
    :class:`C2STCalibration` by name. Bad input raises at once.
    """
    many = isinstance(samples, dict)
    sets = samples if many else {None: samples}
    ref, ref2 = _as_samples(reference, "reference"), _as_samples(reference_2, "reference_2")
    checked = {k: _as_samples(v, f"samples[{k!r}]" if many else "samples") for k, v in sets.items()}
    if any(len(x) != len(ref) or x.shape[1] != ref.shape[1] for x in (ref2, *checked.values())):
        raise ValueError(
            f"reference, reference_2 and samples must have the same shape; got {ref.shape}, "
            f"{ref2.shape}, {[x.shape for x in checked.values()]}"
        )
    check_positive(jitter, "jitter")
    noise = torch.randn(ref2.shape, generator=generator, dtype=torch.float64).numpy() * jitter
    values = {k: c2st_async(ref, x, folds=folds, seed=seed) for k, x in checked.items()}
    floor = c2st_async(ref, ref2, folds=folds, seed=seed)
    positive = c2st_async(ref, ref2 + noise, folds=folds, seed=seed)
    return _PendingCalibration(
        floor, positive, values, not many, jitter=jitter, n=len(ref), folds=folds
    )
