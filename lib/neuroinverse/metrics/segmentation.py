"""Segmentation metrics for connectomics: Rand error, VOI split/merge, adapted Rand, CREMI score.

Every metric compares a ground truth ``gt`` with a segmentation ``seg`` of the same shape,
both integer label arrays, over the voxels whose **ground-truth label is not 0** (label 0 is
membrane / background / unknown, the convention of the CREMI challenge and of
``skimage.metrics``). Label 0 in ``seg`` is an ordinary segment id. All metrics are computed
from one contingency table :math:`n_{ab}` (voxels with GT id ``a`` and segment id ``b``),
:math:`n_{a\\cdot}=\\sum_b n_{ab}`, :math:`n_{\\cdot b}=\\sum_a n_{ab}` and
:math:`N_L=\\sum_{ab} n_{ab}`.

* **Rand error** (Turaga et al., NIPS 2009, the book's ``malis`` chapter, C2), over unordered
  pairs of distinct labelled voxels, with no singleton pruning::

      RE = [Σ_a C(n_a·,2) + Σ_b C(n_·b,2) − 2 Σ_ab C(n_ab,2)] / C(N_L,2).

  The first difference (``Σ_a C(n_a·,2) − Σ_ab C(n_ab,2)``) counts *split* pairs (same GT
  object, different segments), the second the *merge* pairs.
* **Variation of information** (Meilă 2007), in bits: ``VOI_split = H(S|G)``,
  ``VOI_merge = H(G|S)``, ``VOI = VOI_split + VOI_merge``.
* **Adapted Rand error** (SNEMI3D / CREMI; Arganda-Carreras et al., Front. Neuroanat. 2015):
  ``ARAND = 1 − F`` with precision ``P = Σ n_ab² / Σ_b n_·b²`` and recall
  ``R = Σ n_ab² / Σ_a n_a·²``. The CREMI convention, the default here, counts self-pairs
  (squares of counts); ``self_pairs=False`` returns scikit-image's
  :func:`skimage.metrics.adapted_rand_error`, which subtracts them.
* **CREMI score** ``sqrt(VOI · ARAND)`` (Funke et al., TPAMI 2019, the book's ``mala`` chapter).
  The official CREMI evaluation also ignores GT voxels near xy object boundaries
  (``border_threshold``); these functions do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from skimage.metrics import adapted_rand_error as _skimage_adapted_rand_error

from .._checks import check_labels, check_positive_int

__all__ = [
    "Contingency",
    "SegmentationScores",
    "contingency",
    "rand_pair_counts",
    "rand_error",
    "boundary_ignore_mask",
    "mask_boundaries",
    "variation_of_information",
    "adapted_rand_error",
    "cremi_score",
    "segmentation_scores",
    "score_sweep",
]


@dataclass(frozen=True)
class Contingency:
    """Sparse contingency table of ``gt`` against ``seg`` over voxels with GT ≠ ``ignore_label``.

    Attributes:
        n_ab: ``(K,)`` int64 non-zero joint counts (one per occurring (GT id, segment id) pair).
        a_index: ``(K,)`` row of each entry of ``n_ab`` (index into ``n_a``).
        b_index: ``(K,)`` column of each entry of ``n_ab`` (index into ``n_b``).
        n_a: ``(A,)`` int64 voxel counts per GT id.
        n_b: ``(B,)`` int64 voxel counts per segment id.
        total: number of labelled voxels ``N_L``.
    """

    n_ab: np.ndarray
    a_index: np.ndarray
    b_index: np.ndarray
    n_a: np.ndarray
    n_b: np.ndarray
    total: int


@dataclass(frozen=True)
class SegmentationScores:
    """All scores of one segmentation (see the module docstring for the definitions)."""

    rand_error: float
    voi_split: float
    voi_merge: float
    arand: float
    cremi: float

    @property
    def voi(self) -> float:
        """``VOI_split + VOI_merge`` (bits)."""
        return self.voi_split + self.voi_merge


def _ids(x, name: str) -> np.ndarray:
    """Segment ids of a metric's input: integer or bool arrays of any shape, any sign."""
    return check_labels(x, name, non_negative=False, integer_floats=False)


def contingency(gt, seg, *, ignore_label: int | None = 0) -> Contingency:
    """Build the contingency table of ``gt`` (rows) against ``seg`` (columns).

    Args:
        gt: ground-truth labels, any shape, integer.
        seg: segmentation labels, same shape as ``gt``, integer.
        ignore_label: GT id whose voxels are left out (``None`` keeps every voxel).

    Returns:
        The :class:`Contingency` table.

    Raises:
        ValueError: if the shapes differ, the arrays are not integer, or no voxel is labelled.
    """
    g = _ids(gt, "gt")
    s = _ids(seg, "seg")
    if g.shape != s.shape:
        raise ValueError(f"gt and seg must have the same shape; got gt {g.shape} and seg {s.shape}")
    g, s = g.ravel(), s.ravel()
    if ignore_label is not None:
        keep = g != ignore_label
        g, s = g[keep], s[keep]
    if g.size == 0:
        raise ValueError("gt has no labelled voxel (every voxel carries the ignored label)")
    gi, n_a = _dense_ids(g)
    si, n_b = _dense_ids(s)
    n_ab, a_index, b_index = _pair_counts(gi, si, n_a.size, n_b.size)
    return Contingency(
        n_ab=n_ab, a_index=a_index, b_index=b_index, n_a=n_a, n_b=n_b, total=int(g.size)
    )


def _dense_ids(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the values of ``x`` among its distinct values (``np.unique``'s inverse) and the
    count of each distinct value, both int64; a lookup table instead of a sort for small
    non-negative ids."""
    if x.size and x.min() >= 0 and int(x.max()) <= 4 * x.size + 1024:
        x = x.astype(np.int64, copy=False)
        counts = np.bincount(x)
        present = counts > 0
        rank = np.cumsum(present) - 1
        return rank[x], counts[present].astype(np.int64)
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    return inv.ravel().astype(np.int64), counts.astype(np.int64)


@numba.njit(cache=True)
def _pair_counts(gi, si, n_a, n_b):
    """Non-zero joint counts of (``gi``, ``si``) in increasing (a, b) order (the order of
    ``np.unique`` on ``a·n_b + b``): a counting sort by ``a``, then per row the distinct
    ``b`` values, sorted."""
    n = gi.shape[0]
    row_start = np.zeros(n_a + 1, np.int64)
    for i in range(n):
        row_start[gi[i] + 1] += 1
    for a in range(n_a):
        row_start[a + 1] += row_start[a]
    fill = row_start[:-1].copy()
    by_row = np.empty(n, np.int64)
    for i in range(n):
        by_row[fill[gi[i]]] = si[i]
        fill[gi[i]] += 1
    count_b = np.zeros(n_b, np.int64)
    distinct = np.empty(n, np.int64)
    out_n = np.empty(n, np.int64)
    out_a = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    k = 0
    for a in range(n_a):
        m = 0
        for j in range(row_start[a], row_start[a + 1]):
            b = by_row[j]
            if count_b[b] == 0:
                distinct[m] = b
                m += 1
            count_b[b] += 1
        cols = np.sort(distinct[:m])
        for t in range(m):
            b = cols[t]
            out_n[k] = count_b[b]
            out_a[k] = a
            out_b[k] = b
            k += 1
            count_b[b] = 0
    return out_n[:k].copy(), out_a[:k].copy(), out_b[:k].copy()


def _pairs(n: np.ndarray) -> int:
    n = n.astype(np.int64)
    return int((n * (n - 1) // 2).sum())


def rand_pair_counts(gt, seg, *, ignore_label: int | None = 0) -> dict[str, int]:
    """Exact integer pair counts behind the Rand error.

    Returns:
        ``{"pairs": C(N_L,2), "split": same-GT pairs put in different segments,
        "merge": different-GT pairs put in one segment}``; ``RE = (split + merge) / pairs``.
    """
    t = contingency(gt, seg, ignore_label=ignore_label)
    same_both = _pairs(t.n_ab)
    return {
        "pairs": t.total * (t.total - 1) // 2,
        "split": _pairs(t.n_a) - same_both,
        "merge": _pairs(t.n_b) - same_both,
    }


def _rand_from_table(t: Contingency) -> float:
    pairs = t.total * (t.total - 1) // 2
    if pairs == 0:
        raise ValueError("the Rand error needs at least 2 labelled voxels")
    wrong = _pairs(t.n_a) + _pairs(t.n_b) - 2 * _pairs(t.n_ab)
    return wrong / pairs


def rand_error(gt, seg, *, ignore_label: int | None = 0) -> float:
    """Rand error ``1 − RI`` over pairs of distinct labelled voxels (``malis`` chapter, C2).

    Computed from the contingency table with exact integer pair counts and no singleton
    pruning. Voxels with ``gt == ignore_label`` take part in no pair.

    Args:
        gt: ground-truth labels, integer array.
        seg: segmentation, integer array of the same shape.
        ignore_label: GT id left out (default 0).

    Returns:
        The fraction of labelled pairs on which ``seg`` and ``gt`` disagree, in [0, 1].
    """
    return _rand_from_table(contingency(gt, seg, ignore_label=ignore_label))


def _voi_from_table(t: Contingency) -> tuple[float, float]:
    # H(S|G) = −Σ p_ab log2(n_ab / n_a): exactly 0 when every GT object lies in one segment.
    p_ab = t.n_ab / float(t.total)
    split = float(-(p_ab * np.log2(t.n_ab / t.n_a[t.a_index])).sum())
    merge = float(-(p_ab * np.log2(t.n_ab / t.n_b[t.b_index])).sum())
    return max(split, 0.0) + 0.0, max(merge, 0.0) + 0.0  # + 0.0 turns −0.0 into 0.0


def variation_of_information(gt, seg, *, ignore_label: int | None = 0) -> tuple[float, float]:
    """VOI split and merge parts in bits, over voxels with ``gt != ignore_label``.

    Returns:
        ``(voi_split, voi_merge)`` = ``(H(seg | gt), H(gt | seg))``, the order of
        ``skimage.metrics.variation_of_information(gt, seg, ignore_labels=[0])``.
    """
    return _voi_from_table(contingency(gt, seg, ignore_label=ignore_label))


def _arand_from_table(t: Contingency) -> float:
    sum_ab = float((t.n_ab.astype(np.float64) ** 2).sum())
    sum_a = float((t.n_a.astype(np.float64) ** 2).sum())
    sum_b = float((t.n_b.astype(np.float64) ** 2).sum())
    return 1.0 - 2.0 * sum_ab / (sum_a + sum_b)


def adapted_rand_error(gt, seg, *, self_pairs: bool = True) -> float:
    """Adapted Rand error ``1 − F`` of Rand precision and recall, GT label 0 ignored.

    Args:
        gt: ground-truth labels (label 0 ignored, the CREMI/SNEMI convention).
        seg: segmentation of the same shape (label 0 is an ordinary segment).
        self_pairs: ``True`` (CREMI/SNEMI definition and the ``mala`` chapter): sums of squared
            counts, self-pairs included. ``False``: scikit-image's
            :func:`skimage.metrics.adapted_rand_error`, which excludes self-pairs; it differs
            slightly on small volumes.

    Returns:
        The adapted Rand error in [0, 1].
    """
    t = contingency(gt, seg, ignore_label=0)
    if self_pairs:
        return _arand_from_table(t)
    if t.total < 2:
        raise ValueError(
            "the adapted Rand error without self-pairs needs at least 2 labelled voxels"
        )
    return float(
        _skimage_adapted_rand_error(_ids(gt, "gt"), _ids(seg, "seg"), ignore_labels=(0,))[0]
    )


def cremi_score(gt, seg) -> float:
    """CREMI score ``sqrt(VOI · ARAND)`` (VOI in bits, CREMI ARAND with self-pairs), GT 0
    ignored."""
    t = contingency(gt, seg, ignore_label=0)
    split, merge = _voi_from_table(t)
    return float(np.sqrt((split + merge) * max(_arand_from_table(t), 0.0)))


def segmentation_scores(gt, seg) -> SegmentationScores:
    """Rand error, VOI split/merge, adapted Rand error and CREMI score from one contingency table.

    GT label 0 is ignored throughout. See the module docstring for the definitions.
    """
    t = contingency(gt, seg, ignore_label=0)
    split, merge = _voi_from_table(t)
    arand = _arand_from_table(t)
    re = _rand_from_table(t) if t.total > 1 else 0.0
    return SegmentationScores(
        rand_error=re,
        voi_split=split,
        voi_merge=merge,
        arand=arand,
        cremi=float(np.sqrt((split + merge) * max(arand, 0.0))),
    )


def score_sweep(gt, segmentations) -> dict[str, np.ndarray]:
    """:func:`segmentation_scores` of each segmentation of a threshold sweep, as arrays.

    Args:
        gt: ground-truth labels (label 0 ignored).
        segmentations: iterable of segmentations of ``gt``'s shape (e.g. one per threshold).

    Returns:
        ``{"rand_error", "voi_split", "voi_merge", "voi", "arand", "cremi"}`` -> ``(T,)`` arrays.
    """
    rows = [segmentation_scores(gt, s) for s in segmentations]
    if not rows:
        raise ValueError("segmentations must hold at least one segmentation")
    keys = ("rand_error", "voi_split", "voi_merge", "voi", "arand", "cremi")
    return {k: np.array([getattr(r, k) for r in rows]) for k in keys}


def boundary_ignore_mask(gt, *, distance: int = 1, only_xy: bool = True) -> np.ndarray:
    """Voxels within ``distance`` voxels of a ground-truth boundary (CREMI's border mask).

    A voxel is masked iff some voxel at Euclidean distance ``≤ distance`` (in the xy plane
    of each section for ``only_xy``, the last two axes) carries a different label. The CREMI
    challenge scores VOI, ARAND and the CREMI score with such voxels ignored, so that a
    one-voxel shift of a boundary costs nothing.

    Args:
        gt: ``(H, W)`` or ``(Z, Y, X)`` integer labels.
        distance: tolerance in voxels (1 masks one voxel on each side of every interface).
        only_xy: look for differing labels in the last two axes only (anisotropic data).

    Returns:
        bool array of ``gt``'s shape, True where the voxel is ignored.
    """
    g = _ids(gt, "gt")
    if g.ndim not in (2, 3):
        raise ValueError(f"gt must be 2-D or 3-D; got shape {g.shape}")
    d = check_positive_int(distance, "distance", minimum=0)
    axes = list(range(g.ndim - 2, g.ndim)) if only_xy else list(range(g.ndim))
    mask = np.zeros(g.shape, dtype=bool)
    rng = range(-d, d + 1)
    for o in np.ndindex(*(len(rng),) * len(axes)):
        off = [k - d for k in o]
        if not any(off) or sum(x * x for x in off) > d * d:
            continue
        src, dst = [slice(None)] * g.ndim, [slice(None)] * g.ndim
        for ax, k in zip(axes, off, strict=True):
            if k > 0:
                src[ax], dst[ax] = slice(k, None), slice(None, -k)
            elif k < 0:
                src[ax], dst[ax] = slice(None, k), slice(-k, None)
        mask[tuple(dst)] |= g[tuple(dst)] != g[tuple(src)]
    return mask


def mask_boundaries(gt, *, distance: int = 1, only_xy: bool = True) -> np.ndarray:
    """``gt`` with the voxels of :func:`boundary_ignore_mask` set to 0 (the ignored label)."""
    g = _ids(gt, "gt")
    return np.where(boundary_ignore_mask(g, distance=distance, only_xy=only_xy), 0, g)
