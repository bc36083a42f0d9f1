"""The handwritten digits that scikit-learn ships, split once, with corrupted labels on request.

``sklearn.datasets.load_digits``: 1797 grey images of 8 x 8 pixels (integer values 0-16),
10 classes, bundled with scikit-learn (nothing is downloaded).

* :func:`load_digits_split`: pixels scaled to [0, 1], a fixed random train/test split.
* :func:`noisy_labels`: a fraction of the labels replaced by uniformly random classes (the
  label-noise sweeps of Ansuini et al. 2019 and of Morcos et al. 2018).
* :func:`shuffled_labels`: all labels permuted among the images (the random-label network of
  Zhang et al. 2017, used by Ansuini et al. 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits

from .._checks import check_labels, check_positive_int, check_probability

__all__ = [
    "DigitsSplit",
    "load_digits_split",
    "noisy_labels",
    "shuffled_labels",
    "N_CLASSES",
    "N_PIXELS",
]

N_CLASSES = 10
N_PIXELS = 64


@dataclass(frozen=True)
class DigitsSplit:
    """Train and test digits: images as float32 ``(n, 64)`` in [0, 1], labels as int64 ``(n,)``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(n_train: int = 1400, *, seed: int = 0) -> DigitsSplit:
    """The 1797 digits, pixels divided by 16, split by a random permutation (NumPy, ``seed``).

    Args:
        n_train: images in the training set; the other ``1797 - n_train`` are the test set.
        seed: seed of the permutation.
    """
    x, y = load_digits(return_X_y=True)
    n_train = check_positive_int(n_train, "n_train")
    check_positive_int(len(x) - n_train, f"the test images left by n_train={n_train}")
    perm = np.random.default_rng(check_positive_int(seed, "seed", minimum=0)).permutation(len(x))
    x = torch.as_tensor(x[perm] / 16.0, dtype=torch.float32)
    y = torch.as_tensor(y[perm], dtype=torch.int64)
    return DigitsSplit(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def noisy_labels(
    labels, fraction: float, *, seed: int = 0, n_classes: int = N_CLASSES
) -> torch.Tensor:
    """``labels`` with a random ``fraction`` of them replaced by uniformly drawn classes.

    Exactly ``round(fraction * n)`` labels, chosen at random, are redrawn uniformly from the
    ``n_classes`` classes (so about one in ``n_classes`` of them keeps its class by chance).

    Args:
        labels: int ``(n,)`` class labels.
        fraction: fraction of the labels redrawn, in [0, 1].
        seed: seed of the ``torch.Generator`` that picks and draws them.
    """
    y = torch.as_tensor(check_labels(labels, "labels", ndims=(1,)))
    fraction = check_probability(fraction, "fraction")
    g = torch.Generator().manual_seed(check_positive_int(seed, "seed", minimum=0))
    k = round(fraction * len(y))
    idx = torch.randperm(len(y), generator=g)[:k]
    out = y.clone()
    out[idx] = torch.randint(check_positive_int(n_classes, "n_classes"), (k,), generator=g)
    return out


def shuffled_labels(labels, *, seed: int = 0) -> torch.Tensor:
    """``labels`` permuted at random among the images (class counts kept, image-label link lost)."""
    y = torch.as_tensor(check_labels(labels, "labels", ndims=(1,)))
    g = torch.Generator().manual_seed(check_positive_int(seed, "seed", minimum=0))
    return y[torch.randperm(len(y), generator=g)]
