"""Brute-force references for MALIS and the checks of the fast counts against them.

Maximin affinities by an all-pairs widest-path search, MALIS pair counts by enumerating every
pair on the maximum spanning tree (Turaga et al., "Maximin affinity learning of image
segmentation", NIPS 2009), the 0/1 MALIS loss per threshold, and the bookkeeping identities
the ``malis`` chapter checks (its C2 and C3). Slow by design: small graphs, tests and the
chapter's checks only.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from ..labels import affinity_graph, check_affinities, connected_components
from .kruskal import check_affinities_and_labels
from .malis import malis_counts, maximum_spanning_tree

__all__ = [
    "maximin_affinity_bruteforce",
    "malis_counts_bruteforce",
    "malis_work_bruteforce",
    "misclassified_pairs",
    "count_checks",
]


def maximin_affinity_bruteforce(affinities) -> np.ndarray:
    """Maximin affinities by a Floyd-Warshall max-min recursion over all paths (``O(N³)``).

    ``A_ij ← max(A_ij, min(A_ik, A_kj))`` for every intermediate node ``k``; the reference for
    the ``malis`` chapter's C1. Same output convention as :func:`maximin_affinity`.
    """
    aff = check_affinities(affinities)
    n = int(np.prod(aff.shape[1:]))
    if n > 4096:
        raise ValueError(f"the brute force is O(N³); got N = {n} nodes")
    u, v, valid = affinity_graph(aff.shape[1:])
    w = np.full((n, n), -np.inf)
    a = aff.ravel()
    w[u[valid], v[valid]] = a[valid]
    w[v[valid], u[valid]] = a[valid]
    np.fill_diagonal(w, np.inf)
    for k in range(n):
        np.maximum(w, np.minimum(w[:, k : k + 1], w[k : k + 1, :]), out=w)
    return w


def malis_counts_bruteforce(affinities, labels) -> tuple[np.ndarray, np.ndarray]:
    """Unconstrained counts by one tree-path query per node pair (pure Python; tiny graphs).

    See :func:`_bruteforce_counts_and_work`.
    """
    n_pos, n_neg, _ = _bruteforce_counts_and_work(affinities, labels)
    return n_pos, n_neg


def malis_work_bruteforce(affinities, labels) -> dict[str, int]:
    """The work of :func:`malis_counts_bruteforce`, counted: ``pairs`` queried, tree ``steps``
    climbed by all queries, and ``total = pairs + steps`` (compare :func:`malis_work`)."""
    _, _, work = _bruteforce_counts_and_work(affinities, labels)
    return work


def _bruteforce_counts_and_work(
    affinities, labels
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Unconstrained counts by one tree-path query per node pair, and the work done.

    The maximum spanning tree comes from :func:`scipy.sparse.csgraph.minimum_spanning_tree`
    on weights ``2 − a`` (independent of this module's Kruskal), rooted once. Then every
    pair of labelled nodes climbs the tree to its common ancestor, keeping the
    lowest-affinity edge of the path (the maximin edge), and adds itself to ``n⁺`` or ``n⁻``
    of that edge: the naive all-pairs algorithm, whose cost grows at least as ``N²``. Ties
    are broken as Kruskal's stable order does (the largest flat edge index); with tied
    affinities the tree itself may differ from Kruskal's.
    """
    aff, lab = check_affinities_and_labels(affinities, labels)
    shape = aff.shape
    n = int(np.prod(shape[1:]))
    u, v, valid = affinity_graph(shape[1:])
    a = aff.ravel()
    e_idx = np.flatnonzero(valid)
    g = coo_matrix((2.0 - a[e_idx], (u[e_idx], v[e_idx])), shape=(n, n)).tocsr()
    tree = minimum_spanning_tree(g).tocoo()
    edge_at = {}
    for e in e_idx.tolist():
        edge_at[(int(u[e]), int(v[e]))] = e
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for r, c in zip(tree.row.tolist(), tree.col.tolist(), strict=True):
        e = edge_at.get((r, c), edge_at.get((c, r)))
        adjacency[r].append((c, e))
        adjacency[c].append((r, e))
    a_list = a.tolist()
    lab_list = lab.ravel().tolist()
    # root every tree component: parent, edge to parent, depth
    parent, up_edge, depth = [-1] * n, [-1] * n, [0] * n
    seen = [False] * n
    for root in range(n):
        if seen[root]:
            continue
        seen[root] = True
        stack = [root]
        while stack:
            x = stack.pop()
            for y, e in adjacency[x]:
                if not seen[y]:
                    seen[y], parent[y], up_edge[y], depth[y] = True, x, e, depth[x] + 1
                    stack.append(y)
    n_pos = [0] * a.size
    n_neg = [0] * a.size
    labelled = [i for i in range(n) if lab_list[i] != 0]
    pairs = steps = 0
    for k, i in enumerate(labelled):
        for j in labelled[k + 1 :]:  # one tree-path query per pair: climb to the common ancestor
            x, y, m = i, j, -1
            pairs += 1
            while x != y:
                steps += 1
                if depth[x] < depth[y]:
                    x, y = y, x
                if parent[x] < 0:  # different components: no path
                    m = -2
                    break
                e = up_edge[x]
                if m < 0 or a_list[e] < a_list[m] or (a_list[e] == a_list[m] and e > m):
                    m = e
                x = parent[x]
            if m < 0:
                continue
            if lab_list[i] == lab_list[j]:
                n_pos[m] += 1
            else:
                n_neg[m] += 1
    work = dict(pairs=pairs, steps=steps, total=pairs + steps)
    return (
        np.array(n_pos, dtype=np.int64).reshape(shape),
        np.array(n_neg, dtype=np.int64).reshape(shape),
        work,
    )


def misclassified_pairs(affinities, labels, *, thresholds) -> np.ndarray:
    """Pairs misclassified by ``S_θ``: ``Σ_e n⁺(e)·1(a_e ≤ θ) + n⁻(e)·1(a_e > θ)`` per ``θ``.

    The MALIS 0/1 loss (Turaga et al. 2009); equal to ``RE(θ)·C(N_L, 2)`` (the ``malis``
    chapter's C2). The counts are computed once for all thresholds.

    Returns:
        int64 ``(T,)`` for ``T`` thresholds.
    """
    aff, lab = check_affinities_and_labels(affinities, labels)
    n_pos, n_neg = malis_counts(aff, lab)
    thr = np.asarray(thresholds, dtype=float).ravel()
    return np.array([n_pos[aff <= t].sum() + n_neg[aff > t].sum() for t in thr], dtype=np.int64)


def count_checks(affinities, labels, *, thresholds) -> dict[str, float]:
    """The bookkeeping of the MALIS counts on one graph (the ``malis`` chapter's C2 and C3).

    Returns:
        ``rand_deviation``: max over ``thresholds`` of
        ``|misclassified pairs − RE(θ)·C(N_L,2)| / C(N_L,2)`` with ``RE`` from the contingency
        table of ``S_θ`` (:func:`neuroinverse.metrics.segmentation.rand_error`);
        ``counted_fraction``: edges with ``n⁺ + n⁻ > 0`` divided by ``N − 1``;
        ``tree_fraction``: fraction of those edges in the maximum spanning tree;
        ``identity_violations``: how many of ``Σn⁺ = Σ_l C(N_l,2)`` and
        ``Σ(n⁺+n⁻) = C(N_L,2)`` fail (0, 1 or 2).
    """
    from ..metrics.segmentation import rand_error

    aff, lab = check_affinities_and_labels(affinities, labels)
    thr = np.asarray(thresholds, dtype=float).ravel()
    n_l = int((lab > 0).sum())
    pairs = n_l * (n_l - 1) // 2
    wrong = misclassified_pairs(aff, lab, thresholds=thr)
    dev = max(
        abs(w / pairs - rand_error(lab, connected_components(aff, threshold=t)))
        for w, t in zip(wrong, thr, strict=True)
    )
    n_pos, n_neg = malis_counts(aff, lab)
    counted = (n_pos + n_neg) > 0
    sizes = np.bincount(lab[lab > 0])
    violations = int(n_pos.sum() != (sizes * (sizes - 1) // 2).sum()) + int(
        (n_pos + n_neg).sum() != pairs
    )
    return dict(
        rand_deviation=float(dev),
        counted_fraction=float(counted.sum() / (lab.size - 1)),
        tree_fraction=float(maximum_spanning_tree(aff)[counted].mean()),
        identity_violations=violations,
    )
