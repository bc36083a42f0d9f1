"""The MALIS loss: weights from the pair counts, the per-pair losses, and the training losses.

The loss of Turaga et al., "Maximin affinity learning of image segmentation", NIPS 2009,
and its constrained two-pass form (Funke et al., IEEE TPAMI 41(7), 2019, Sec. 2.2), built on
the counts of :mod:`neuroinverse.segmentation.malis`; beside it the per-edge baseline, and
the two as training losses for :func:`~neuroinverse.segmentation.training.fit_affinity_net`
(:class:`PerEdgeBCE`, :class:`MALISLoss`). The maths is in the docstring of
:mod:`neuroinverse.segmentation.malis`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_positive, check_range, to_numpy
from .malis import malis_counts

__all__ = [
    "malis_weights",
    "weighted_pair_loss",
    "malis_loss",
    "per_edge_loss",
    "PerEdgeBCE",
    "MALISLoss",
]

_PAIR_LOSSES = ("square", "square_square")
_NORMALISATIONS = ("total", "per_pass")


# ----------------------------------------------------------------------------- loss
def malis_weights(
    affinities,
    labels,
    *,
    constrained: bool = False,
    gt_affinities=None,
    normalisation: str = "per_pass",
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised MALIS weights ``(w⁺, w⁻)`` (float64, the affinities' shape).

    ``normalisation="per_pass"``: ``w⁺ = n⁺/Σn⁺``, ``w⁻ = n⁻/Σn⁻``; ``"total"``: both divided
    by ``Σ(n⁺ + n⁻)``. A pass with no pairs gets zero weights.
    """
    if normalisation not in _NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {_NORMALISATIONS}; got {normalisation!r}")
    n_pos, n_neg = malis_counts(
        affinities, labels, constrained=constrained, gt_affinities=gt_affinities
    )
    sp, sn = float(n_pos.sum()), float(n_neg.sum())
    if normalisation == "total":
        sp = sn = sp + sn
    w_pos = n_pos / sp if sp > 0 else np.zeros(n_pos.shape)
    w_neg = n_neg / sn if sn > 0 else np.zeros(n_neg.shape)
    return w_pos, w_neg


def weighted_pair_loss(
    affinities: torch.Tensor, w_pos, w_neg, *, pair_loss: str = "square", margin: float = 0.0
) -> torch.Tensor:
    """``Σ_e [w⁺_e l(1, a_e) + w⁻_e l(0, a_e)]`` for fixed weights (summed over all entries).

    Args:
        affinities: tensor of any shape, values in [0, 1].
        w_pos, w_neg: weights of the same shape (array or tensor; no gradient).
        pair_loss: ``"square"`` or ``"square_square"`` (margin ``m``).
        margin: ``m`` of the square-square loss, in [0, 0.5).

    Returns:
        Scalar tensor (the plain sum).
    """
    if pair_loss not in _PAIR_LOSSES:
        raise ValueError(f"pair_loss must be one of {_PAIR_LOSSES}; got {pair_loss!r}")
    if not (0.0 <= margin < 0.5):
        raise ValueError(f"margin must lie in [0, 0.5); got {margin!r}")
    wp = torch.as_tensor(w_pos, dtype=affinities.dtype, device=affinities.device)
    wn = torch.as_tensor(w_neg, dtype=affinities.dtype, device=affinities.device)
    if wp.shape != affinities.shape or wn.shape != affinities.shape:
        raise ValueError(
            f"w_pos and w_neg must have the affinities' shape {tuple(affinities.shape)}; "
            f"got {tuple(wp.shape)} and {tuple(wn.shape)}"
        )
    m = margin if pair_loss == "square_square" else 0.0
    l_pos = torch.clamp(1.0 - m - affinities, min=0.0) ** 2
    l_neg = torch.clamp(affinities - m, min=0.0) ** 2
    return (wp * l_pos + wn * l_neg).sum()


def _split_batch(affinities: torch.Tensor, labels) -> tuple[bool, np.ndarray]:
    lab = to_numpy(labels, "labels")
    shape = tuple(affinities.shape)
    if lab.ndim in (2, 3) and lab.shape == shape[1:] and shape[0] == lab.ndim:
        return False, lab
    if (
        lab.ndim in (3, 4)
        and len(shape) == lab.ndim + 1
        and lab.shape[0] == shape[0]
        and lab.shape[1:] == shape[2:]
        and shape[1] == lab.ndim - 1
    ):
        return True, lab
    raise ValueError(
        f"labels of shape {lab.shape} do not match affinities of shape {shape}: expected "
        "affinities (C, *S) with labels S, or (N, C, *S) with labels (N, *S), C = len(S)"
    )


def malis_loss(
    affinities: torch.Tensor,
    labels,
    *,
    constrained: bool = False,
    gt_affinities=None,
    pair_loss: str = "square",
    margin: float = 0.0,
    normalisation: str = "per_pass",
) -> torch.Tensor:
    """The MALIS loss with gradients through the affinities (counts without gradient).

    Args:
        affinities: ``(C, *S)`` or ``(N, C, *S)`` tensor in [0, 1] (any device), ``C = 2`` for
            ``S = (H, W)``, 3 for ``(Z, Y, X)``.
        labels: ``S`` or ``(N, *S)`` integer ids (0 = boundary); relabel crops with
            :func:`~neuroinverse.labels.relabel_connected` first.
        constrained: two-pass constrained MALIS (Funke et al. 2019).
        gt_affinities: optional ground-truth affinities for the constraint, the affinities'
            shape (default: from ``labels``).
        pair_loss / margin: per-pair loss (see :func:`weighted_pair_loss`).
        normalisation: ``"per_pass"`` or ``"total"`` (see :func:`malis_weights`).

    Returns:
        Scalar tensor: the weighted pair loss, averaged over the batch.
    """
    if not isinstance(affinities, torch.Tensor):
        raise ValueError(f"affinities must be a torch.Tensor; got {type(affinities).__name__}")
    if pair_loss not in _PAIR_LOSSES:
        raise ValueError(f"pair_loss must be one of {_PAIR_LOSSES}; got {pair_loss!r}")
    if not (0.0 <= margin < 0.5):
        raise ValueError(f"margin must lie in [0, 0.5); got {margin!r}")
    batched, lab = _split_batch(affinities, labels)
    aff_np = affinities.detach().to("cpu", torch.float64).numpy()
    gt = None if gt_affinities is None else to_numpy(gt_affinities, "gt_affinities")
    if gt is not None and gt.shape != tuple(affinities.shape):
        raise ValueError(f"gt_affinities must have shape {tuple(affinities.shape)}; got {gt.shape}")
    items = range(aff_np.shape[0]) if batched else [None]
    w_pos = np.zeros(aff_np.shape)
    w_neg = np.zeros(aff_np.shape)
    for i in items:
        sel = (i,) if batched else ()
        w_pos[sel], w_neg[sel] = malis_weights(
            aff_np[sel],
            lab[sel],
            constrained=constrained,
            gt_affinities=None if gt is None else gt[sel],
            normalisation=normalisation,
        )
    loss = weighted_pair_loss(affinities, w_pos, w_neg, pair_loss=pair_loss, margin=margin)
    return loss / aff_np.shape[0] if batched else loss


def per_edge_loss(
    affinities: torch.Tensor, gt_affinities, *, kind: str = "bce", balanced: bool = False, mask=None
) -> torch.Tensor:
    """The standard per-edge baseline: mean BCE or squared error over the edges.

    Args:
        affinities: predicted affinities in [0, 1], any shape.
        gt_affinities: targets in {0, 1}, same shape.
        kind: ``"bce"`` or ``"square"``.
        balanced: weight each class by ``1 / (2·fraction)`` with the fraction clipped to
            [0.05, 0.95] (gunpowder's ``BalanceLabels``, the ``mala`` chapter's baseline).
        mask: optional bool/0-1 tensor of edges to include (e.g. edges inside the image).

    Returns:
        Scalar tensor (weighted mean over the included edges).
    """
    if kind not in ("bce", "square"):
        raise ValueError(f"kind must be 'bce' or 'square'; got {kind!r}")
    gt = torch.as_tensor(gt_affinities, dtype=affinities.dtype, device=affinities.device)
    if gt.shape != affinities.shape:
        raise ValueError(
            f"gt_affinities must have shape {tuple(affinities.shape)}; got {tuple(gt.shape)}"
        )
    m = (
        torch.ones_like(gt)
        if mask is None
        else torch.as_tensor(mask, dtype=affinities.dtype, device=affinities.device)
    )
    if m.shape != affinities.shape:
        raise ValueError(f"mask must have shape {tuple(affinities.shape)}; got {tuple(m.shape)}")
    if kind == "bce":
        per = torch.nn.functional.binary_cross_entropy(affinities, gt, reduction="none")
    else:
        per = (affinities - gt) ** 2
    w = m
    if balanced:
        n = m.sum().clamp(min=1.0)
        frac_pos = float(((gt > 0.5) * m).sum() / n)
        frac_pos = min(max(frac_pos, 0.05), 0.95)
        w = m * torch.where(gt > 0.5, 1.0 / (2 * frac_pos), 1.0 / (2 * (1.0 - frac_pos)))
    return (w * per).sum() / w.sum().clamp(min=1e-12)


# ----------------------------------------------------------------------------- the training losses
@dataclass(frozen=True)
class PerEdgeBCE:
    """The per-edge baseline as a training loss: :func:`per_edge_loss` with ``kind="bce"``.

    Called as ``loss(affinities, labels, gt_affinities, mask)`` like every affinity loss of
    :func:`~neuroinverse.segmentation.training.fit_affinity_net`; ``labels`` are not used.
    """

    balanced: bool = False

    @property
    def label(self) -> str:
        return "bce" + (", balanced" if self.balanced else "")

    def __call__(
        self, affinities: torch.Tensor, labels, gt_affinities: torch.Tensor, mask=None
    ) -> torch.Tensor:
        return per_edge_loss(affinities, gt_affinities, balanced=self.balanced, mask=mask)


@dataclass(frozen=True)
class MALISLoss:
    """MALIS as a training loss, optionally constrained and mixed with the per-edge BCE.

    ``weight · malis_loss(...) + bce_weight · per_edge_loss(...)``: Turaga et al. 2009 train
    on the MALIS term alone after a per-edge warm-up; Funke et al. 2019 (Sec. 2.2) add the
    constrained term to a per-edge loss. Checked once when made.

    Args:
        constrained, pair_loss, margin, normalisation: see :func:`malis_loss`.
        weight: the factor of the MALIS term (> 0; e.g. the value of
            :func:`~neuroinverse.segmentation.training.malis_gradient_scale` at the start of a
            branch).
        bce_weight: the factor of the per-edge BCE (>= 0; 0 leaves it out).
        balanced: class-balance that BCE (:func:`per_edge_loss`).
    """

    constrained: bool = False
    pair_loss: str = "square"
    margin: float = 0.0
    normalisation: str = "per_pass"
    weight: float = 1.0
    bce_weight: float = 0.0
    balanced: bool = False

    def __post_init__(self) -> None:
        check_choice(self.pair_loss, "pair_loss", _PAIR_LOSSES)
        check_choice(self.normalisation, "normalisation", _NORMALISATIONS)
        check_range(self.margin, "margin", 0.0, 0.5)
        check_positive(self.weight, "weight")
        check_positive(self.bce_weight, "bce_weight", allow_zero=True)

    @property
    def label(self) -> str:
        return "malis" + (" (constrained)" if self.constrained else "")

    def malis_term(self, affinities: torch.Tensor, labels) -> torch.Tensor:
        """The unweighted MALIS term alone."""
        return malis_loss(
            affinities,
            labels,
            constrained=self.constrained,
            pair_loss=self.pair_loss,
            margin=self.margin,
            normalisation=self.normalisation,
        )

    def __call__(
        self, affinities: torch.Tensor, labels, gt_affinities: torch.Tensor, mask=None
    ) -> torch.Tensor:
        value = self.weight * self.malis_term(affinities, labels)
        if self.bce_weight:
            value = value + self.bce_weight * per_edge_loss(
                affinities, gt_affinities, balanced=self.balanced, mask=mask
            )
        return value
