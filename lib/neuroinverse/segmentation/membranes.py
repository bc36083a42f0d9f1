"""Cells from a 2-D membrane-probability map: connected interiors, grown over the membranes.

The simplest segmentation of an EM section used by learning-guided SEM (Mi et al., MICCAI
2020): the pixels whose membrane probability is below a threshold are split into
4-connected components (:func:`scipy.ndimage.label`), components smaller than ``min_size``
pixels are dropped, and the survivors are grown over the membrane pixels by
:func:`skimage.segmentation.expand_labels`, so that nearly every pixel carries a cell id.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import expand_labels

from .._checks import check_positive_int, check_range, to_numpy

__all__ = ["segment_membrane_map"]

_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def segment_membrane_map(
    prob, *, threshold: float = 0.5, min_size: int = 10, expand: int = 3
) -> np.ndarray:
    """Label image (H, W) of cells from a membrane probability map (H, W) in [0, 1].

    Args:
        prob: membrane probability, (H, W).
        threshold: interior = ``prob < threshold``.
        min_size: components with fewer pixels are dropped (become background 0 before
            the expansion).
        expand: distance in pixels by which the labels grow into the background
            (``skimage.segmentation.expand_labels``); pixels farther away stay 0.

    Returns:
        int64 labels, 1..n for the cells, 0 where no cell reaches.
    """
    p = np.asarray(to_numpy(prob, "prob"), dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"prob must be a 2-D map (H, W); got shape {p.shape}")
    threshold = check_range(threshold, "threshold", 0.0, 1.0)
    min_size = check_positive_int(min_size, "min_size")
    expand = check_positive_int(expand, "expand", minimum=0)
    lab, n = ndimage.label(p < threshold, structure=_FOUR)
    if n:
        sizes = np.bincount(lab.ravel())
        keep = sizes >= min_size
        keep[0] = False
        new = np.zeros(n + 1, np.int64)
        new[keep] = np.arange(1, int(keep.sum()) + 1)
        lab = new[lab]
    if expand:
        lab = expand_labels(lab, distance=expand)
    return lab.astype(np.int64)
