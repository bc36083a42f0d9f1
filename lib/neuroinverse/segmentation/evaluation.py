"""Scoring affinities: Rand error over thresholds, per-edge error, and the raw-threshold baseline.

The evaluation of Turaga et al., "Maximin affinity learning of image segmentation", NIPS 2009
(Fig. 1 and the EM results): connected components of the thresholded affinity graph scored
by the Rand error at every threshold, beside the per-edge classification error.
"""

from __future__ import annotations

import numpy as np

from ..labels import affinity_graph, connected_components
from ..metrics.segmentation import rand_error

__all__ = ["rand_error_curve", "edge_error", "raw_threshold_rand_errors"]


def rand_error_curve(affinities, labels, thresholds) -> np.ndarray:
    """Rand error of the connected components ``S_θ`` for each image and threshold.

    Args:
        affinities: ``(B, C, *S)`` in [0, 1].
        labels: ``(B, *S)`` ground truth (0 is ignored).
        thresholds: ``(T,)`` values of ``θ``.

    Returns:
        ``(B, T)`` Rand errors (:func:`neuroinverse.metrics.segmentation.rand_error`, no
        singleton pruning).
    """

    aff = np.asarray(affinities)
    lab = np.asarray(labels)
    if aff.ndim != lab.ndim + 1 or aff.shape[0] != lab.shape[0] or aff.shape[2:] != lab.shape[1:]:
        raise ValueError(
            f"labels of shape {lab.shape} do not match affinities of shape {aff.shape}"
        )
    thr = np.asarray(thresholds, dtype=float).ravel()
    return np.array(
        [
            [rand_error(lab[b], connected_components(aff[b], threshold=t)) for t in thr]
            for b in range(aff.shape[0])
        ]
    )


def edge_error(affinities, gt_affinities, *, threshold: float = 0.5) -> float:
    """Fraction of existing edges whose thresholded affinity ``a > θ`` disagrees with the GT.

    Args:
        affinities, gt_affinities: ``(B, C, *S)`` with ``C = len(S)``.
        threshold: ``θ``.

    Returns:
        The per-edge error over all images; edges leaving the array are not counted.
    """
    a = np.asarray(affinities)
    g = np.asarray(gt_affinities)
    if a.shape != g.shape:
        raise ValueError(
            f"gt_affinities of shape {g.shape} do not match affinities of shape {a.shape}"
        )
    if a.ndim not in (4, 5) or a.shape[1] != a.ndim - 2:
        raise ValueError(
            f"affinities must have shape (B, 2, H, W) or (B, 3, Z, Y, X); got {a.shape}"
        )
    _, _, valid = affinity_graph(a.shape[2:])
    valid = valid.reshape(a.shape[1:])
    wrong = ((a > threshold) != (g > 0.5)) & valid
    return float(wrong.sum() / (valid.sum() * a.shape[0]))


def raw_threshold_rand_errors(raw, labels, thresholds, *, sigma: float = 1.0) -> np.ndarray:
    """Classical baseline: connected components (4-connected) of ``gaussian(raw, σ) > t``.

    Args:
        raw: ``(B, H, W)`` images (bright cytoplasm, dark membranes).
        labels: ``(B, H, W)`` ground truth.
        thresholds: ``(T,)`` intensity thresholds ``t``.
        sigma: Gaussian smoothing in pixels.

    Returns:
        ``(B, T)`` Rand errors.
    """
    from scipy import ndimage

    raw = np.asarray(raw, dtype=float)
    lab = np.asarray(labels)
    if raw.shape != lab.shape:
        raise ValueError(f"labels of shape {lab.shape} do not match raw of shape {raw.shape}")
    out = np.zeros((raw.shape[0], len(thresholds)))
    for b in range(raw.shape[0]):
        smooth = ndimage.gaussian_filter(raw[b], sigma)
        for k, t in enumerate(thresholds):
            seg, _ = ndimage.label(smooth > t)
            # background pixels (below threshold) become singletons, not one giant segment
            bg = seg == 0
            seg[bg] = seg.max() + 1 + np.arange(int(bg.sum()))
            out[b, k] = rand_error(lab[b], seg)
    return out
