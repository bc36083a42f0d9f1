"""DECODE, the method: the training targets and the loss.

Speiser*, Müller*, Hoess, Matti, Obara, Legant, Kreshuk, Macke†, Ries†, Turaga†, "Deep
learning enables fast and dense single-molecule localization with high accuracy",
*Nature Methods* 18:1082–1090 (2021). Written for the book from the paper's description;
no code of the reference implementation is used. The network is
:class:`~neuroinverse.models.decode.DecodeNet`.

* :func:`decode_loss` (Methods, "Loss function"): a Gaussian approximation of the
  Poisson-binomial count of detections, a ``K``-component Gaussian mixture likelihood of the
  true emitters with weights ``p_k / Σ_j p_j``, and a squared background error.

:func:`make_targets` pads the labelled emitters of the target frames into
:class:`DecodeTargets`. Prediction and post-processing are in
:mod:`~neuroinverse.inference.decode_localise`, training in
:mod:`~neuroinverse.inference.decode_training`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from .._checks import check_choice
from ..models.decode import DecodeScales
from ..simulators.smlm_emitters import EmitterTable

__all__ = [
    "DecodeTargets",
    "make_targets",
    "decode_loss",
]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class DecodeTargets:
    """Padded training targets of one batch of frames.

    Attributes:
        u: ``(B, M, D)`` true emitters ``(N / phot_max, x, y[, z / z_max])`` (x, y absolute px).
        mask: ``(B, M)`` True for real rows.
        bg: ``(B,)`` true background in units of ``bg_max``.
    """

    u: torch.Tensor
    mask: torch.Tensor
    bg: torch.Tensor


def make_targets(
    labels: EmitterTable,
    background: torch.Tensor,
    *,
    frames: torch.Tensor,
    scales: DecodeScales,
    three_d: bool = False,
) -> DecodeTargets:
    """Pad the labelled emitters of the frames ``frames`` into :class:`DecodeTargets`.

    Args:
        labels: emitters (already filtered by the label photon threshold).
        background: ``(labels.n_frames,)`` true background per frame (photons per pixel).
        frames: ``(B,)`` int64 indices of the target frames into ``labels``.
        scales: output units.
        three_d: include z.
    """
    B = frames.numel()
    lookup = torch.full((labels.n_frames,), -1, dtype=torch.long, device=labels.frame.device)
    lookup[frames] = torch.arange(B, device=lookup.device)
    row = lookup[labels.frame]
    sel = row >= 0
    row = row[sel]
    order = torch.argsort(row, stable=True)
    row = row[order]
    cols = [labels.photons / scales.phot_max, labels.x, labels.y]
    if three_d:
        cols.append(labels.z / scales.z_max)
    vals = torch.stack(cols, 1)[sel][order].float()
    counts = torch.bincount(row, minlength=B)
    M = max(int(counts.max()) if B else 0, 1)
    slot = torch.arange(row.numel(), device=row.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    u = torch.zeros(B, M, vals.shape[1], device=vals.device)
    mask = torch.zeros(B, M, dtype=torch.bool, device=vals.device)
    u[row, slot] = vals
    mask[row, slot] = True
    return DecodeTargets(u=u, mask=mask, bg=(background[frames] / scales.bg_max).float())


def decode_loss(
    out: Mapping[str, torch.Tensor],
    targets: DecodeTargets,
    *,
    count_weight: str = "max1",
    reduce: bool = True,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """The DECODE loss (paper, Methods, "Loss function").

    Per frame with ``E`` true emitters ``u_e`` and pixels ``k``:

    * ``L_count = −log N(E; Σ p_k, Σ p_k (1 − p_k))``, multiplied by ``max(E, 1)``
      (``count_weight="max1"``, the book's choice so that empty frames are penalised) or by
      ``E`` (``"count"``, the reference code);
    * ``L_loc = −Σ_e log Σ_k (p_k / Σ_j p_j) N(u_e; μ_k, diag σ_k²)`` with
      ``μ_k = (N̂_k, c_x(k) + dx_k, c_y(k) + dy_k[, ẑ_k])``;
    * ``L_bg = Σ_pixels (b̂ − b / bg_max)²``.

    Args:
        out: network output (see :class:`DecodeNet`).
        targets: the batch's :class:`DecodeTargets`.
        count_weight: ``"max1"`` or ``"count"``.
        reduce: return the batch mean of ``L_count + L_loc + L_bg``; otherwise a dict of
            ``(B,)`` terms.
    """
    check_choice(count_weight, "count_weight", ("max1", "count"))
    p = out["p"][:, 0]
    B, H, W = p.shape
    D = out["mean"].shape[1]
    if targets.u.shape[0] != B or targets.u.shape[2] != D:
        raise ValueError(
            f"targets.u {tuple(targets.u.shape)} does not match the output (B={B}, D={D})"
        )
    pf = p.flatten(1)
    E = targets.mask.sum(1).to(p.dtype)
    mu_c = pf.sum(1)
    var_c = (pf * (1 - pf)).sum(1)
    l_count = 0.5 * (E - mu_c) ** 2 / var_c + 0.5 * torch.log(var_c) + _LOG_SQRT_2PI
    l_count = l_count * (E.clamp_min(1.0) if count_weight == "max1" else E)
    # mixture components at every pixel: means in target units
    cy, cx = torch.meshgrid(
        torch.arange(H, device=p.device, dtype=p.dtype),
        torch.arange(W, device=p.device, dtype=p.dtype),
        indexing="ij",
    )
    mean = out["mean"]
    mean = torch.cat([mean[:, :1], mean[:, 1:2] + cx, mean[:, 2:3] + cy, mean[:, 3:]], 1).flatten(
        2
    )  # (B, D, K)
    sig = out["sigma"].flatten(2)  # (B, D, K)
    inv_sig = 1.0 / sig
    # per component: log weight − Σ_d log σ_kd − D log √(2π)  (B, K)
    log_c = torch.log(pf) - torch.log(mu_c)[:, None] - torch.log(sig).sum(1) - D * _LOG_SQRT_2PI
    # squared Mahalanobis distances of every target to every component, one coordinate at a
    # time on contiguous (B, M, K) tensors
    sq = None
    for d in range(D):
        zd = (targets.u[:, :, d, None] - mean[:, None, d]) * inv_sig[:, None, d]  # (B, M, K)
        sq = zd * zd if sq is None else sq + zd * zd
    log_mix = torch.logsumexp(log_c[:, None] - 0.5 * sq, dim=2)  # (B, M)
    l_loc = -(log_mix * targets.mask).sum(1)
    l_bg = ((out["bg"][:, 0] - targets.bg[:, None, None]) ** 2).flatten(1).sum(1)
    if not reduce:
        return dict(count=l_count, loc=l_loc, bg=l_bg, total=l_count + l_loc + l_bg)
    return (l_count + l_loc + l_bg).mean()
