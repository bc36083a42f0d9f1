"""Kruskal's algorithm with union-find on affinity graphs: the compiled kernels of MALIS.

A catalogue of same-shaped pieces: Kruskal passes over edges sorted by decreasing affinity
(the order in which the maximin edges of Turaga et al., "Maximin affinity learning of image
segmentation", NIPS 2009, are met), one returning the maximum spanning tree, one counting
pair sizes for the constrained two-pass MALIS of Funke et al., IEEE TPAMI 41(7), 2019,
Sec. 2.2, and one counting label pairs with sparse per-root label maps; plus the stable edge
order, label compaction and the argument check they share. The maths is in
:mod:`neuroinverse.segmentation.malis`. The kernels run on the CPU with ``numba``
(``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.typed import Dict

from .._checks import check_labels
from ..labels import check_affinities

__all__ = [
    "kruskal_tree",
    "kruskal_size_counts",
    "kruskal_label_counts",
    "edge_order",
    "stable_argsort",
    "check_affinities_and_labels",
    "compact_labels",
]


# ----------------------------------------------------------------------------- numba kernels
@numba.njit(cache=True)
def _find(parent, x, work):
    """Root of ``x`` with full path compression; adds the pointer steps taken to ``work[0]``."""
    root = x
    while parent[root] != root:
        root = parent[root]
        work[0] += 1
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@numba.njit(cache=True)
def kruskal_tree(order, u, v, n_nodes):
    """Mark the edges (in ``order``) that join two different sets: the maximum spanning forest."""
    parent = np.arange(n_nodes)
    rank = np.zeros(n_nodes, np.int64)
    in_tree = np.zeros(u.shape[0], np.bool_)
    work = np.zeros(1, np.int64)
    for k in range(order.shape[0]):
        e = order[k]
        a = _find(parent, u[e], work)
        b = _find(parent, v[e], work)
        if a == b:
            continue
        in_tree[e] = True
        if rank[a] < rank[b]:
            a, b = b, a
        parent[b] = a
        if rank[a] == rank[b]:
            rank[a] += 1
    return in_tree


@numba.njit(cache=True)
def kruskal_size_counts(order, u, v, parent_init, size_init):
    """Kruskal with set sizes only: ``count(e) = |A|·|B|`` for each merging edge.

    Returns ``(counts, hops, unions)``: the counts per edge, the union-find pointer steps
    taken by all finds, and the number of unions (deterministic measures of the work).

    The edge ends are gathered in Kruskal order first (independent loads, cache friendly),
    then the union-find runs with path halving and union by size; the counts depend only on
    the set sizes, not on which root survives.
    """
    m = order.shape[0]
    us = np.empty(m, np.int64)
    vs = np.empty(m, np.int64)
    for k in range(m):
        us[k] = u[order[k]]
        vs[k] = v[order[k]]
    parent = parent_init.copy()
    size = size_init.copy()
    counts = np.zeros(u.shape[0], np.int64)
    hops = 0  # union-find pointer steps, the algorithm's work beside the m edges visited
    unions = 0
    for k in range(m):
        a = us[k]
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
            hops += 1
        b = vs[k]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
            hops += 1
        if a == b:
            continue
        sa, sb = size[a], size[b]
        counts[order[k]] = sa * sb
        if sa < sb:
            a, b = b, a
        parent[b] = a
        size[a] = sa + sb
        unions += 1
    return counts, hops, unions


@numba.njit(cache=True)
def kruskal_label_counts(order, u, v, node_label, n_labels):
    """Kruskal with a sparse label → count map per root (Turaga et al. 2009, all pairs).

    ``node_label`` holds 0 (unlabelled) or 1..n_labels. Returns ``(n_pos, n_neg, hops,
    moves)``: the counts per edge, the union-find pointer steps of all finds, and the map
    entries moved by all merges (deterministic measures of the work).
    """
    n_nodes = node_label.shape[0]
    n_e = u.shape[0]
    n_pos = np.zeros(n_e, np.int64)
    n_neg = np.zeros(n_e, np.int64)
    parent = np.arange(n_nodes)
    key_base = n_labels + 1
    # one map entry per (root, label); entries are linked lists hanging off each root
    head = np.full(n_nodes, -1, np.int64)
    n_entries = np.zeros(n_nodes, np.int64)
    total = np.zeros(n_nodes, np.int64)
    ent_label = np.zeros(n_nodes, np.int64)
    ent_count = np.zeros(n_nodes, np.int64)
    ent_next = np.full(n_nodes, -1, np.int64)
    where = Dict.empty(key_type=types.int64, value_type=types.int64)
    for i in range(n_nodes):
        lab = node_label[i]
        if lab > 0:
            ent_label[i] = lab
            ent_count[i] = 1
            head[i] = i
            n_entries[i] = 1
            total[i] = 1
            where[i * key_base + lab] = i
    work = np.zeros(1, np.int64)
    moves = 0
    for k in range(order.shape[0]):
        e = order[k]
        a = _find(parent, u[e], work)
        b = _find(parent, v[e], work)
        if a == b:
            continue
        if n_entries[a] < n_entries[b]:  # merge the smaller map into the larger
            a, b = b, a
        pos = 0
        j = head[b]
        while j != -1:
            nxt = ent_next[j]
            lab = ent_label[j]
            c = ent_count[j]
            key_a = a * key_base + lab
            if key_a in where:
                ia = where[key_a]
                pos += ent_count[ia] * c
                ent_count[ia] += c
            else:
                where[key_a] = j
                ent_next[j] = head[a]
                head[a] = j
                n_entries[a] += 1
            where.pop(b * key_base + lab)
            j = nxt
            moves += 1
        n_pos[e] = pos
        n_neg[e] = total[a] * total[b] - pos
        total[a] += total[b]
        head[b] = -1
        n_entries[b] = 0
        parent[b] = a
    return n_pos, n_neg, work[0], moves


# ----------------------------------------------------------------------------- helpers
def edge_order(key: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Existing edges in decreasing ``key``; ties by flat edge index (stable sort)."""
    idx = np.flatnonzero(valid)
    return idx[stable_argsort(-key[idx])].astype(np.int64)


def stable_argsort(x: np.ndarray) -> np.ndarray:
    """``np.argsort(x, kind="stable")``, faster: numpy's (vectorised, unstable) default sort,
    then the runs of equal values, if any, put back in index order. The same permutation."""
    order = np.argsort(x)
    xs = x[order]
    tie = xs[1:] == xs[:-1]
    if tie.any():
        in_run = np.zeros(xs.size, bool)
        in_run[1:] |= tie
        in_run[:-1] |= tie
        pos = np.flatnonzero(in_run)
        run = np.cumsum(np.r_[True, ~tie])[pos]
        sub = order[pos]
        order[pos] = sub[np.lexsort((sub, run))]
    return order


def check_affinities_and_labels(affinities, labels) -> tuple[np.ndarray, np.ndarray]:
    lab = check_labels(labels, ndims=(2, 3))
    aff = check_affinities(affinities)
    if aff.shape[0] != lab.ndim or aff.shape[1:] != lab.shape:
        raise ValueError(
            f"labels of shape {lab.shape} do not match the affinities of shape {aff.shape} "
            f"(expected labels of shape {aff.shape[1:]})"
        )
    return aff, lab


def compact_labels(lab: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered to 0 (unlabelled) and 1..K (in increasing id order), flattened."""
    flat = lab.ravel()
    top = int(flat.max()) if flat.size else 0
    if flat.size and flat.min() >= 0 and top <= 4 * flat.size + 1024:
        # small non-negative ids: a lookup table instead of np.unique's sort (same result)
        present = np.bincount(flat, minlength=top + 1) > 0
        present[0] = True  # 0 stays 0 whether or not it occurs
        rank = np.cumsum(present) - 1
        return rank[flat].astype(np.int64), int(np.count_nonzero(present[1:]))
    ids, inv = np.unique(flat, return_inverse=True)
    inv = inv.ravel().astype(np.int64)
    if ids[0] != 0:
        inv += 1
    return inv, int(ids.size - (ids[0] == 0))
