"""Learning-guided SEM: error targets, fusion, time accounting and the speed-up at equal quality.

Mi et al., "Learning Guided Electron Microscopy with Active Acquisition" (MICCAI 2020,
arXiv:2101.02746). A fast scan at dwell ``t_lo`` covers every pixel; an error predictor marks
where it will mislead the segmentation; a fraction ``ρ`` of the pixels is rescanned at
``t_hi``. This module holds the pieces around the rescan policies
(:mod:`~neuroinverse.inference.rescan_policies`):

* :func:`error_target`: the binarised error the predictor learns, here the disagreement of
  the membrane detector's decisions on the fast and the slow scan, dilated;
* :func:`segment_error_target`: the SmartEM-style alternative, the walls responsible for the
  merges and splits of the fast scan's segmentation against the slow scan's;
* :func:`fuse_rescan`: the fused image (rescanned pixels replaced, or the dwell-weighted mean,
  the Poisson maximum-likelihood estimate);
* :func:`average_dwell`: time per pixel of a smart scan, ``τ = t_lo + ρ (t_hi + t_jump)``;
* :func:`speedup_at_equal_quality`: the uniform dwell ``t*`` whose quality the smart scan
  matches (the uniform curve interpolated linearly in ``log t``) and the speed-up ``t*/τ``;
  :func:`slow_equivalent_speedup`: the speed-up over the slow scan itself;
* :func:`segmentation_vi` and :func:`pixel_auroc`: the scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from .._checks import check_positive, check_positive_int, check_range, to_numpy
from ..metrics import adapted_rand_error, variation_of_information
from ..simulators import point_scan

__all__ = [
    "error_target",
    "segment_error_target",
    "fuse_rescan",
    "average_dwell",
    "SpeedUp",
    "equal_quality_dwell",
    "speedup_at_equal_quality",
    "slow_equivalent_speedup",
    "segmentation_vi",
    "segmentation_arand",
    "pixel_auroc",
    "components_hit",
    "dwell_scans",
]


def _map(x, name: str, ndim: tuple[int, ...] = (2,)) -> np.ndarray:
    a = np.asarray(to_numpy(x, name))
    if a.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dims; got {a.shape}")
    return a


def error_target(prob_fast, prob_slow, *, threshold: float = 0.5, dilate: int = 1) -> np.ndarray:
    """``e = 1[(D(x_fast) > thr) XOR (D(x_slow) > thr)]``, dilated by ``dilate`` px (bool).

    Accepts one map (H, W) or a batch (B, H, W); the dilation (a 3×3 cross, ``dilate`` times)
    acts within each image.
    """
    a = _map(prob_fast, "prob_fast", (2, 3))
    b = _map(prob_slow, "prob_slow", (2, 3))
    if a.shape != b.shape:
        raise ValueError(f"prob_fast and prob_slow differ in shape: {a.shape} vs {b.shape}")
    threshold = check_range(threshold, "threshold", 0.0, 1.0)
    dilate = check_positive_int(dilate, "dilate", minimum=0)
    e = (a > threshold) ^ (b > threshold)
    if dilate:
        cross = ndimage.generate_binary_structure(2, 1)
        if e.ndim == 3:
            cross = cross[None]
        e = ndimage.binary_dilation(e, structure=cross, iterations=dilate)
    return e


def _main_partner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each id of ``a`` (dense 0..max), the id of ``b`` it overlaps most."""
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a.ravel() * nb + b.ravel(), minlength=na * nb).reshape(na, nb)
    return table.argmax(1)


def segment_error_target(seg_fast, seg_slow, *, dilate: int = 1) -> np.ndarray:
    """The walls behind the fast segmentation's merges and splits, dilated (bool, (H, W)).

    SmartEM's idea (Meirovitch et al., bioRxiv 2023): mark the places responsible for the
    variation of information between the fast and the slow segmentation, not every pixel
    whose decision flips. With ``b*(a)`` the fast segment that overlaps slow segment ``a``
    most, and ``a*(b)`` the converse, a 4-neighbour pixel pair is marked when

    * it crosses a slow wall between two slow segments with the same ``b*`` (a *merge*: the
      fast scan missed that wall), or
    * it crosses a fast wall between two fast segments with the same ``a*`` (a *split*: the
      fast scan drew a wall that the slow scan does not have).

    A wall that is only shifted by a pixel marks nothing, unlike the pixel-wise XOR.
    """
    f = np.asarray(_map(seg_fast, "seg_fast"))
    s = np.asarray(_map(seg_slow, "seg_slow"))
    if f.shape != s.shape:
        raise ValueError(f"seg_fast and seg_slow differ in shape: {f.shape} vs {s.shape}")
    dilate = check_positive_int(dilate, "dilate", minimum=0)
    _, fi = np.unique(f, return_inverse=True)
    _, si = np.unique(s, return_inverse=True)
    fi, si = fi.reshape(f.shape), si.reshape(s.shape)
    b_star, a_star = _main_partner(si, fi), _main_partner(fi, si)
    e = np.zeros(f.shape, bool)
    for axis in (0, 1):
        lo = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        hi = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        merge = (si[lo] != si[hi]) & (b_star[si[lo]] == b_star[si[hi]])
        split = (fi[lo] != fi[hi]) & (a_star[fi[lo]] == a_star[fi[hi]])
        both = merge | split
        e[lo] |= both
        e[hi] |= both
    if dilate:
        e = ndimage.binary_dilation(e, ndimage.generate_binary_structure(2, 1), iterations=dilate)
    return e


def fuse_rescan(
    x_fast, x_slow, mask, *, mode: str = "replace", t_lo: float = 1.0, t_hi: float = 1.0
) -> np.ndarray:
    """The fused image: ``x_fast`` with the rescanned pixels ``mask`` taken from ``x_slow``.

    ``mode="replace"`` copies ``x_slow[mask]`` (SmartEM's fusion); ``mode="weighted"`` takes the
    dwell-weighted mean ``(t_lo x_fast + t_hi x_slow)/(t_lo + t_hi)`` there, the Poisson MLE
    of the intensity from both counts.
    """
    xf = np.asarray(_map(x_fast, "x_fast"), dtype=np.float64)
    xs = np.asarray(_map(x_slow, "x_slow"), dtype=np.float64)
    m = np.asarray(_map(mask, "mask"), dtype=bool)
    if not (xf.shape == xs.shape == m.shape):
        raise ValueError(
            f"x_fast, x_slow and mask must share a shape; got {xf.shape}, {xs.shape}, {m.shape}"
        )
    t_lo = check_positive(t_lo, "t_lo")
    t_hi = check_positive(t_hi, "t_hi")
    out = xf.copy()
    if mode == "replace":
        out[m] = xs[m]
    elif mode == "weighted":
        out[m] = (t_lo * xf[m] + t_hi * xs[m]) / (t_lo + t_hi)
    else:
        raise ValueError(f"mode must be 'replace' or 'weighted'; got {mode!r}")
    return out


def average_dwell(t_lo: float, t_hi: float, rho: float, *, t_jump: float = 0.0) -> float:
    """Average time per pixel of a fast scan plus a rescan of a fraction ``ρ``.

    ``τ = t_lo + ρ (t_hi + t_jump)`` (ns/px when the dwells are in ns): the fast pass costs
    ``t_lo`` on every pixel, which an equal-time comparison must count.
    """
    t_lo = check_positive(t_lo, "t_lo")
    t_hi = check_positive(t_hi, "t_hi")
    rho = check_range(rho, "rho", 0.0, 1.0, low_open=True)
    t_jump = check_positive(t_jump, "t_jump", allow_zero=True)
    return t_lo + rho * (t_hi + t_jump)


@dataclass(frozen=True)
class SpeedUp:
    """Equal-quality comparison with the uniform curve.

    Attributes:
        t_star: uniform dwell with the same score (ns/px).
        time: the smart scan's average dwell τ (ns/px).
        speedup: ``t_star / time``.
        censored: ``"above"`` when the smart score beats every uniform dwell (``t_star`` is
            the largest dwell, a lower bound), ``"below"`` when it is worse than the smallest
            (``t_star`` is the smallest dwell, an upper bound), else ``""``.
    """

    t_star: float
    time: float
    speedup: float
    censored: str = ""


def _curve(dwells, scores) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(dwells, dtype=np.float64)
    v = np.asarray(scores, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape or t.size < 2:
        raise ValueError(
            f"dwells and scores must be 1-D of the same length >= 2; got {t.shape}, {v.shape}"
        )
    if (t <= 0).any() or not np.isfinite(t).all():
        raise ValueError("dwells must be positive and finite")
    if (np.diff(t) <= 0).any():
        raise ValueError("dwells must be strictly increasing")
    if not np.isfinite(v).all():
        raise ValueError("scores contain NaN or infinite values")
    return t, v


def equal_quality_dwell(dwells, scores, target: float) -> tuple[float, str]:
    """Smallest dwell ``t*`` at which the uniform curve reaches ``score ≤ target``.

    The curve is piecewise linear in ``log t`` between the measured dwells (lower scores are
    better, e.g. VI). Returns ``(t*, censored)`` with ``censored`` as in :class:`SpeedUp`.
    """
    t, v = _curve(dwells, scores)
    target = float(target)
    if v[0] <= target:
        return float(t[0]), "below" if v[0] < target else ""
    for i in range(1, t.size):
        if v[i] <= target:
            a = (v[i - 1] - target) / (v[i - 1] - v[i])
            return float(np.exp(np.log(t[i - 1]) + a * (np.log(t[i]) - np.log(t[i - 1])))), ""
    return float(t[-1]), "above"


def speedup_at_equal_quality(dwells, scores, score_smart: float, time_smart: float) -> SpeedUp:
    """``t*/τ``: how much longer a uniform scan of the same quality takes than the smart one."""
    time_smart = check_positive(time_smart, "time_smart")
    t_star, cens = equal_quality_dwell(dwells, scores, score_smart)
    return SpeedUp(t_star=t_star, time=time_smart, speedup=t_star / time_smart, censored=cens)


def slow_equivalent_speedup(
    rhos, scores_smart, score_slow: float, *, t_lo: float, t_hi: float, tolerance: float = 1.1
) -> tuple[float, float]:
    """``t_hi / (t_lo + ρ_min t_hi)`` with ``ρ_min`` the smallest ``ρ`` whose score is
    ``≤ tolerance × score_slow``. Returns ``(speed-up, ρ_min)``; ``(nan, nan)`` if no ``ρ`` does.
    """
    r = np.asarray(rhos, dtype=np.float64)
    s = np.asarray(scores_smart, dtype=np.float64)
    if r.ndim != 1 or r.shape != s.shape:
        raise ValueError(
            f"rhos and scores_smart must be 1-D of one length; got {r.shape}, {s.shape}"
        )
    for x in r:
        check_range(x, "rhos", 0.0, 1.0, low_open=True)
    tolerance = check_positive(tolerance, "tolerance")
    ok = s <= tolerance * float(score_slow)
    if not ok.any():
        return float("nan"), float("nan")
    rho_min = float(r[ok].min())
    return t_hi / average_dwell(t_lo, t_hi, rho_min), rho_min


def segmentation_vi(labels_true, labels_pred) -> float:
    """Variation of information ``H(S|G) + H(G|S)`` in bits over all pixels (no label ignored)."""
    split, merge = variation_of_information(labels_true, labels_pred, ignore_label=None)
    return float(split + merge)


def segmentation_arand(labels_true, labels_pred) -> float:
    """Adapted Rand error (CREMI convention) of the predicted labels against the truth.

    The truth's label 0, if any, is ignored (:func:`neuroinverse.metrics.adapted_rand_error`);
    pass labels starting at 1 to score every pixel.
    """
    return adapted_rand_error(labels_true, labels_pred)


def pixel_auroc(scores, targets) -> float:
    """Pixel-wise area under the ROC curve of ``scores`` against binary ``targets``
    (:func:`sklearn.metrics.roc_auc_score`); any shapes, flattened together."""
    s = np.asarray(to_numpy(scores, "scores"), dtype=np.float64).ravel()
    y = np.asarray(to_numpy(targets, "targets")).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and targets differ in size: {s.size} vs {y.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("targets must be binary (0/1 or bool)")
    if y.all() or not y.any():
        raise ValueError("targets must contain both classes")
    return float(roc_auc_score(y.astype(int), s))


def components_hit(errors, mask) -> float:
    """Fraction of the 4-connected components of ``errors`` (H, W) holding a pixel of ``mask``."""
    e = np.asarray(_map(errors, "errors"), dtype=bool)
    m = np.asarray(_map(mask, "mask"), dtype=bool)
    if e.shape != m.shape:
        raise ValueError(f"errors and mask differ in shape: {e.shape} vs {m.shape}")
    lab, n = ndimage.label(e)
    if n == 0:
        return float("nan")
    return float(np.unique(lab[m & e]).size / n)


def dwell_scans(
    images, dwell_ns: float, *, photons_per_ns: float, blur_px: float = 0.8, seed: int = 0
) -> np.ndarray:
    """Uniform scans of (N, H, W) clean images at one dwell time (ns), float32 (N, H, W).

    Each pixel records ``n ~ Poisson(η t I)`` electrons, ``Î = n/(η t)``
    (:func:`neuroinverse.simulators.point_scan`, probe blur ``blur_px``, no read noise);
    image ``i`` draws from the seed sequence ``(seed, i)``.
    """
    dwell_ns = check_positive(dwell_ns, "dwell_ns")
    eta = check_positive(photons_per_ns, "photons_per_ns")
    x = np.asarray(images)
    if x.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W); got {x.shape}")
    return np.stack(
        [
            point_scan(
                im,
                dwell_us=dwell_ns / 1000.0,
                photons_per_us=eta * 1000.0,
                blur_px=blur_px,
                detector_sigma=0.0,
                seed=[seed, i],
            )
            for i, im in enumerate(x)
        ]
    ).astype(np.float32)
