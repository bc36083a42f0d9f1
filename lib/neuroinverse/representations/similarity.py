"""Comparing two representations of the same stimuli: RSA, SVCCA, linear CKA and unit matching.

Each compares ``x`` ``(stimuli, units)`` with ``y`` ``(stimuli, units')``; they differ in what
they ignore (Barrett, Morcos & Macke 2019; Kornblith et al., ICML 2019, Table 1).

* :func:`rdm`, :func:`compare_rdms`: representational similarity analysis (Kriegeskorte, Mur &
  Bandettini 2008): dissimilarity matrices ``1 - Pearson`` between stimulus patterns,
  compared by the Spearman correlation of their upper triangles.
* :func:`noise_ceiling`: the Spearman correlation between RDMs of two halves of the trials,
  averaged over random splits, and from it the ceiling a perfect model could reach.
* :func:`rsa_permutation_null`: RSA under random relabelling of the stimuli of one RDM.
* :func:`svcca`: singular-vector CCA (Raghu et al., NeurIPS 2017): SVD to the directions
  that explain 99 % of the variance, then CCA; held-out canonical correlations on request.
* :func:`linear_cka`: linear centred kernel alignment (Kornblith et al. 2019, Eq. 5).
* :func:`unit_match`: each unit's best absolute Pearson correlation with any unit of the
  other representation (the unit-by-unit comparison that a rotation defeats).
* :func:`random_invertible_map`: a random well-conditioned invertible matrix, to test invariances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata, spearmanr

from .._checks import check_positive_int, check_range
from .dimension import as_points

__all__ = [
    "rdm",
    "compare_rdms",
    "NoiseCeiling",
    "noise_ceiling",
    "rsa_permutation_null",
    "SVCCAResult",
    "svcca",
    "linear_cka",
    "unit_match",
    "random_invertible_map",
]


def _pair(x, y, names=("x", "y"), minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a, b = as_points(x, names[0], minimum=minimum), as_points(y, names[1], minimum=minimum)
    if len(a) != len(b):
        raise ValueError(
            f"{names[0]} and {names[1]} must hold the same stimuli (rows); "
            f"got {len(a)} and {len(b)}"
        )
    return a, b


def rdm(patterns) -> np.ndarray:
    """Representational dissimilarity matrix ``1 - Pearson(r_a, r_b)`` between stimulus patterns.

    Args:
        patterns: ``(stimuli, features)``; every pattern must vary across features.

    Returns:
        float64 ``(stimuli, stimuli)``, symmetric, zero diagonal, values in [0, 2].
    """
    p = as_points(patterns, "patterns", minimum=2)
    c = p - p.mean(1, keepdims=True)
    norm = np.linalg.norm(c, axis=1)
    if (norm == 0).any():
        raise ValueError(
            f"patterns holds {int((norm == 0).sum())} stimuli whose pattern is constant "
            "across features (correlation undefined)"
        )
    c /= norm[:, None]
    d = 1.0 - np.clip(c @ c.T, -1.0, 1.0)
    np.fill_diagonal(d, 0.0)
    return d


def _upper(d, name: str) -> np.ndarray:
    m = as_points(d, name, minimum=3)
    if m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a square (stimuli, stimuli) matrix; got {m.shape}")
    return m[np.triu_indices(len(m), k=1)]


def compare_rdms(rdm_a, rdm_b) -> float:
    """Spearman correlation of the upper triangles of two RDMs of the same stimuli (RSA)."""
    a, b = _upper(rdm_a, "rdm_a"), _upper(rdm_b, "rdm_b")
    if a.shape != b.shape:
        raise ValueError(
            f"rdm_a and rdm_b must cover the same stimuli; got {len(a)} and {len(b)} pairs"
        )
    return float(spearmanr(a, b).statistic)


@dataclass(frozen=True)
class NoiseCeiling:
    """How well any model could match an RDM measured with trial noise.

    Attributes:
        split_half: mean Spearman correlation between the RDMs of two halves of the trials.
        reliability: ``2 r / (1 + r)`` of ``r = split_half`` (the Spearman-Brown step from half
            the trials to all of them; 0 when ``r <= 0``): the expected correlation between
            the all-trial RDM and an independent repeat of it.
        ceiling: ``sqrt(reliability)``: the expected correlation of a noise-free, perfect model
            RDM with the all-trial RDM (Spearman's correction for attenuation).
    """

    split_half: float
    reliability: float
    ceiling: float


def noise_ceiling(trials, *, n_splits: int = 10, seed: int = 0) -> NoiseCeiling:
    """Split-half reliability of an RDM, and the ceiling it puts on any model's RSA.

    Each split draws a random half of the trials (the other half is its complement), builds
    the RDM of each half's trial mean and compares them by Spearman; ``split_half`` is the
    mean over splits. A split-half correlation is the reliability of *half* the data: used
    directly as the ceiling of an RSA computed on all trials it is too low, the more so the
    fewer the trials, so :class:`NoiseCeiling` also gives the Spearman-Brown step to all
    trials and the ceiling of a perfect model.

    Args:
        trials: ``(trials, stimuli, features)`` responses, at least 2 trials (an even number
            gives equal halves).
        n_splits: random splits to average.
        seed: seed of NumPy's generator.
    """
    t = np.asarray(trials, dtype=np.float64)
    if t.ndim != 3:
        raise ValueError(f"trials must have shape (trials, stimuli, features); got {t.shape}")
    check_positive_int(t.shape[0], "the number of trials", minimum=2)
    rng = np.random.default_rng(check_positive_int(seed, "seed", minimum=0))
    half = t.shape[0] // 2
    out = []
    for _ in range(check_positive_int(n_splits, "n_splits")):
        perm = rng.permutation(t.shape[0])
        out.append(compare_rdms(rdm(t[perm[:half]].mean(0)), rdm(t[perm[half:]].mean(0))))
    r = float(np.mean(out))
    reliability = 2 * r / (1 + r) if r > 0 else 0.0
    return NoiseCeiling(split_half=r, reliability=reliability, ceiling=float(np.sqrt(reliability)))


def rsa_permutation_null(rdm_a, rdm_b, *, n_permutations: int = 1000, seed: int = 0) -> np.ndarray:
    """RSA values with the stimuli of ``rdm_b`` relabelled at random: the null distribution.

    Relabelling permutes rows and columns of ``rdm_b`` together; the upper triangle of the
    result holds the same values in another order, so the ranks are computed once and each
    permutation costs one correlation of rank vectors (Spearman = Pearson on ranks).
    """
    a = _upper(rdm_a, "rdm_a")
    b = as_points(rdm_b, "rdm_b", minimum=3)
    n = b.shape[0]
    if b.shape != (n, n) or len(a) != n * (n - 1) // 2:
        raise ValueError(f"rdm_b must be square with the stimuli of rdm_a; got {b.shape}")
    iu = np.triu_indices(n, k=1)
    ranks = np.zeros((n, n))
    ranks[iu] = rankdata(b[iu])
    ranks += ranks.T
    ra = rankdata(a)
    ra = (ra - ra.mean()) / np.linalg.norm(ra - ra.mean())
    rng = np.random.default_rng(check_positive_int(seed, "seed", minimum=0))
    null = np.empty(check_positive_int(n_permutations, "n_permutations"))
    for i in range(len(null)):
        p = rng.permutation(n)
        rb = ranks[p[iu[0]], p[iu[1]]]
        rb = rb - rb.mean()
        null[i] = ra @ rb / np.linalg.norm(rb)
    return null


@dataclass(frozen=True)
class SVCCAResult:
    """Canonical correlations of two representations after the SVD step.

    Attributes:
        correlations: ``(m,)`` canonical correlations, strongest direction first (held-out
            ones when test data were given).
        dims_x, dims_y: directions kept by the SVD step.
    """

    correlations: np.ndarray
    dims_x: int
    dims_y: int

    @property
    def mean(self) -> float:
        """The SVCCA similarity: the mean canonical correlation."""
        return float(self.correlations.mean())


def _svd_reduce(
    x: np.ndarray, variance: float, max_dims: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the ``(units, k)`` top right singular vectors explaining ``variance``."""
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    s2 = s**2
    if s2.sum() == 0:
        raise ValueError("a representation has no variance over the stimuli")
    k = int(np.searchsorted(np.cumsum(s2) / s2.sum(), variance - 1e-12) + 1)
    k = min(k, int((s > s[0] * 1e-10).sum()), max_dims or k)
    return mean, vt[:k].T


def svcca(
    x, y, x_test=None, y_test=None, *, variance: float = 0.99, max_dims: int | None = 30
) -> SVCCAResult:
    """SVCCA (Raghu et al. 2017, Sec. 2): SVD, then CCA, optionally scored on held-out stimuli.

    1. Centre each representation on the fitting stimuli (per unit; no z-scoring) and keep
       its top singular directions that explain ``variance`` of the variance, at most
       ``max_dims`` (the same rule for both).
    2. CCA by QR: with ``X = Q_x R_x`` and ``Y = Q_y R_y``, the canonical correlations are
       the singular values of ``Q_x^T Q_y`` and the canonical directions ``R_x^{-1} U``,
       ``R_y^{-1} V``.
    3. With ``x_test``, ``y_test``: both are centred with the fitting means, projected on the
       same SVD directions and canonical directions, and the correlation of each pair of
       canonical variables is measured there (so overfitting does not inflate it).

    Args:
        x, y: ``(stimuli, units)`` fitting data of the two systems (same stimuli).
        x_test, y_test: optional held-out ``(stimuli', units)`` data of the same systems.
        variance: fraction of variance kept by the SVD step, in (0, 1].
        max_dims: cap on the kept directions (``None``: no cap).
    """
    x, y = _pair(x, y, minimum=3)
    variance = check_range(variance, "variance", 1e-12, 1.0)
    if max_dims is not None:
        check_positive_int(max_dims, "max_dims")
    (mx, vx), (my, vy) = _svd_reduce(x, variance, max_dims), _svd_reduce(y, variance, max_dims)
    xr, yr = (x - mx) @ vx, (y - my) @ vy
    qx, rx = np.linalg.qr(xr)
    qy, ry = np.linalg.qr(yr)
    u, s, vt = np.linalg.svd(qx.T @ qy, full_matrices=False)
    m = min(vx.shape[1], vy.shape[1])
    if x_test is None and y_test is None:
        return SVCCAResult(np.clip(s[:m], 0.0, 1.0), vx.shape[1], vy.shape[1])
    if x_test is None or y_test is None:
        raise ValueError("give both x_test and y_test, or neither")
    xt, yt = _pair(x_test, y_test, ("x_test", "y_test"), minimum=3)
    if xt.shape[1] != x.shape[1] or yt.shape[1] != y.shape[1]:
        raise ValueError("x_test and y_test must have the units of x and y")
    a = ((xt - mx) @ vx) @ np.linalg.solve(rx, u[:, :m])
    b = ((yt - my) @ vy) @ np.linalg.solve(ry, vt.T[:, :m])
    a -= a.mean(0)
    b -= b.mean(0)
    corr = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return SVCCAResult(corr, vx.shape[1], vy.shape[1])


def linear_cka(x, y) -> float:
    """Linear CKA ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` of centred ``x``, ``y``
    (Kornblith 2019).

    Invariant to rotations and isotropic scaling of either representation, not to general
    invertible linear maps.
    """
    x, y = _pair(x, y, minimum=2)
    x, y = x - x.mean(0), y - y.mean(0)
    if not x.any() or not y.any():
        raise ValueError("x and y must vary over the stimuli")
    if x.shape[1] + y.shape[1] > 2 * len(
        x
    ):  # wide: the stimuli x stimuli Gram matrices are smaller
        kx, ky = x @ x.T, y @ y.T
        return float((kx * ky).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky)))
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def unit_match(x, y) -> np.ndarray:
    """For each unit of ``x``, its largest ``|Pearson r|`` with any unit of ``y`` (over stimuli).

    Units that do not vary over the stimuli (dead units) have no correlation and are left
    out on both sides.

    Returns:
        float ``(varying units of x,)``; its mean is the unit-matching similarity.
    """
    x, y = _pair(x, y, minimum=3)
    x, y = x - x.mean(0), y - y.mean(0)
    nx, ny = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
    if not (nx > 0).any() or not (ny > 0).any():
        raise ValueError("x and y must each hold at least one unit that varies over the stimuli")
    r = (x[:, nx > 0] / nx[nx > 0]).T @ (y[:, ny > 0] / ny[ny > 0])
    return np.abs(r).max(1)


def random_invertible_map(dim: int, *, condition: float = 10.0, seed: int = 0) -> np.ndarray:
    """A random ``(dim, dim)`` matrix ``Q1 diag(s) Q2``: two random rotations, singular values
    log-spaced from 1 to ``1 / condition`` (so its condition number is ``condition``)."""
    dim = check_positive_int(dim, "dim")
    condition = check_range(condition, "condition", 1.0, np.inf)
    rng = np.random.default_rng(check_positive_int(seed, "seed", minimum=0))
    q1, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    q2, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q1 * np.geomspace(1.0, 1.0 / condition, dim)) @ q2
