"""Point clouds of known intrinsic dimension, to check a dimension estimator against the truth.

* :func:`gaussian_subspace`: a ``d``-dimensional standard Gaussian embedded in ``R^D`` by a
  random orthonormal map, optionally with isotropic noise (ID ``d``; a flat, linear cloud).
* :func:`swiss_roll`: scikit-learn's swiss roll (ID 2, curved, in ``R^3``), optionally turned
  into ``R^D`` by a random rotation.
* :func:`sphere`: the unit ``d``-sphere (ID ``d``, curved) in ``R^D``.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_swiss_roll

from .._checks import check_positive, check_positive_int

__all__ = ["gaussian_subspace", "swiss_roll", "sphere", "random_orthonormal"]


def random_orthonormal(ambient: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``(ambient, d)`` matrix with orthonormal columns (QR of a Gaussian matrix)."""
    check_positive_int(ambient, "ambient")
    check_positive_int(d, "d")
    if d > ambient:
        raise ValueError(f"d must be <= ambient; got d={d}, ambient={ambient}")
    q, r = np.linalg.qr(rng.standard_normal((ambient, d)))
    return q * np.sign(np.diag(r))


def gaussian_subspace(
    n: int, d: int, ambient: int = 50, *, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """``n`` points ``Z Q^T + noise``: ``Z ~ N(0, I_d)``, ``Q`` random orthonormal ``(ambient, d)``.

    Args:
        n: number of points.
        d: intrinsic dimension.
        ambient: dimension of the embedding space.
        noise: standard deviation of isotropic Gaussian noise in all ``ambient`` coordinates.
        seed: seed of NumPy's generator.

    Returns:
        float64 ``(n, ambient)``.
    """
    check_positive_int(n, "n")
    check_positive(noise, "noise", allow_zero=True)
    rng = np.random.default_rng(check_positive_int(seed, "seed", minimum=0))
    q = random_orthonormal(ambient, d, rng)
    x = rng.standard_normal((n, d)) @ q.T
    return x + noise * rng.standard_normal(x.shape) if noise else x


def swiss_roll(n: int, *, ambient: int = 3, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """``n`` points of the swiss roll (``sklearn.datasets.make_swiss_roll``), ID 2.

    With ``ambient > 3`` the roll is placed in ``R^ambient`` by a random orthonormal map.
    """
    check_positive_int(n, "n")
    check_positive(noise, "noise", allow_zero=True)
    seed = check_positive_int(seed, "seed", minimum=0)
    x, _ = make_swiss_roll(n, noise=noise, random_state=seed)
    if check_positive_int(ambient, "ambient", minimum=3) > 3:
        x = x @ random_orthonormal(ambient, 3, np.random.default_rng(seed + 1)).T
    return x


def sphere(n: int, d: int, ambient: int = 50, *, seed: int = 0) -> np.ndarray:
    """``n`` points uniform on the unit ``d``-sphere, placed in ``R^ambient`` by a random
    rotation."""
    check_positive_int(n, "n")
    check_positive_int(ambient, "ambient", minimum=d + 1)
    rng = np.random.default_rng(check_positive_int(seed, "seed", minimum=0))
    z = rng.standard_normal((n, d + 1))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return z @ random_orthonormal(ambient, d + 1, rng).T
