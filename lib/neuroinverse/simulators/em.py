"""Synthetic 2-D electron-microscopy "membrane images" with ground-truth segmentations.

The generator of the book's ``malis`` chapter, a stand-in for the serial block-face EM data of
Turaga et al., "Maximin affinity learning of image segmentation", NIPS 2009
(arXiv:0911.5372), which cannot be downloaded. It produces the error mode MALIS addresses:
thin membranes with *gaps* (the image shows no boundary, the ground truth still separates the
cells) and dark *distractors* (mitochondria) that a pure boundary detector wrongly splits on.

Recipe (lengths in pixels):

1. Seeds: ``Poisson(ρ·H·W)`` points, ``ρ = 1/150`` px⁻² (mean cell diameter ≈ 14 px),
   uniform in the canvas, then ``lloyd_steps`` Lloyd relaxations (centroid moves).
2. Cells: every pixel takes the id of its nearest seed
   (``scipy.ndimage.distance_transform_edt(..., return_indices=True)``).
3. Membrane: a pixel whose 4-neighbour has another cell id (both sides of each interface,
   so membranes are 2 px thick, the book's choice of thickness). GT ``labels`` = cell id off
   the membrane, 0 on it.
4. Intensity: cytoplasm ``I_c = 0.75``; membrane ``I_c − c_k (I_c − 0.25)`` with a contrast
   ``c_k ~ U[0.5, 1]`` per interface (cell pair) ``k``.
5. Gaps: each interface gets, with probability ``p_gap = 0.25``, a disk of radius
   ``r ∈ {1.5, 2.5}`` px around a random membrane pixel of that interface, inside which the
   membrane is painted back to ``I_c``. The ground truth is unchanged.
6. Distractors: with probability 0.3 per cell, one dark ellipse (semi-axes ``U[1.5, 3]`` px,
   random orientation, intensity 0.40) at least 2 px from the membrane.
7. Optics and noise: Gaussian blur ``σ_psf = 1`` px, additive Gaussian noise
   ``σ_n = 0.10`` (the ci value; 0.12 in the full profile), then z-scoring.
8. GT affinities with offsets ``(0, −1), (−1, 0)``
   (:func:`neuroinverse.labels.affinities_from_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .._checks import check_positive, check_positive_int, check_range
from ..labels import affinities_from_labels, relabel_connected

__all__ = [
    "EMImages",
    "simulate_em_image",
    "simulate_em_images",
    "em_test_set",
    "em_training_batch",
    "gap_merge_mask",
]

_CYTOPLASM = 0.75
_DARKEST = 0.25


@dataclass(frozen=True)
class EMImages:
    """A stack of simulated EM images.

    Attributes:
        raw: float32 ``(B, H, W)`` z-scored images (arbitrary units).
        labels: int64 ``(B, H, W)`` cell ids, 0 on membranes.
        affinities: float32 ``(B, 2, H, W)`` ground-truth affinities (offsets (0,−1), (−1,0)).
        gaps: bool ``(B, H, W)`` membrane pixels erased by a gap.
        cells: int64 ``(B, H, W)`` Voronoi cell ids before the membrane was cut out.
    """

    raw: np.ndarray
    labels: np.ndarray
    affinities: np.ndarray
    gaps: np.ndarray
    cells: np.ndarray

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def raw_tensor(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """``raw`` as a float32 ``(B, 1, H, W)`` tensor, the network input."""
        return torch.as_tensor(self.raw[:, None], device=device)

    def affinities_tensor(self, device: str | torch.device = "cpu") -> torch.Tensor:
        """``affinities`` as a float32 ``(B, 2, H, W)`` tensor."""
        return torch.as_tensor(self.affinities, device=device)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"seed must be an int, a sequence of ints or a numpy Generator: {err}"
        ) from None


def _voronoi(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-seed ids 1..K (seeds rounded to pixels; duplicates share one id)."""
    h, w = shape
    py = np.clip(np.round(points[:, 0]).astype(int), 0, h - 1)
    px = np.clip(np.round(points[:, 1]).astype(int), 0, w - 1)
    seed_id = np.zeros(shape, dtype=np.int64)
    seed_id[py, px] = np.arange(1, len(points) + 1)
    _, (iy, ix) = ndimage.distance_transform_edt(seed_id == 0, return_indices=True)
    cells = seed_id[iy, ix]
    _, inv = np.unique(cells, return_inverse=True)
    return inv.reshape(shape) + 1


def simulate_em_image(
    shape: tuple[int, int] = (48, 48),
    *,
    seed=0,
    density: float = 1.0 / 150.0,
    lloyd_steps: int = 1,
    contrast_range: tuple[float, float] = (0.5, 1.0),
    p_gap: float = 0.25,
    gap_radii: tuple[float, ...] = (1.5, 2.5),
    p_mito: float = 0.3,
    mito_axes: tuple[float, float] = (1.5, 3.0),
    mito_intensity: float = 0.40,
    psf_sigma: float = 1.0,
    noise_std: float = 0.10,
) -> EMImages:
    """One synthetic membrane image (see the module docstring for the recipe).

    Args:
        shape: ``(H, W)`` in pixels.
        seed: int, sequence of ints or ``numpy.random.Generator``.
        density: seed density ``ρ`` in px⁻².
        lloyd_steps: Lloyd relaxation steps (0 = plain Poisson-Voronoi).
        contrast_range: range of the per-interface membrane contrast ``c_k``.
        p_gap: probability that an interface gets a gap.
        gap_radii: gap radii in px, drawn uniformly from this set.
        p_mito: probability of a distractor per cell.
        mito_axes: range of the ellipse semi-axes in px.
        mito_intensity: distractor intensity (before blur and noise).
        psf_sigma: Gaussian blur in px (0 disables).
        noise_std: additive noise standard deviation (intensity units, before z-scoring).

    Returns:
        :class:`EMImages` with a batch of one.
    """
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W); got {shape!r}") from None
    if h < 8 or w < 8:
        raise ValueError(f"shape must be at least 8x8 pixels; got {shape!r}")
    check_positive(density, "density")
    check_range(p_gap, "p_gap", 0.0, 1.0)
    check_range(p_mito, "p_mito", 0.0, 1.0)
    check_positive(psf_sigma, "psf_sigma", allow_zero=True)
    check_positive(noise_std, "noise_std", allow_zero=True)
    if not (0.0 <= contrast_range[0] <= contrast_range[1] <= 1.0):
        raise ValueError(
            f"contrast_range must satisfy 0 <= low <= high <= 1; got {contrast_range!r}"
        )
    check_positive_int(lloyd_steps, "lloyd_steps", minimum=0)
    if not gap_radii or any(r <= 0 for r in gap_radii):
        raise ValueError(f"gap_radii must be a non-empty set of positive radii; got {gap_radii!r}")
    if not (0 < mito_axes[0] <= mito_axes[1]):
        raise ValueError(f"mito_axes must satisfy 0 < low <= high; got {mito_axes!r}")
    rng = _rng(seed)

    # 1-2. seeds, Lloyd relaxation, Voronoi cells
    n_seeds = max(2, int(rng.poisson(density * h * w)))
    points = rng.uniform((0.0, 0.0), (h - 1.0, w - 1.0), size=(n_seeds, 2))
    cells = _voronoi(points, (h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(int(lloyd_steps)):
        idx = np.arange(1, cells.max() + 1)
        points = np.stack([ndimage.mean(yy, cells, idx), ndimage.mean(xx, cells, idx)], axis=1)
        cells = _voronoi(points, (h, w))
    n_cells = int(cells.max())

    # 3. membrane (both sides of every 4-neighbour interface) and the interface of each pixel
    other = np.zeros((h, w), dtype=np.int64)  # a neighbouring cell id that differs, else 0
    for axis, step in ((1, 1), (1, -1), (0, 1), (0, -1)):
        nb = np.roll(cells, -step, axis=axis)
        border = np.zeros((h, w), dtype=bool)
        if axis == 1:
            border[:, -1 if step == 1 else 0] = True
        else:
            border[-1 if step == 1 else 0, :] = True
        diff = (nb != cells) & ~border & (other == 0)
        other[diff] = nb[diff]
    membrane = other > 0
    labels = np.where(membrane, 0, cells)

    # 4. intensities with per-interface contrast
    key = np.minimum(cells, other) * (n_cells + 1) + np.maximum(cells, other)
    iface_keys, iface_of = np.unique(key[membrane], return_inverse=True)
    contrast = rng.uniform(contrast_range[0], contrast_range[1], size=iface_keys.size)
    image = np.full((h, w), _CYTOPLASM)
    image[membrane] = _CYTOPLASM - contrast[iface_of] * (_CYTOPLASM - _DARKEST)

    # 6. distractors (mitochondria), at least 2 px from the membrane
    dist = ndimage.distance_transform_edt(~membrane)
    for cell in range(1, n_cells + 1):
        if rng.random() >= p_mito:
            continue
        a, b = np.sort(rng.uniform(mito_axes[0], mito_axes[1], size=2))[::-1]
        angle = rng.uniform(0.0, np.pi)
        ok = np.flatnonzero(((cells == cell) & (dist >= a + 2.0)).ravel())
        if ok.size == 0:
            continue
        cy, cx = divmod(int(ok[rng.integers(ok.size)]), w)
        dy, dx = yy - cy, xx - cx
        r1 = dx * np.cos(angle) + dy * np.sin(angle)
        r2 = -dx * np.sin(angle) + dy * np.cos(angle)
        image[(r1 / a) ** 2 + (r2 / b) ** 2 <= 1.0] = mito_intensity

    # 5. gaps: erase the membrane in a disk on a random pixel of the interface
    gaps = np.zeros((h, w), dtype=bool)
    mem_pix = np.flatnonzero(membrane.ravel())
    radii = np.asarray(gap_radii, dtype=float)
    for k in range(iface_keys.size):
        if rng.random() >= p_gap:
            continue
        pix = mem_pix[iface_of == k]
        cy, cx = divmod(int(pix[rng.integers(pix.size)]), w)
        r = radii[rng.integers(radii.size)]
        disk = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & membrane
        gaps |= disk
    image[gaps] = _CYTOPLASM

    # 7. optics, noise, z-scoring
    if psf_sigma > 0:
        image = ndimage.gaussian_filter(image, psf_sigma, mode="reflect")
    image = image + noise_std * rng.standard_normal((h, w))
    image = (image - image.mean()) / max(image.std(), 1e-12)

    return EMImages(
        raw=image.astype(np.float32)[None],
        labels=labels[None],
        affinities=affinities_from_labels(labels)[None],
        gaps=gaps[None],
        cells=cells[None],
    )


def simulate_em_images(
    n_images: int, shape: tuple[int, int] = (48, 48), *, seed=0, **kwargs
) -> EMImages:
    """``n_images`` independent images; image ``i`` uses the seed sequence ``(seed, i)``.

    With ``seed`` a sequence of ints (e.g. ``(base, step)`` for on-the-fly training batches)
    image ``i`` uses ``(*seed, i)``. Other keyword arguments go to :func:`simulate_em_image`.
    """
    check_positive_int(n_images, "n_images")
    base = list(seed) if isinstance(seed, (list, tuple)) else [seed]
    try:
        base = [int(s) for s in base]
    except (TypeError, ValueError):
        raise ValueError(f"seed must be an int or a sequence of ints; got {seed!r}") from None
    if any(s < 0 for s in base):
        raise ValueError(f"seed must be non-negative; got {seed!r}")
    items = [simulate_em_image(shape, seed=[*base, i], **kwargs) for i in range(n_images)]
    return EMImages(
        *(
            np.concatenate([getattr(it, f) for it in items])
            for f in ("raw", "labels", "affinities", "gaps", "cells")
        )
    )


def em_test_set(
    n_images: int = 4, shape: tuple[int, int] = (128, 128), *, seed: int = 12345, **kwargs
) -> EMImages:
    """The fixed, seeded test images (the ``malis`` chapter: 4 images of 128x128 at ci,
    256x256 at full)."""
    return simulate_em_images(n_images, shape, seed=[int(seed), 999], **kwargs)


def em_training_batch(
    batch_size: int, shape: tuple[int, int] = (48, 48), *, seed, device="cpu", **kwargs
):
    """One on-the-fly training batch: fresh images, connected-component relabelled labels.

    Args:
        batch_size: images per batch.
        shape: patch shape ``(H, W)``.
        seed: int or sequence of ints (e.g. ``(run_seed, step)``); the batch is a pure
            function of it.
        device: device of the returned tensors.
        **kwargs: passed to :func:`simulate_em_image`.

    Returns:
        ``(raw, labels, affinities)``: float32 tensor ``(B, 1, H, W)``, int64 numpy
        ``(B, H, W)`` (each connected piece its own id) and float32 tensor ``(B, 2, H, W)``.
    """
    ims = simulate_em_images(batch_size, shape, seed=seed, **kwargs)
    labels = np.stack([relabel_connected(lab) for lab in ims.labels])
    return ims.raw_tensor(device), labels, ims.affinities_tensor(device)


def gap_merge_mask(gaps, labels, segmentation, *, radius: int = 2) -> np.ndarray:
    """Gap pixels across which a segmentation merges two ground-truth cells.

    A gap pixel counts when two different GT labels found within ``radius`` pixels of it have
    pixels there that share a segment id.

    Args:
        gaps: bool ``(H, W)`` gap mask (:attr:`EMImages.gaps`).
        labels: ``(H, W)`` ground truth.
        segmentation: ``(H, W)`` segment ids.
        radius: half-width of the square window.

    Returns:
        bool ``(H, W)``.
    """
    gaps, labels, seg = np.asarray(gaps, bool), np.asarray(labels), np.asarray(segmentation)
    if not (gaps.shape == labels.shape == seg.shape) or gaps.ndim != 2:
        raise ValueError(
            "gaps, labels and segmentation must share one 2-D shape; "
            f"got {gaps.shape}, {labels.shape}, {seg.shape}"
        )
    out = np.zeros_like(gaps)
    h, w = gaps.shape
    for y, x in zip(*np.nonzero(gaps), strict=True):
        win = (
            slice(max(y - radius, 0), min(y + radius + 1, h)),
            slice(max(x - radius, 0), min(x + radius + 1, w)),
        )
        lab, sg = labels[win].ravel(), seg[win].ravel()
        keep = lab > 0
        pairs = np.unique(np.stack([lab[keep], sg[keep]]), axis=1)
        # a segment id that appears with two different GT labels = a merge across the gap
        out[y, x] = pairs.shape[1] > np.unique(pairs[1]).size
    return out
