"""Intrinsic dimension of a point cloud: TwoNN, its scale check, and the linear (PCA) dimension.

TwoNN (Facco, d'Errico, Rodriguez & Laio, Sci. Rep. 7:12140, 2017), as used layer by layer
by Ansuini, Laio, Macke & Zoccolan (NeurIPS 2019): for each point, the ratio
``mu = r2 / r1`` of its distances to its second and first nearest neighbours follows, on a
locally uniform ``d``-dimensional manifold, the Pareto law ``F(mu) = 1 - mu^(-d)`` (Facco
2017, Eq. 1-2), so ``-log(1 - F(mu)) = d log mu`` is a line through the origin of slope ``d``.

* :func:`nearest_neighbour_distances`: ``r1``, ``r2`` of every point (exact Euclidean, in
  chunks so that 10^5 points fit in memory).
* :func:`two_nn`: the estimate, with the paper's discard of the largest 10 % of ``mu``, the
  removal of ties ``r2 = r1`` and (on request) of duplicates ``r1 = 0``; a maximum-likelihood
  variant.
* :func:`dimension_profile`: TwoNN of every layer of a network, duplicates removed.
* :func:`block_analysis`: the scale check (Ansuini 2019; Facco 2017): the estimate on
  ``b`` disjoint random blocks of the points, mean and spread against the block size.
* :func:`pca_dimension`: the number of principal components that explain a given fraction of
  the variance (the linear baseline of Ansuini 2019).
* :func:`participation_ratio`: ``(sum lambda)^2 / sum lambda^2`` of the covariance spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import (
    as_tensor,
    check_choice,
    check_finite,
    check_positive_int,
    check_range,
    check_rows,
    to_numpy,
)

__all__ = [
    "TwoNNResult",
    "BlockAnalysis",
    "nearest_neighbour_distances",
    "two_nn",
    "dimension_profile",
    "block_analysis",
    "pca_dimension",
    "participation_ratio",
    "as_points",
]

#: Discard fractions must lie in [0, 1): 1 would discard every point.


def as_points(x, name: str = "x", *, minimum: int = 1) -> np.ndarray:
    """``x`` as a finite float64 ``(n, D)`` array with at least ``minimum`` rows."""
    t = check_rows(
        as_tensor(np.ascontiguousarray(to_numpy(x, name)), name, dtype=torch.float64), name
    )
    check_finite(t, name)
    check_positive_int(t.shape[0], f"the number of rows of {name}", minimum=minimum)
    return t.numpy()


def nearest_neighbour_distances(x, *, chunk_bytes: int = 2**27) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances of every point to its first and second nearest neighbours.

    Candidates are found from squared distances computed by blocks of rows (at most
    ``chunk_bytes`` of float64 per block); the two distances are then recomputed directly
    from the coordinates, so that equal distances come out exactly equal (ties) and a
    duplicate point gives exactly 0.

    Args:
        x: ``(n, D)`` points, ``n >= 3``.
        chunk_bytes: memory bound of one block of the distance matrix (the peak is about
            three blocks: the block, its partition indices and their distances).

    Returns:
        ``r1``, ``r2``: float64 arrays ``(n,)`` with ``r1 <= r2``.
    """
    x = as_points(x, "x", minimum=3)
    check_positive_int(chunk_bytes, "chunk_bytes")
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    rows = max(1, chunk_bytes // (8 * n))
    r = np.empty((n, 2))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        d2 = x[start:stop] @ x.T  # squared distances, built in place: one block in memory
        d2 *= -2.0
        d2 += sq[start:stop, None]
        d2 += sq[None, :]
        d2[np.arange(stop - start), np.arange(start, stop)] = np.inf  # not its own neighbour
        two = np.argpartition(d2, 1, axis=1)[:, :2]
        # the exact distances of the two candidates, from the coordinates
        r[start:stop] = np.sqrt(((x[start:stop, None, :] - x[two]) ** 2).sum(-1))
    r.sort(axis=1)
    return r[:, 0], r[:, 1]


@dataclass(frozen=True)
class TwoNNResult:
    """The TwoNN estimate and what it was fitted on.

    Attributes:
        dimension: the estimated intrinsic dimension.
        log_mu: ``log mu`` of the points used, ascending ``(N,)`` (before the discard).
        y: ``-log(1 - i/N)`` for the kept points ``(n_fit,)``.
        n_fit: points in the fit (the ``floor((1 - discard_fraction) N)`` smallest ``mu``).
        n_points: ``N``, points left after removing duplicates and ties.
        n_duplicates: points removed because ``r1 = 0``.
        n_ties: points removed because ``r2 = r1 > 0``.
        method: ``"linear"`` or ``"mle"``.
    """

    dimension: float
    log_mu: np.ndarray
    y: np.ndarray
    n_fit: int
    n_points: int
    n_duplicates: int
    n_ties: int
    method: str

    @property
    def x(self) -> np.ndarray:
        """``log mu`` of the fitted points (the abscissa of the fit)."""
        return self.log_mu[: self.n_fit]


def two_nn(
    x,
    *,
    discard_fraction: float = 0.1,
    drop_duplicates: bool = False,
    drop_ties: bool = True,
    method: str = "linear",
    distances: tuple[np.ndarray, np.ndarray] | None = None,
) -> TwoNNResult:
    """TwoNN intrinsic dimension (Facco et al. 2017; Ansuini et al. 2019).

    1. ``mu_i = r2_i / r1_i`` for every point (:func:`nearest_neighbour_distances`).
    2. Points with ``r1 = 0`` (duplicates) are an error unless ``drop_duplicates``; points
       with ``r2 = r1`` (ties, frequent on integer pixels) are removed when ``drop_ties``
       (the convention of Ansuini's code). ``N`` is the number left.
    3. The ``mu`` are sorted; the ``floor((1 - discard_fraction) N)`` smallest are kept (the
       largest are outliers: Facco 2017 discard 10 %).
    4. ``"linear"``: least squares through the origin of ``y_i = -log(1 - i/N)`` on
       ``x_i = log mu_(i)``, ``d = x.y / x.x`` (the denominator of the empirical CDF is ``N``,
       all points, not the kept ones). ``"mle"``: the maximum-likelihood estimate of the
       Pareto exponent with the discarded ``mu`` treated as censored at the largest kept one,
       ``d = (n - 1) / (sum_{i<=n} log mu_(i) + (N - n) log mu_(n))`` (type-II censoring; with
       nothing discarded it is ``(N - 1) / sum log mu``, the estimator of Facco 2017).

    With ``discard_fraction = 0`` the largest ``mu`` is still left out of the linear fit,
    where ``1 - F`` is 0.

    Args:
        x: ``(n, D)`` points, ``n >= 3``, finite.
        discard_fraction: fraction of the largest ``mu`` left out, in [0, 1).
        drop_duplicates: remove points with ``r1 = 0`` instead of raising.
        drop_ties: remove points with ``r2 = r1``.
        method: ``"linear"`` (the papers' fit) or ``"mle"``.
        distances: precomputed ``(r1, r2)`` of ``x`` (to reuse them across settings).

    Returns:
        A :class:`TwoNNResult`.

    Example:
        >>> g = np.random.default_rng(0)
        >>> x = g.standard_normal((2000, 3)) @ np.linalg.qr(g.standard_normal((20, 3)))[0].T
        >>> round(two_nn(x).dimension, 1)
        3.0
    """
    x = as_points(x, "x", minimum=3)
    fraction = check_range(discard_fraction, "discard_fraction", 0.0, 1.0, high_open=True)
    check_choice(method, "method", ("linear", "mle"))
    r1, r2 = nearest_neighbour_distances(x) if distances is None else map(np.asarray, distances)
    if r1.shape != (len(x),) or r2.shape != (len(x),):
        raise ValueError(
            f"distances must be two arrays of shape ({len(x)},); got {r1.shape} and {r2.shape}"
        )
    duplicate = r1 == 0
    if duplicate.any() and not drop_duplicates:
        raise ValueError(
            f"x holds {int(duplicate.sum())} duplicate points (zero nearest-neighbour distance); "
            "remove them or pass drop_duplicates=True"
        )
    tie = (r2 == r1) & ~duplicate if drop_ties else np.zeros_like(duplicate)
    keep = ~duplicate & ~tie
    n_points = int(keep.sum())
    log_mu = np.sort(np.log(r2[keep] / r1[keep]))
    n_fit = int(n_points * (1.0 - fraction))
    if method == "linear":
        n_fit = min(n_fit, n_points - 1)  # 1 - F = 0 at the largest mu
    if n_fit < 2:
        raise ValueError(
            f"x leaves {n_points} points after removing duplicates and ties, too few for "
            f"discard_fraction={fraction}"
        )
    y = -np.log1p(-np.arange(1, n_fit + 1) / n_points)
    xs = log_mu[:n_fit]
    if method == "linear":
        dim = float(xs @ y / (xs @ xs))
    else:
        dim = float((n_fit - 1) / (xs.sum() + (n_points - n_fit) * xs[-1]))
    return TwoNNResult(
        dimension=dim,
        log_mu=log_mu,
        y=y,
        n_fit=n_fit,
        n_points=n_points,
        n_duplicates=int(duplicate.sum()),
        n_ties=int(tie.sum()),
        method=method,
    )


def dimension_profile(layers, *, discard_fraction: float = 0.1) -> np.ndarray:
    """TwoNN dimension of each representation in ``layers`` (a list of ``(N, D_k)`` arrays).

    Duplicate points are removed (a ReLU layer can map several inputs to one point, e.g. all
    zeros), as in Ansuini et al.'s code; ties ``r2 = r1`` too.

    Returns:
        float ``(len(layers),)``.
    """
    return np.array(
        [
            two_nn(x, discard_fraction=discard_fraction, drop_duplicates=True).dimension
            for x in layers
        ],
        dtype=float,
    )


@dataclass(frozen=True)
class BlockAnalysis:
    """TwoNN on ``b`` disjoint random blocks, for each ``b``.

    Attributes:
        blocks: the numbers of blocks ``(B,)``.
        points_per_block: ``floor(N / b)`` ``(B,)``.
        mean, sd: mean and standard deviation of the estimate over the blocks ``(B,)``
            (``sd`` is 0 for one block).
    """

    blocks: np.ndarray
    points_per_block: np.ndarray
    mean: np.ndarray
    sd: np.ndarray


def block_analysis(
    x,
    blocks=(1, 2, 4, 8),
    *,
    seed: int = 0,
    discard_fraction: float = 0.1,
    drop_duplicates: bool = False,
) -> BlockAnalysis:
    """The scale check of Ansuini et al. 2019 and Facco et al. 2017 ("block analysis").

    The points are shuffled once (NumPy generator seeded with ``seed``) and cut into ``b``
    disjoint blocks of ``floor(N / b)`` points; TwoNN runs on each block. A trustworthy
    estimate is flat in the block size.

    Args:
        x: ``(N, D)`` points.
        blocks: numbers of blocks, each ``>= 1`` with at least 3 points per block.
        seed: seed of the shuffle.
        discard_fraction, drop_duplicates: passed to :func:`two_nn`.
    """
    x = as_points(x, "x", minimum=3)
    bs = [check_positive_int(b, "blocks") for b in blocks]
    if not bs:
        raise ValueError("blocks must name at least one number of blocks")
    for b in bs:
        check_positive_int(len(x) // b, f"the points per block for {b} blocks", minimum=3)
    perm = np.random.default_rng(check_positive_int(seed, "seed", minimum=0)).permutation(len(x))
    means, sds, sizes = [], [], []
    for b in bs:
        size = len(x) // b
        ds = [
            two_nn(
                x[perm[i * size : (i + 1) * size]],
                discard_fraction=discard_fraction,
                drop_duplicates=drop_duplicates,
            ).dimension
            for i in range(b)
        ]
        means.append(np.mean(ds))
        sds.append(np.std(ds, ddof=1) if b > 1 else 0.0)
        sizes.append(size)
    return BlockAnalysis(np.array(bs), np.array(sizes), np.array(means), np.array(sds))


def _spectrum(x) -> np.ndarray:
    x = as_points(x, "x", minimum=2)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    return s**2 / (len(x) - 1)


def pca_dimension(x, variance: float = 0.9) -> int:
    """The number of principal components that explain ``variance`` of the total variance.

    The linear dimension of Ansuini et al. 2019 (90 % of the variance of the centred
    representation). A cloud with no variance has dimension 0.

    Args:
        x: ``(N, D)`` points.
        variance: fraction of the variance to explain, in [0, 1].
    """
    frac = check_range(variance, "variance", 0.0, 1.0)
    lam = _spectrum(x)
    total = lam.sum()
    if total == 0:
        return 0
    cum = np.cumsum(lam) / total
    return int(min(np.searchsorted(cum, frac - 1e-12) + 1, len(lam)))


def participation_ratio(x) -> float:
    """``(sum lambda_i)^2 / sum lambda_i^2`` of the covariance eigenvalues of ``x`` (N, D)."""
    lam = _spectrum(x)
    if lam.sum() == 0:
        raise ValueError("x has no variance: the participation ratio is undefined")
    return float(lam.sum() ** 2 / (lam**2).sum())
