"""MALIS: maximin affinity learning, plain and constrained, in 2-D and 3-D.

Plain MALIS is from Turaga et al., "Maximin affinity learning of image segmentation",
NIPS 2009 (arXiv:0911.5372). The constrained two-pass form and the quasi-linear counting are
from Funke et al., "Large Scale Image Segmentation with Structured Loss based Deep Learning
for Connectome Reconstruction", IEEE TPAMI 41(7), 2019 (arXiv:1709.02974), Sec. 2.2.

**Maximin edge.** For two nodes ``i, j`` of the affinity graph (see
:mod:`neuroinverse.labels`), the maximin affinity is
``A*_ij = max_paths min_{e in path} a_e``. The maximin edge ``mm(i, j)`` is the edge where
that minimum is attained. It lies on the maximum spanning tree and is exactly the edge at
which ``i`` and ``j`` first fall into one set when Kruskal's algorithm adds edges in
**decreasing** affinity (ties broken by a stable sort, i.e. by flat edge index).
``i`` and ``j`` are in one connected component of ``{a_e > θ}`` iff ``A*_ij > θ``.

**Pair counts.** ``n⁺(e)`` (``n⁻(e)``) is the number of unordered pairs of labelled nodes
(label ≠ 0) with the same (a different) label whose maximin edge is ``e``. One Kruskal pass
with a union-find whose roots carry a sparse map label → count gives both: merging roots
``A`` and ``B`` along ``e`` gives ``n⁺(e) = Σ_l A_l B_l`` and
``n⁻(e) = |A||B| − n⁺(e)`` (the NIPS paper's all-pairs loss regrouped per edge).

**Loss.** ``L = Σ_e [w⁺_e l(1, a_e) + w⁻_e l(0, a_e)]`` with the counts computed on detached
affinities, so the gradient reaches only maximum-spanning-tree edges with nonzero counts.
Weights: ``w = n/Z`` with ``Z = Σ_e (n⁺ + n⁻)`` (``normalisation="total"``), or each pass
normalised by its own total, ``w⁺ = n⁺/Σn⁺``, ``w⁻ = n⁻/Σn⁻`` (``"per_pass"``, the
reference TensorFlow op). Per-pair losses: ``"square"`` ``l(δ, a) = (δ − a)²`` or
``"square_square"`` with margin ``m``: ``l(1, a) = max(0, 1 − m − a)²``,
``l(0, a) = max(0, a − m)²``.

**Constrained MALIS** (Funke et al. 2019, Sec. 2.2): a positive pass on ``min(a, g)`` counts
``n⁺`` and then zeroes it on edges with ``g = 0``; a negative pass on ``max(a, g)`` counts
``n⁻`` and zeroes it on edges with ``g = 1`` (``g`` = ground-truth affinities). When every
nonzero label is one connected piece (relabel crops with
:func:`~neuroinverse.labels.relabel_connected`), both passes need only set
*sizes*: the positive pass is Kruskal over the ``g = 1`` edges with ``n⁺(e) = |A||B|``; the
negative pass starts from the pieces pre-merged and runs Kruskal over the ``g = 0`` edges
with ``n⁻(e) = |A||B|`` (the ``mala`` chapter's simplification). Otherwise the label-map
Kruskal is run on the constrained affinities. In both forms the constrained edges sort after
(positive pass) or before (negative pass) every unconstrained edge, which is ``min(a, g)``
and ``max(a, g)`` with ties at exactly 0 and 1 resolved in favour of the constraint.

All counting runs on the CPU in float64 with the ``numba`` kernels of
:mod:`neuroinverse.segmentation.kruskal`; the loss runs on the affinities' device. The
brute-force references the counts are tested against are in
:mod:`neuroinverse.segmentation.malis_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from .._checks import check_choice, check_positive, check_range, to_numpy
from ..labels import (
    affinities_from_labels,
    affinity_graph,
    check_affinities,
    label_components,
)
from .kruskal import (
    check_affinities_and_labels,
    compact_labels,
    edge_order,
    kruskal_label_counts,
    kruskal_size_counts,
    kruskal_tree,
)

__all__ = [
    "maximum_spanning_tree",
    "maximin_edges",
    "maximin_affinity",
    "malis_counts",
    "malis_work",
    "malis_weights",
    "maximin_path",
    "weighted_pair_loss",
    "malis_loss",
    "per_edge_loss",
    "PerEdgeBCE",
    "MALISLoss",
]

_PAIR_LOSSES = ("square", "square_square")
_NORMALISATIONS = ("total", "per_pass")


# ----------------------------------------------------------------------------- maximin
def maximum_spanning_tree(affinities) -> np.ndarray:
    """Bool mask ``(C, *spatial)`` of the maximum spanning tree's edges (Kruskal, decreasing)."""
    aff = check_affinities(affinities)
    u, v, valid = affinity_graph(aff.shape[1:])
    tree = kruskal_tree(edge_order(aff.ravel(), valid), u, v, int(np.prod(aff.shape[1:])))
    return tree.reshape(aff.shape)


def maximin_edges(affinities) -> np.ndarray:
    """Maximin edge ``mm(i, j)`` of every node pair, by Kruskal with union-find.

    Quadratic memory: for small graphs (tests, figures, the ``malis`` chapter's C1).

    Args:
        affinities: ``(2, H, W)`` or ``(3, Z, Y, X)`` in [0, 1].

    Returns:
        int64 ``(N, N)`` flat edge indices into ``affinities``; -1 on the diagonal and for
        pairs that no path connects.
    """
    aff = check_affinities(affinities)
    n = int(np.prod(aff.shape[1:]))
    if n > 20000:
        raise ValueError(f"maximin_edges stores N² entries; got N = {n} nodes (use malis_counts)")
    u, v, valid = affinity_graph(aff.shape[1:])
    order = edge_order(aff.ravel(), valid)
    tree = kruskal_tree(order, u, v, n)
    mm = np.full((n, n), -1, dtype=np.int64)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    root = np.arange(n)
    for e in order[tree[order]]:  # the tree edges, in Kruskal order
        a, b = root[u[e]], root[v[e]]
        ma, mb = members[a], members[b]
        mm[np.ix_(ma, mb)] = e
        mm[np.ix_(mb, ma)] = e
        if len(ma) < len(mb):
            a, b, ma, mb = b, a, mb, ma
        ma.extend(mb)
        root[mb] = a
        del members[b]
    return mm


def maximin_affinity(affinities) -> np.ndarray:
    """Maximin affinity ``A*_ij`` of every node pair from :func:`maximin_edges`.

    Returns:
        float64 ``(N, N)``; ``+inf`` on the diagonal (the empty path), ``-inf`` for
        disconnected pairs.
    """
    aff = check_affinities(affinities)
    mm = maximin_edges(aff)
    out = np.where(mm >= 0, aff.ravel()[np.maximum(mm, 0)], -np.inf)
    np.fill_diagonal(out, np.inf)
    return out


# ----------------------------------------------------------------------------- counts
def malis_counts(affinities, labels, *, constrained: bool = False, gt_affinities=None) -> tuple[np.ndarray, np.ndarray]:
    """MALIS pair counts ``n⁺(e)``, ``n⁻(e)`` per edge (see the module docstring).

    Args:
        affinities: predicted ``(2, H, W)`` or ``(3, Z, Y, X)`` in [0, 1] (numpy or torch;
            detached and counted in float64).
        labels: ground-truth ids ``(H, W)`` / ``(Z, Y, X)``; 0 = boundary/unlabelled (such
            nodes connect paths but carry no pairs).
        constrained: the two-pass constrained form of Funke et al. (2019).
        gt_affinities: ground-truth affinities for the constraint (default
            :func:`~neuroinverse.labels.affinities_from_labels`); values are
            rounded to {0, 1}. Only used when ``constrained``.

    Returns:
        ``(n_pos, n_neg)``: int64 arrays of the affinities' shape. Unconstrained:
        ``Σ n⁺ = Σ_l C(N_l, 2)`` and ``Σ (n⁺ + n⁻) = C(N_L, 2)`` on a connected grid.
    """
    n_pos, n_neg, _ = _malis_counts_and_work(affinities, labels, constrained=constrained, gt_affinities=gt_affinities)
    return n_pos, n_neg


def malis_work(affinities, labels, *, constrained: bool = False, gt_affinities=None) -> dict[str, int]:
    """The work :func:`malis_counts` does on these inputs, counted, not timed.

    Deterministic measures of the algorithm's cost (Funke et al. 2019, Sec. 2.2: quasi-linear
    in the number of voxels), for scaling laws that timing noise cannot tilt.

    Returns:
        ``edges`` visited by the Kruskal passes (both passes when ``constrained``), union-find
        ``hops`` (pointer steps of every find), ``merges`` (unions, or label-map entries moved
        by the label-count form), and ``total = edges + hops + merges``.
    """
    _, _, work = _malis_counts_and_work(affinities, labels, constrained=constrained, gt_affinities=gt_affinities)
    return work


def _malis_counts_and_work(
    affinities, labels, *, constrained: bool, gt_affinities
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    aff, lab = check_affinities_and_labels(affinities, labels)
    shape = aff.shape
    u, v, valid = affinity_graph(shape[1:])
    node_label, n_labels = compact_labels(lab)
    a = aff.ravel()
    work = dict(edges=0, hops=0, merges=0)

    def label_pass(key):
        order = edge_order(key, valid)
        p, q, hops, moves = kruskal_label_counts(order, u, v, node_label, n_labels)
        work["edges"] += int(order.size)
        work["hops"] += int(hops)
        work["merges"] += int(moves)
        return p, q

    def size_pass(edges, parent0, size0):
        order = edge_order(a, edges)
        counts, hops, unions = kruskal_size_counts(order, u, v, parent0, size0)
        work["edges"] += int(order.size)
        work["hops"] += int(hops)
        work["merges"] += int(unions)
        return counts

    if not constrained:
        n_pos, n_neg = label_pass(a)
    else:
        if gt_affinities is None:
            g = affinities_from_labels(lab).ravel() > 0.5
        else:
            g = check_affinities(gt_affinities, spatial_shape=lab.shape, name="gt_affinities")
            if g.shape != shape:
                raise ValueError(f"gt_affinities must have shape {shape}; got {g.shape}")
            g = g.ravel() > 0.5
        g &= valid
        n = node_label.size
        pieces = label_components(u, v, g, n) - 1  # connected_components of the g = 1 graph, 0-based
        if _pieces_match(pieces, node_label, g):
            # size-only passes (Funke et al. 2019): positive over g = 1 edges, negative from
            # the pieces pre-merged
            labelled = (node_label > 0).astype(np.int64)
            n_pos = size_pass(valid & g, np.arange(n, dtype=np.int64), labelled)
            rep = np.full(pieces.max() + 1, n, dtype=np.int64)
            np.minimum.at(rep, pieces, np.arange(n, dtype=np.int64))  # a piece's first node represents it
            parent0 = rep[pieces]
            size0 = np.zeros(n, dtype=np.int64)
            np.add.at(size0, parent0, labelled)
            n_neg = size_pass(valid & ~g, parent0, size0)
        else:
            n_pos, _ = label_pass(np.where(g, a, -1.0))
            _, n_neg = label_pass(np.where(g, 2.0, a))
        n_pos = np.where(g, n_pos, 0)
        n_neg = np.where(g, 0, n_neg)
    work["total"] = work["edges"] + work["hops"] + work["merges"]
    return n_pos.reshape(shape), n_neg.reshape(shape), work


def _pieces_match(pieces: np.ndarray, node_label: np.ndarray, g: np.ndarray) -> bool:
    """True iff every nonzero label is exactly one connected piece of the ``g = 1`` graph."""
    labelled = node_label > 0
    if not labelled.any():
        return True
    lab, piece = node_label[labelled], pieces[labelled]
    # a bijection iff label -> piece and piece -> label are both functions (each table entry
    # written by one of its nodes must agree with all of them)
    piece_of = np.empty(int(lab.max()) + 1, np.int64)
    piece_of[lab] = piece
    label_of = np.empty(int(piece.max()) + 1, np.int64)
    label_of[piece] = lab
    return bool(np.array_equal(piece_of[lab], piece) and np.array_equal(label_of[piece], lab))


def maximin_path(affinities, i: int, j: int) -> tuple[np.ndarray, int]:
    """The maximum-spanning-tree path between flat nodes ``i`` and ``j`` and its maximin edge.

    Returns:
        ``(edges, mm)``: the flat edge indices along the path from ``i`` to ``j`` and the
        maximin edge ``mm(i, j)`` (the path's lowest-affinity edge, last in Kruskal order).
    """
    aff = check_affinities(affinities)
    n = int(np.prod(aff.shape[1:]))
    if not (0 <= i < n and 0 <= j < n) or i == j:
        raise ValueError(f"i and j must be two different node indices in [0, {n}); got {i}, {j}")
    u, v, _ = affinity_graph(aff.shape[1:])
    tree = np.flatnonzero(maximum_spanning_tree(aff).ravel())
    g = coo_matrix((np.ones(2 * tree.size), (np.r_[u[tree], v[tree]], np.r_[v[tree], u[tree]])), shape=(n, n))
    edge_of = {(int(a), int(b)): int(e) for e, a, b in zip(tree, u[tree], v[tree], strict=True)}
    edge_of.update({(b, a): e for (a, b), e in list(edge_of.items())})
    _, pred = breadth_first_order(g.tocsr(), int(i), directed=False, return_predecessors=True)
    path, node = [], int(j)
    while node != i:
        p = int(pred[node])
        if p < 0:
            raise ValueError(f"nodes {i} and {j} are not connected")
        path.append(edge_of[(p, node)])
        node = p
    path = np.array(path[::-1], dtype=np.int64)
    return path, _lowest_edge(aff.ravel(), path)


def _lowest_edge(a: np.ndarray, path: np.ndarray) -> int:
    """The lowest-affinity edge of a tree path (ties: the largest flat index, last in Kruskal order)."""
    vals = a[path]
    cand = path[vals == vals.min()]
    return int(cand.max())


# ----------------------------------------------------------------------------- loss
def malis_weights(
    affinities, labels, *, constrained: bool = False, gt_affinities=None, normalisation: str = "per_pass"
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised MALIS weights ``(w⁺, w⁻)`` (float64, the affinities' shape).

    ``normalisation="per_pass"``: ``w⁺ = n⁺/Σn⁺``, ``w⁻ = n⁻/Σn⁻``; ``"total"``: both divided
    by ``Σ(n⁺ + n⁻)``. A pass with no pairs gets zero weights.
    """
    if normalisation not in _NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {_NORMALISATIONS}; got {normalisation!r}")
    n_pos, n_neg = malis_counts(affinities, labels, constrained=constrained, gt_affinities=gt_affinities)
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
        raise ValueError(f"gt_affinities must have shape {tuple(affinities.shape)}; got {tuple(gt.shape)}")
    m = torch.ones_like(gt) if mask is None else torch.as_tensor(mask, dtype=affinities.dtype, device=affinities.device)
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

    def __call__(self, affinities: torch.Tensor, labels, gt_affinities: torch.Tensor, mask=None) -> torch.Tensor:
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

    def __call__(self, affinities: torch.Tensor, labels, gt_affinities: torch.Tensor, mask=None) -> torch.Tensor:
        value = self.weight * self.malis_term(affinities, labels)
        if self.bce_weight:
            value = value + self.bce_weight * per_edge_loss(
                affinities, gt_affinities, balanced=self.balanced, mask=mask
            )
        return value
