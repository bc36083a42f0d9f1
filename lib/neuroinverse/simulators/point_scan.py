"""A point-scanning acquisition model (SEM, confocal): probe blur, pixel size, dwell, shot noise.

One call covers a fast scan, a slow scan, an undersampled scan and a rescan of chosen pixels:
the ground-truth image ``x`` (intensity in [0, 1] on a fine grid) is blurred by the probe
(Gaussian, ``blur_px`` ground-truth pixels), sampled at the centres of pixels ``factor`` times
larger, and each acquired pixel records ``n ~ Poisson(λ·x)`` photons/electrons with
``λ = photons_per_us · dwell_us``; the returned value ``n/λ + N(0, detector_sigma²)`` is in
the units of ``x`` (so ``var = x/λ + detector_sigma²``: halving the dwell doubles the shot-noise
variance).

Geometry (one convention for every resampling of the book's microscopy chapters): pixel
*centres* are aligned. Coarse pixel ``i`` covers fine pixels ``factor·i … factor·i+factor−1``
and its centre is at fine coordinate ``factor·i + (factor−1)/2``. :func:`downsample` point-
samples there with linear interpolation (odd factor: the centre pixel; even factor: the mean of
the central 2×2), or averages the block (``mode="area"``); :func:`upsample` is the inverse map
of ``torch.nn.functional.interpolate(..., align_corners=False)`` (bilinear, bicubic or
nearest, edges replicated). ``scipy.ndimage.zoom`` maps corner to corner instead and is not
used. Torch versions (``*_torch``) act on ``(..., H, W)`` tensors for on-the-fly training data.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .._checks import check_choice, check_positive, check_positive_int

__all__ = [
    "point_scan",
    "downsample",
    "upsample",
    "gaussian_blur",
    "point_scan_torch",
    "downsample_torch",
    "upsample_torch",
    "gaussian_blur_torch",
]

_ORDERS = {0: "nearest", 1: "bilinear", 3: "bicubic"}


def _check_image(image, name: str = "image", *, unit: bool = True) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if unit and (x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]; got values in [{x.min():.3g}, {x.max():.3g}]")
    return x


def _check_factor(factor, shape, name: str = "image") -> int:
    f = check_positive_int(factor, "factor")
    if any(s % f for s in shape[-2:]):
        raise ValueError(f"factor {f} must divide the {name} size; got shape {tuple(shape)}")
    return f


def _rng(seed, generator) -> np.random.Generator:
    if generator is not None:
        if seed is not None:
            raise ValueError("pass either seed or generator, not both")
        if not isinstance(generator, np.random.Generator):
            raise ValueError(f"generator must be a numpy Generator; got {type(generator).__name__}")
        return generator
    return np.random.default_rng(seed)


def gaussian_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian filter with σ in pixels (``scipy.ndimage``, mode ``reflect``); σ = 0 copies."""
    s = check_positive(sigma_px, "sigma_px", allow_zero=True)
    x = np.asarray(image, dtype=np.float64)
    return ndimage.gaussian_filter(x, s, mode="reflect", truncate=4.0) if s > 0 else x.copy()


def downsample(image: np.ndarray, factor: int, *, mode: str = "point") -> np.ndarray:
    """``(..., H, W)`` → ``(..., H/f, W/f)``, pixel-centre aligned (see the module docstring).

    ``mode="point"``: linear interpolation at the coarse pixel centres (no anti-aliasing, the
    point scanner's sampling); ``mode="area"``: the mean of each ``f × f`` block.
    """
    x = np.asarray(image)
    if x.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (..., H, W); got {x.shape}")
    f = _check_factor(factor, x.shape)
    check_choice(mode, "mode", ("point", "area"))
    h, w = x.shape[-2:]
    b = x.reshape(*x.shape[:-2], h // f, f, w // f, f)
    if mode == "area":
        return b.mean(axis=(-3, -1))
    c = (f - 1) // 2
    sl = slice(c, c + 1) if f % 2 else slice(c, c + 2)
    return b[..., sl, :, sl].mean(axis=(-3, -1))


def upsample(image: np.ndarray, factor: int, *, order: int = 1) -> np.ndarray:
    """``(..., h, w)`` → ``(..., f·h, f·w)`` by interpolation (``order`` 0, 1 or 3:
    nearest, bilinear, bicubic), pixel-centre aligned; float64 NumPy in, NumPy out."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (..., H, W); got {x.shape}")
    return upsample_torch(torch.from_numpy(x), factor, order=order).numpy()


def point_scan(
    image: np.ndarray,
    *,
    factor: int = 1,
    dwell_us: float | np.ndarray = 1.0,
    photons_per_us: float = 20.0,
    blur_px: float = 1.0,
    detector_sigma: float = 0.02,
    mask: np.ndarray | None = None,
    fill_value: float = np.nan,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
) -> np.ndarray:
    """Acquire ``image`` with a point scanner; returns float64 ``(H/factor, W/factor)``.

    Args:
        image: ``(H, W)`` ground-truth intensities in [0, 1].
        factor: pixel size in ground-truth pixels (an integer dividing ``H`` and ``W``).
        dwell_us: dwell time per acquired pixel in µs (> 0): a number, or an array of the
            output shape (a per-pixel dwell map).
        photons_per_us: photons (electrons) per unit intensity per µs (> 0).
        blur_px: probe σ in ground-truth pixels (0 = a point probe).
        detector_sigma: std of additive Gaussian detector noise (intensity units, >= 0).
        mask: optional bool array of the output shape: acquire only these pixels (a rescan);
            the others get ``fill_value``.
        seed, generator: randomness (an int seed or a ``numpy.random.Generator``, not both).

    Returns:
        ``counts / λ + noise`` at each acquired pixel, in the units of ``image``.
    """
    x = _check_image(image)
    f = _check_factor(factor, x.shape)
    lam_unit = check_positive(photons_per_us, "photons_per_us")
    check_positive(blur_px, "blur_px", allow_zero=True)
    sd = check_positive(detector_sigma, "detector_sigma", allow_zero=True)
    out_shape = (x.shape[0] // f, x.shape[1] // f)
    dwell = np.asarray(dwell_us, dtype=np.float64)
    if dwell.ndim and dwell.shape != out_shape:
        raise ValueError(f"dwell_us must be a number or an array of shape {out_shape}")
    if not np.isfinite(dwell).all() or (dwell <= 0).any():
        raise ValueError(f"dwell_us must be positive; got {dwell_us!r}")
    if mask is None:
        sel = np.ones(out_shape, bool)
    else:
        sel = np.asarray(mask)
        if sel.dtype != bool or sel.shape != out_shape:
            raise ValueError(f"mask must be a bool array of shape {out_shape}")
    rng = _rng(seed, generator)
    clean = downsample(gaussian_blur(x, blur_px), f)
    lam = lam_unit * np.broadcast_to(dwell, out_shape)[sel]
    counts = rng.poisson(lam * clean[sel])
    out = np.full(out_shape, fill_value, dtype=np.float64)
    out[sel] = counts / lam + (sd * rng.standard_normal(counts.shape) if sd > 0 else 0.0)
    return out


# --- torch versions ---------------------------------------------------------------------------


def _as_image_tensor(x, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch tensor; got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (..., H, W); got {tuple(x.shape)}")
    return x


def _pad_symmetric(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Half-sample symmetric padding (scipy's ``reflect``), any ``r`` up to the size."""
    n = x.shape[dim]
    if r > n:
        raise ValueError(f"blur radius {r} px exceeds the image size {n} px")
    lo = x.narrow(dim, 0, r).flip(dim)
    hi = x.narrow(dim, n - r, r).flip(dim)
    return torch.cat([lo, x, hi], dim=dim)


def gaussian_blur_torch(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(..., H, W)`` tensor, σ in pixels, same edge handling
    and truncation (4σ) as :func:`gaussian_blur`."""
    x = _as_image_tensor(x)
    s = check_positive(sigma_px, "sigma_px", allow_zero=True)
    if s == 0:
        return x
    r = int(4.0 * s + 0.5)
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / s) ** 2)
    k = k / k.sum()
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    y = _pad_symmetric(y, r, 2)
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    y = _pad_symmetric(y, r, 3)
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    return y.reshape(shape)


def downsample_torch(x: torch.Tensor, factor: int, *, mode: str = "point") -> torch.Tensor:
    """Torch :func:`downsample` of a ``(..., H, W)`` tensor (same convention, differentiable)."""
    x = _as_image_tensor(x)
    f = _check_factor(factor, x.shape)
    check_choice(mode, "mode", ("point", "area"))
    h, w = x.shape[-2:]
    b = x.reshape(*x.shape[:-2], h // f, f, w // f, f)
    if mode == "area":
        return b.mean(dim=(-3, -1))
    c = (f - 1) // 2
    n = 1 if f % 2 else 2
    return b.narrow(-3, c, n).narrow(-1, c, n).mean(dim=(-3, -1))


def upsample_torch(x: torch.Tensor, factor: int, *, order: int = 1) -> torch.Tensor:
    """``(..., h, w)`` → ``(..., f·h, f·w)``: ``F.interpolate(align_corners=False)``, the
    pixel-centre convention; ``order`` 0, 1 or 3 (nearest, bilinear, bicubic)."""
    x = _as_image_tensor(x)
    f = check_positive_int(factor, "factor")
    check_choice(order, "order", tuple(_ORDERS))
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    kw = {} if order == 0 else {"align_corners": False}
    y = F.interpolate(y, scale_factor=f, mode=_ORDERS[order], **kw)
    return y.reshape(*shape[:-2], shape[-2] * f, shape[-1] * f)


def point_scan_torch(
    x: torch.Tensor,
    *,
    factor: int = 1,
    dwell_us: float = 1.0,
    photons_per_us: float = 20.0,
    blur_px: float = 1.0,
    detector_sigma: float = 0.02,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Torch :func:`point_scan` of a ``(..., H, W)`` batch in [0, 1] (full scans, no mask)."""
    x = _as_image_tensor(x)
    f = _check_factor(factor, x.shape)
    lam = check_positive(photons_per_us, "photons_per_us") * check_positive(dwell_us, "dwell_us")
    check_positive(blur_px, "blur_px", allow_zero=True)
    sd = check_positive(detector_sigma, "detector_sigma", allow_zero=True)
    if x.min() < 0 or x.max() > 1:
        raise ValueError("x must lie in [0, 1]")
    clean = downsample_torch(gaussian_blur_torch(x, blur_px), f).clamp_min(0.0)
    out = torch.poisson(lam * clean, generator=generator) / lam
    if sd > 0:
        noise = torch.randn(out.shape, generator=generator, dtype=out.dtype, device=out.device)
        out = out + sd * noise
    return out
