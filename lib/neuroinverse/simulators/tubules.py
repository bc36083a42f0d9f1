"""Synthetic fluorescence time-lapse of moving tubular objects (mitochondria-like), for multi-frame
restoration.

A stand-in for live Airyscan movies of MitoTracker-labelled mitochondria (Fang et al., Nature
Methods 2021). Each movie has ``n_objects ~ U{6..12}`` tubules: smooth cubic curves through
4-6 control points (a persistent random walk spanning 30-80 px), brightness U(0.5, 1), drawn
as lines (splatted every 0.25 px) and blurred by a Gaussian PSF (σ = 2 px, scaled so that an
isolated tubule peaks at its brightness) over a background of 0.05; clipped to [0, 1].
Motion per frame: a per-object random walk of N(0, 0.6²) px per axis, a rotation
U(−1°, 1°) about the object centre, control-point jitter N(0, 0.3²) px, and a global drift of
0.2 px per frame in a random direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.interpolate import make_interp_spline

from .._checks import check_positive, check_positive_int

__all__ = ["TubuleMovie", "tubule_movie", "tubule_movies"]


@dataclass(frozen=True)
class TubuleMovie:
    """A movie ``frames`` float32 ``(T, H, W)`` in [0, 1] and its object masks ``(T, H, W)``
    (bool: the PSF-free tubule lines dilated to about 2σ)."""

    frames: np.ndarray
    masks: np.ndarray


def _curve(rng, span):
    n = int(rng.integers(4, 7))
    step = span / (n - 1)
    ang = rng.uniform(0, 2 * np.pi)
    pts = [np.zeros(2)]
    for _ in range(n - 1):
        ang += rng.normal(0, 0.5)
        pts.append(pts[-1] + step * np.array([np.sin(ang), np.cos(ang)]))
    pts = np.array(pts)
    return pts - pts.mean(axis=0)


def _render(points_list, brightness, shape, psf_sigma):
    h, w = shape
    acc = np.zeros((h + 2, w + 2))
    for pts, b in zip(points_list, brightness, strict=True):
        t = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        spl = make_interp_spline(t, pts, k=3)
        s = np.arange(0.0, t[-1], 0.25)
        yx = spl(s)
        y, x = yx[:, 0], yx[:, 1]
        ok = (y > -1) & (y < h) & (x > -1) & (x < w)
        y, x = y[ok] + 1, x[ok] + 1  # one-pixel margin
        y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
        fy, fx = y - y0, x - x0
        wgt = 0.25 * b
        for dy, dx, ww in (
            (0, 0, (1 - fy) * (1 - fx)),
            (1, 0, fy * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 1, fy * fx),
        ):
            np.add.at(acc, (y0 + dy, x0 + dx), wgt * ww)
    lines = acc[1:-1, 1:-1]
    img = (
        ndimage.gaussian_filter(lines, psf_sigma, mode="constant") * np.sqrt(2 * np.pi) * psf_sigma
    )
    return img, lines


def tubule_movie(
    n_frames: int = 9,
    shape: tuple[int, int] = (128, 128),
    *,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
    n_objects: tuple[int, int] = (6, 12),
    psf_sigma: float = 2.0,
    background: float = 0.05,
    move_px: float = 0.6,
    rotate_deg: float = 1.0,
    jitter_px: float = 0.3,
    drift_px: float = 0.2,
) -> TubuleMovie:
    """One movie (see the module docstring); lengths in pixels, motion per frame."""
    t_n = check_positive_int(n_frames, "n_frames")
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W); got {shape!r}") from None
    if h < 16 or w < 16:
        raise ValueError(f"shape must be at least 16x16 pixels; got {shape!r}")
    check_positive(psf_sigma, "psf_sigma")
    for v, name in ((move_px, "move_px"), (rotate_deg, "rotate_deg"), (jitter_px, "jitter_px")):
        check_positive(v, name, allow_zero=True)
    check_positive(drift_px, "drift_px", allow_zero=True)
    if not (0.0 <= background < 1.0):
        raise ValueError(f"background must lie in [0, 1); got {background!r}")
    if not (1 <= n_objects[0] <= n_objects[1]):
        raise ValueError(f"n_objects must satisfy 1 <= low <= high; got {n_objects!r}")
    if generator is not None and seed is not None:
        raise ValueError("pass either seed or generator, not both")
    rng = generator if generator is not None else np.random.default_rng(seed)

    k = int(rng.integers(n_objects[0], n_objects[1] + 1))
    shapes = [_curve(rng, rng.uniform(30, 80)) for _ in range(k)]
    centres = rng.uniform((0.1 * h, 0.1 * w), (0.9 * h, 0.9 * w), size=(k, 2))
    angles = np.zeros(k)
    bright = rng.uniform(0.5, 1.0, size=k)
    drift_dir = rng.uniform(0, 2 * np.pi)
    drift = drift_px * np.array([np.sin(drift_dir), np.cos(drift_dir)])
    frames, masks = [], []
    for t in range(t_n):
        if t > 0:
            centres = centres + rng.normal(0, move_px, size=(k, 2)) + drift
            angles = angles + np.deg2rad(rng.uniform(-rotate_deg, rotate_deg, size=k))
            shapes = [p + rng.normal(0, jitter_px, size=p.shape) for p in shapes]
        pts = []
        for p, c, a in zip(shapes, centres, angles, strict=True):
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            pts.append(p @ rot.T + c)
        img, lines = _render(pts, bright, (h, w), psf_sigma)
        frames.append(np.clip(background + img, 0.0, 1.0))
        masks.append(ndimage.gaussian_filter(lines, psf_sigma) > 0.02)
    return TubuleMovie(np.asarray(frames, np.float32), np.asarray(masks))


def tubule_movies(
    n: int, n_frames: int = 9, shape: tuple[int, int] = (128, 128), *, seed: int = 0, **kwargs
) -> np.ndarray:
    """``n`` movies as float32 ``(n, T, H, W)``; movie ``i`` uses the seed sequence
    ``(seed, i)``; other keyword arguments go to :func:`tubule_movie`."""
    check_positive_int(n, "n")
    return np.stack(
        [tubule_movie(n_frames, shape, seed=[int(seed), i], **kwargs).frames for i in range(n)]
    )
