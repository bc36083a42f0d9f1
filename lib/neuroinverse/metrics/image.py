"""Image-restoration metrics: PSNR and SSIM with the PSSR normalisation, Fourier ring correlation,
and a SQUIRREL-style error map.

* :func:`pssr_normalise` follows ``metric_gen.py`` of the PSSR reference code (Fang et al.,
  Nature Methods 2021): the ground truth is rescaled by its (0.1, 99.9) percentiles to
  [0, 1] (CSBDeep style, no clipping), both images are mean-centred, and the prediction is
  multiplied by the least-squares gain ``cov(p, g) / var(p)``. :func:`pssr_psnr` and
  :func:`pssr_ssim` then call scikit-image's ``peak_signal_noise_ratio`` and
  ``structural_similarity`` (7×7 uniform window, K1 = 0.01, K2 = 0.03) with
  ``data_range=1`` on these arrays; every method is scored the same way.
* :func:`frc` is the Fourier ring correlation of two images (both Hann-windowed after
  subtracting their means), in rings one frequency bin wide; :func:`frc_cutoff` is the first
  frequency where it falls below a threshold (1/7 by default).
* :func:`squirrel_error_map` mirrors NanoJ-SQUIRREL (Culley et al., Nature Methods 2018): the
  restored image is blurred by the Gaussian (σ from a grid) and fitted by scale and offset
  that best match the reference; the map is the absolute difference, RSE its root-mean-square
  and RSP the Pearson correlation of the blurred image with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

__all__ = [
    "pssr_normalise",
    "pssr_psnr",
    "pssr_ssim",
    "frc",
    "frc_cutoff",
    "SquirrelResult",
    "squirrel_error_map",
    "roughness",
    "temporal_flicker",
]


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if p.ndim != 2 or p.shape != g.shape:
        raise ValueError(f"pred and gt must be 2-D arrays of one shape; got {p.shape}, {g.shape}")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError("pred and gt must be finite")
    return p, g


def pssr_normalise(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """``(p', g)``: the ground truth scaled by its (0.1, 99.9) percentiles and centred, and the
    centred prediction times its least-squares gain (see the module docstring)."""
    p, g = _pair(pred, gt)
    lo, hi = np.percentile(g, (0.1, 99.9))
    g = (g - lo) / max(hi - lo, 1e-12)
    g = g - g.mean()
    p = p - p.mean()
    var = float((p * p).mean())
    gain = float((p * g).mean()) / var if var > 0 else 0.0
    return gain * p, g


def pssr_psnr(pred, gt) -> float:
    """PSNR in dB after :func:`pssr_normalise` (``data_range=1``)."""
    p, g = pssr_normalise(pred, gt)
    return float(peak_signal_noise_ratio(g, p, data_range=1.0))


def pssr_ssim(pred, gt) -> float:
    """SSIM after :func:`pssr_normalise` (scikit-image defaults, ``data_range=1``)."""
    p, g = pssr_normalise(pred, gt)
    return float(structural_similarity(g, p, data_range=1.0))


def frc(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of two square images: ``(freqs, curve)``, frequencies in cycles
    per pixel at the ring centres ``k/N`` for ``k = 1 … N/2`` (the DC ring is left out)."""
    x, y = _pair(a, b)
    n = x.shape[0]
    if x.shape[1] != n or n < 8:
        raise ValueError(f"images must be square and at least 8x8; got {x.shape}")
    win = np.outer(np.hanning(n), np.hanning(n))
    fx = np.fft.fftshift(np.fft.fft2((x - x.mean()) * win))
    fy = np.fft.fftshift(np.fft.fft2((y - y.mean()) * win))
    k = np.arange(n) - n // 2
    r = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int).ravel()
    num = np.bincount(r, (fx * np.conj(fy)).real.ravel())
    den = np.sqrt(
        np.bincount(r, (np.abs(fx) ** 2).ravel()) * np.bincount(r, (np.abs(fy) ** 2).ravel())
    )
    rings = np.arange(1, n // 2 + 1)
    curve = num[rings] / np.maximum(den[rings], 1e-300)
    return rings / n, curve


def frc_cutoff(freqs, curve, threshold: float = 1.0 / 7.0) -> float:
    """The first frequency where ``curve`` falls below ``threshold`` (linear interpolation
    between rings); the last frequency if it never does."""
    f, c = np.asarray(freqs, float), np.asarray(curve, float)
    below = np.flatnonzero(c < threshold)
    if below.size == 0:
        return float(f[-1])
    i = int(below[0])
    if i == 0:
        return float(f[0])
    t = (c[i - 1] - threshold) / max(c[i - 1] - c[i], 1e-12)
    return float(f[i - 1] + t * (f[i] - f[i - 1]))


@dataclass(frozen=True)
class SquirrelResult:
    """The SQUIRREL-style comparison: ``error_map`` (H, W), ``rse``, ``rsp``, the fitted blur
    ``sigma`` (px), ``gain`` and ``offset``."""

    error_map: np.ndarray
    rse: float
    rsp: float
    sigma: float
    gain: float
    offset: float


def squirrel_error_map(
    restored, reference, sigmas: Sequence[float] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
) -> SquirrelResult:
    """Fit blur, scale and offset of ``restored`` to ``reference``; see the module docstring."""
    p, g = _pair(restored, reference)
    best = None
    for s in sigmas:
        if s < 0:
            raise ValueError(f"sigmas must be non-negative; got {s!r}")
        q = ndimage.gaussian_filter(p, s, mode="reflect") if s > 0 else p
        design = np.stack([q.ravel(), np.ones(q.size)], axis=1)
        (gain, offset), *_ = np.linalg.lstsq(design, g.ravel(), rcond=None)
        fit = gain * q + offset
        rse = float(np.sqrt(np.mean((g - fit) ** 2)))
        if best is None or rse < best[0]:
            best = (rse, s, gain, offset, q, fit)
    rse, s, gain, offset, q, fit = best
    rsp = float(np.corrcoef(q.ravel(), g.ravel())[0, 1]) if q.std() > 0 else 0.0
    return SquirrelResult(np.abs(g - fit), rse, rsp, float(s), float(gain), float(offset))


def roughness(image) -> float:
    """Mean absolute deviation from the image's own mean: how far a restoration of a blank
    field strays from flat (Fang et al., Nature Methods 2021, the hallucination check)."""
    x = np.asarray(image, dtype=np.float64)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("image must be a non-empty finite array")
    return float(np.abs(x - x.mean()).mean())


def temporal_flicker(pred, truth) -> float:
    """Mean absolute error of the frame-to-frame changes of a movie, ``(T, H, W)``: how much a
    restoration flickers beyond the true motion (the multi-frame PSSR comparison)."""
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if p.ndim != 3 or p.shape != g.shape or p.shape[0] < 2:
        raise ValueError(
            f"pred and truth must be movies (T >= 2, H, W) of one shape; got {p.shape}, {g.shape}"
        )
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError("pred and truth must be finite")
    return float(np.abs(np.diff(p, axis=0) - np.diff(g, axis=0)).mean())
