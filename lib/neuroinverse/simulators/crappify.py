"""PSSR "crappifiers": high-resolution images degraded into low-resolution training inputs (torch).

The training degradations of point-scanning super-resolution (Fang et al., Nature Methods 18,
406-416, 2021; reference code ``BPHO-Salk/PSSR``, ``utils/crappifiers.py``), applied on the
fly to ``(..., H, W)`` batches in [0, 1]. Every crappifier ends with the pixel-centre point
downsampling of :func:`~neuroinverse.simulators.point_scan.downsample_torch` (the reference's
``scipy.ndimage.zoom(x, 1/4, order=1)`` maps corner to corner instead; we keep one convention):

* ``"em_ag"`` (the paper's EM crappifier, ``em_AG_D_sameas_preprint``): additive Gaussian
  noise with *local variance* ``v = 0.05 · G_3(x)`` (Gaussian filter, σ = 3 px), clip to
  [0, 1], downsample;
* ``"downsample"``: downsample only (no noise; the ablation of the paper's Fig. 1);
* ``"gaussian"``: ``x + N(0, 0.15²)``, clip, downsample (``em_G_D_002``);
* ``"poisson"``: ``Poisson(λ x)/λ`` with an explicit ``λ = 20`` (the reference's
  ``random_noise(mode="poisson")`` sets λ implicitly from the number of grey levels), clip,
  downsample (``em_P_D_001``);
* ``"fluo_ag_sp"`` (``new_crap_AG_SP``, the MitoTracker models): local variance
  ``0.5 · G_5(x) + 1e-10``, clip, salt and pepper on 0.5 % of the pixels each, rescale so that
  the maximum equals the input's, downsample.

:func:`frame_stack` builds multi-frame inputs: frames ``t-2 … t+2`` of a movie, edge frames
replicated, each to be crappified independently.
"""

from __future__ import annotations

import torch

from .._checks import check_choice, check_positive, check_positive_int
from .point_scan import downsample_torch, gaussian_blur_torch

__all__ = ["CRAPPIFIERS", "crappify", "frame_stack"]

#: The crappifiers by name (see the module docstring).
CRAPPIFIERS = ("em_ag", "downsample", "gaussian", "poisson", "fluo_ag_sp")


def _randn(x, generator):
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _rand(x, generator):
    return torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _local_variance_noise(x, scale, sigma, generator):
    v = scale * gaussian_blur_torch(x, sigma).clamp_min(0.0) + 1e-10
    return (x + v.sqrt() * _randn(x, generator)).clamp(0.0, 1.0)


def crappify(
    hr: torch.Tensor,
    kind: str = "em_ag",
    *,
    factor: int = 4,
    generator: torch.Generator | None = None,
    poisson_lambda: float = 20.0,
) -> torch.Tensor:
    """Degrade a ``(..., H, W)`` batch in [0, 1] to ``(..., H/factor, W/factor)``.

    Args:
        hr: high-resolution images in [0, 1]; ``H`` and ``W`` divisible by ``factor``.
        kind: one of :data:`CRAPPIFIERS`.
        factor: linear downsampling factor.
        generator: ``torch.Generator`` for the noise (on ``hr``'s device).
        poisson_lambda: photons per unit intensity of the ``"poisson"`` crappifier.
    """
    check_choice(kind, "kind", CRAPPIFIERS)
    check_positive_int(factor, "factor")
    if not isinstance(hr, torch.Tensor) or hr.dim() < 2:
        raise ValueError("hr must be a torch tensor of shape (..., H, W)")
    if hr.min() < 0 or hr.max() > 1:
        raise ValueError("hr must lie in [0, 1]")
    x = hr
    if kind == "em_ag":
        x = _local_variance_noise(x, 0.05, 3.0, generator)
    elif kind == "gaussian":
        x = (x + 0.15 * _randn(x, generator)).clamp(0.0, 1.0)
    elif kind == "poisson":
        lam = check_positive(poisson_lambda, "poisson_lambda")
        x = (torch.poisson(lam * x, generator=generator) / lam).clamp(0.0, 1.0)
    elif kind == "fluo_ag_sp":
        peak = x.amax(dim=(-2, -1), keepdim=True)
        x = _local_variance_noise(x, 0.5, 5.0, generator)
        u = _rand(x, generator)
        x = torch.where(u < 0.005, torch.ones_like(x), x)
        x = torch.where(u > 0.995, torch.zeros_like(x), x)
        x = x * (peak / x.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12))
    return downsample_torch(x, factor)


def frame_stack(frames: torch.Tensor, t: int, n: int = 5) -> torch.Tensor:
    """Frames ``t - n//2 … t + n//2`` of ``(..., T, H, W)`` as ``(..., n, H, W)``, the first and
    last frames replicated past the ends of the movie."""
    if not isinstance(frames, torch.Tensor) or frames.dim() < 3:
        raise ValueError("frames must be a torch tensor of shape (..., T, H, W)")
    n = check_positive_int(n, "n")
    if n % 2 == 0:
        raise ValueError(f"n must be odd (a centre frame); got {n}")
    total = frames.shape[-3]
    if not 0 <= t < total:
        raise ValueError(f"t must lie in [0, {total - 1}]; got {t}")
    idx = torch.arange(t - n // 2, t + n // 2 + 1).clamp(0, total - 1)
    return frames.index_select(-3, idx.to(frames.device))
