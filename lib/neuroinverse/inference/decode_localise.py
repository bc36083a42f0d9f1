"""DECODE at inference time: network output → localisations, and precision-recall evaluation.

Speiser*, Müller*, Hoess, Matti, Obara, Legant, Kreshuk, Macke†, Ries†, Turaga†, "Deep
learning enables fast and dense single-molecule localization with high accuracy",
*Nature Methods* 18:1082–1090 (2021). Written for the book from the paper's description;
no code of the reference implementation is used. The network is
:class:`~neuroinverse.models.decode.DecodeNet`.

* :func:`post_process` (Methods, "Post-processing"): spatial integration of ``p`` around
  local maxima into discrete localisations with uncertainties.
* :func:`predict`, :func:`localise`: sliding-window inference over frame sequences.
* :func:`precision_recall_sweep`: precision, recall and Jaccard index of the localisations
  over detection thresholds.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_range
from ..metrics.localisation import localisation_scores
from ..models.decode import DecodeNet, DecodeScales
from ..simulators.smlm_emitters import EmitterTable

__all__ = [
    "mixture_sigma",
    "post_process",
    "window_batch",
    "predict",
    "localise",
    "precision_recall_sweep",
]


def mixture_sigma(out: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lateral σ of the detection-weighted mixture over each pixel's 3×3 neighbourhood.

    The network's output is a mixture: pixel ``k`` contributes a Gaussian component with
    mean ``μ_k = c(k) + (Δx_k, Δy_k)`` and standard deviations ``σ_k`` (per axis). Around each
    pixel, with weights ``w_k = p_k / Σ_j p_j`` over its 3×3 neighbourhood, the moment-matched
    variance per axis is ``σ² = Σ_k w_k (σ_k² + (μ_k − μ̄)²)``, ``μ̄ = Σ_k w_k μ_k``: the
    pixel's own σ widened by the spread of its neighbours' means. A detection map that spreads
    one emitter over several pixels thus gives a wider σ than the peak pixel's alone.

    Args:
        out: network output with ``p`` ``(B, 1, H, W)``, ``mean`` and ``sigma`` (channels
            1, 2 = x, y in pixels).

    Returns:
        ``(σx, σy)``, each ``(B, 1, H, W)`` in pixels.

    >>> import torch
    >>> p = torch.zeros(1, 1, 3, 3); p[0, 0, 1, 1] = p[0, 0, 1, 2] = 0.5
    >>> out = dict(p=p, mean=torch.zeros(1, 3, 3, 3), sigma=torch.full((1, 3, 3, 3), 0.1))
    >>> sx, sy = mixture_sigma(out)
    >>> round(float(sx[0, 0, 1, 1]), 4), round(float(sy[0, 0, 1, 1]), 4)   # sqrt(0.01 + 0.25), 0.1
    (0.5099, 0.1)
    """
    p = out["p"]
    B, _, H, W = p.shape
    off = torch.arange(-1, 2, dtype=p.dtype, device=p.device)
    d_row, d_col = (
        off.repeat_interleave(3),
        off.repeat(3),
    )  # F.unfold order: row-major over the 3×3 kernel
    w = F.unfold(p, 3, padding=1)
    w = w / w.sum(1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)
    res = []
    for ch, shift in ((1, d_col), (2, d_row)):
        mu = F.unfold(out["mean"][:, ch : ch + 1], 3, padding=1) + shift[None, :, None]
        sd = F.unfold(out["sigma"][:, ch : ch + 1], 3, padding=1)
        mbar = (w * mu).sum(1, keepdim=True)
        var = (w * (sd**2 + (mu - mbar) ** 2)).sum(1)
        res.append(var.sqrt().reshape(B, 1, H, W))
    return res[0], res[1]


def post_process(
    out: Mapping[str, torch.Tensor],
    *,
    scales: DecodeScales,
    raw_th: float = 0.5,
    split_th: float = 0.6,
    frame_index: torch.Tensor | None = None,
    n_frames: int | None = None,
    sigma_readout: str = "pixel",
) -> EmitterTable:
    """Spatial integration of the detection map into localisations.

    Paper, Methods; the reference code's "spatial integration".

    1. candidates: pixels with ``p > raw_th`` that are the maximum of their 3×3 neighbourhood,
       and other pixels with ``p > split_th`` (to resolve emitters in adjacent pixels);
    2. each candidate's probability is summed with its 4 direct neighbours, clamped at 1;
    3. candidates with this value ≥ ``raw_th`` become localisations read out at their pixel.

    Args:
        out: network output for ``B`` frames.
        scales: output units.
        raw_th, split_th: thresholds.
        frame_index: ``(B,)`` frame index of each output (default ``0..B−1``).
        n_frames: ``n_frames`` of the returned table (default ``B``).
        sigma_readout: ``"pixel"`` reads σx, σy at the candidate pixel (the reference);
            ``"mixture"`` reads the moment-matched σ of :func:`mixture_sigma` there (positions
            are unchanged).

    Returns:
        Localisations with ``prob``, ``sigma_x``/``sigma_y`` (px), ``sigma_z`` (nm),
        ``sigma_photons`` and ``background``.
    """
    check_range(raw_th, "raw_th", 0.0, 1.0, low_open=True, high_open=True)
    check_range(split_th, "split_th", 0.0, 1.0, low_open=True, high_open=True)
    check_choice(sigma_readout, "sigma_readout", ("pixel", "mixture"))
    p = out["p"]
    B, _, H, W = p.shape
    with torch.no_grad():
        clipped = torch.where(p > raw_th, p, torch.zeros_like(p))
        local_max = (clipped > 0) & (clipped == F.max_pool2d(clipped, 3, stride=1, padding=1))
        plus = torch.tensor(
            [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]], dtype=p.dtype, device=p.device
        )
        agg = F.conv2d(p, plus.view(1, 1, 3, 3), padding=1).clamp(max=1.0)
        cand = local_max | (p > split_th)
        keep = cand & (agg >= raw_th)
        b, _, r, c = torch.nonzero(keep, as_tuple=True)
        mean, sig = out["mean"], out["sigma"]
        if sigma_readout == "mixture":
            sx_map, sy_map = mixture_sigma(out)
            sig = sig.clone()
            sig[:, 1:2], sig[:, 2:3] = sx_map, sy_map
        x = c.to(p.dtype) + mean[b, 1, r, c]
        y = r.to(p.dtype) + mean[b, 2, r, c]
        three_d = mean.shape[1] == 4
        z = mean[b, 3, r, c] * scales.z_max if three_d else torch.zeros_like(x)
        fi = torch.arange(B, device=p.device) if frame_index is None else frame_index.to(p.device)
        return EmitterTable(
            frame=fi[b],
            x=x,
            y=y,
            z=z,
            photons=mean[b, 0, r, c] * scales.phot_max,
            n_frames=int(n_frames if n_frames is not None else B),
            pixel_size=scales.pixel_size,
            prob=agg[b, 0, r, c],
            sigma_x=sig[b, 1, r, c],
            sigma_y=sig[b, 2, r, c],
            sigma_z=sig[b, 3, r, c] * scales.z_max if three_d else torch.zeros_like(x),
            sigma_photons=sig[b, 0, r, c] * scales.phot_max,
            background=out["bg"][b, 0, r, c] * scales.bg_max,
        )


def window_batch(frames: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Sliding windows over each sequence, edge frames repeated by index clamping.

    Args:
        frames: ``(B, T, H, W)``.
        n_frames: window length (1 or 3).

    Returns:
        ``(B · T, n_frames, H, W)``: the window centred on each frame.
    """
    B, T, H, W = frames.shape
    h = n_frames // 2
    idx = (
        torch.arange(T, device=frames.device)[:, None]
        + torch.arange(-h, h + 1, device=frames.device)
    ).clamp(0, T - 1)
    return frames[:, idx].reshape(B * T, n_frames, H, W)


def _as_sequences(frames: torch.Tensor) -> torch.Tensor:
    if not isinstance(frames, torch.Tensor):
        raise ValueError("frames must be a tensor of shape (T, H, W) or (B, T, H, W)")
    if frames.dim() == 3:
        return frames[None]
    if frames.dim() != 4:
        raise ValueError(
            f"frames must have shape (T, H, W) or (B, T, H, W); got {tuple(frames.shape)}"
        )
    return frames


@torch.no_grad()
def predict(
    net: DecodeNet, frames: torch.Tensor, *, batch_size: int = 64
) -> dict[str, torch.Tensor]:
    """Network output for every frame of one or several sequences (photon units).

    Args:
        net: a :class:`DecodeNet`.
        frames: ``(T, H, W)`` or ``(B, T, H, W)`` frames in photon units.
        batch_size: windows per forward pass.

    Returns:
        Dict of ``(B · T, ·, H, W)`` maps (see :class:`DecodeNet`).
    """
    seq = _as_sequences(frames)
    dev = next(net.parameters()).device
    net.eval()
    B, T, H, W = seq.shape
    outs: dict[str, list[torch.Tensor]] = {}
    for s in range(0, B * T, batch_size):
        ids = torch.arange(s, min(s + batch_size, B * T))
        bi, ti = ids // T, ids % T
        h = net.n_frames // 2
        tt = (ti[:, None] + torch.arange(-h, h + 1)).clamp(0, T - 1)
        win = seq[bi[:, None], tt].to(dev)
        for k, v in net(win).items():
            outs.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in outs.items()}


def localise(
    net: DecodeNet,
    frames: torch.Tensor,
    *,
    pixel_size=None,
    raw_th: float = 0.5,
    split_th: float = 0.6,
    batch_size: int = 64,
) -> EmitterTable:
    """:func:`predict` then :func:`post_process`: frames → localisations.

    Args:
        net: trained network.
        frames: ``(T, H, W)`` or ``(B, T, H, W)`` photon-unit frames.
        pixel_size: ``(x, y)`` nm of ``frames``; must equal the network's (``None``: assume it).
        raw_th, split_th: post-processing thresholds.

    Returns:
        Localisations with ``frame = b · T + t``.
    """
    if pixel_size is not None:
        px = (
            (float(pixel_size), float(pixel_size))
            if isinstance(pixel_size, (int, float))
            else tuple(float(v) for v in pixel_size)
        )
        if px != tuple(net.scales.pixel_size):
            raise ValueError(
                f"pixel_size {px} nm of the frames differs from the network's "
                f"{net.scales.pixel_size} nm: retrain or resample"
            )
    seq = _as_sequences(frames)
    out = predict(net, seq, batch_size=batch_size)
    return post_process(out, scales=net.scales, raw_th=raw_th, split_th=split_th)


def precision_recall_sweep(
    out: Mapping[str, torch.Tensor],
    truth: EmitterTable,
    *,
    scales: DecodeScales,
    thresholds: Sequence[float],
    split_th: float = 0.6,
) -> dict[str, list[float]]:
    """Precision, recall and Jaccard index of :func:`post_process` at each ``raw_th``.

    Args:
        out: network output for the frames of ``truth`` (frame ``i`` = output row ``i``).
        truth: ground truth.
        scales: output units.
        thresholds: values of ``raw_th`` in (0, 1).
        split_th: the split threshold, raised to at least ``raw_th``.

    Returns:
        dict of lists ``threshold``, ``precision``, ``recall``, ``jaccard``.
    """
    res: dict[str, list[float]] = dict(threshold=[], precision=[], recall=[], jaccard=[])
    for th in thresholds:
        loc = post_process(
            out,
            scales=scales,
            raw_th=float(th),
            split_th=max(split_th, float(th)),
            n_frames=truth.n_frames,
        )
        s = localisation_scores(loc, truth)
        for k, v in (
            ("threshold", float(th)),
            ("precision", s.precision),
            ("recall", s.recall),
            ("jaccard", s.jaccard),
        ):
            res[k].append(v)
    return res
