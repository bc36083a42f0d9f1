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
:mod:`neuroinverse.segmentation.malis_reference`, and the weights, the loss and the training
losses built on these counts in :mod:`neuroinverse.segmentation.malis_loss`.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

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
    "maximin_path",
]


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
def malis_counts(
    affinities, labels, *, constrained: bool = False, gt_affinities=None
) -> tuple[np.ndarray, np.ndarray]:
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
    n_pos, n_neg, _ = _malis_counts_and_work(
        affinities, labels, constrained=constrained, gt_affinities=gt_affinities
    )
    return n_pos, n_neg


def malis_work(
    affinities, labels, *, constrained: bool = False, gt_affinities=None
) -> dict[str, int]:
    """The work :func:`malis_counts` does on these inputs, counted, not timed.

    Deterministic measures of the algorithm's cost (Funke et al. 2019, Sec. 2.2: quasi-linear
    in the number of voxels), for scaling laws that timing noise cannot tilt.

    Returns:
        ``edges`` visited by the Kruskal passes (both passes when ``constrained``), union-find
        ``hops`` (pointer steps of every find), ``merges`` (unions, or label-map entries moved
        by the label-count form), and ``total = edges + hops + merges``.
    """
    _, _, work = _malis_counts_and_work(
        affinities, labels, constrained=constrained, gt_affinities=gt_affinities
    )
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
        pieces = (
            label_components(u, v, g, n) - 1
        )  # connected_components of the g = 1 graph, 0-based
        if _pieces_match(pieces, node_label, g):
            # size-only passes (Funke et al. 2019): positive over g = 1 edges, negative from
            # the pieces pre-merged
            labelled = (node_label > 0).astype(np.int64)
            n_pos = size_pass(valid & g, np.arange(n, dtype=np.int64), labelled)
            rep = np.full(pieces.max() + 1, n, dtype=np.int64)
            np.minimum.at(
                rep, pieces, np.arange(n, dtype=np.int64)
            )  # a piece's first node represents it
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
    g = coo_matrix(
        (np.ones(2 * tree.size), (np.r_[u[tree], v[tree]], np.r_[v[tree], u[tree]])), shape=(n, n)
    )
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
    """The lowest-affinity edge of a tree path (ties: the largest flat index, last in Kruskal
    order)."""
    vals = a[path]
    cand = path[vals == vals.min()]
    return int(cand.max())
