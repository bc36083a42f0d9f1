"""The region graph of a volume assembled from blocks, and quantile merging on a region graph.

The blockwise path (:mod:`neuroinverse.segmentation.blockwise`) never holds the volume; it
holds the region graph. Each block contributes the affinity edges whose ``+1`` voxel lies in
the block (:func:`block_edges`): the edges inside it and, on its low faces, the edges to the
neighbouring blocks, so that every edge of the volume is counted exactly once.
:func:`assemble_region_graph` sorts them into the same :class:`RegionGraph` that
:func:`neuroinverse.segmentation.region_graph` builds from the whole volume (same pairs, same
order, the same sorted affinity list per pair), on which
:func:`neuroinverse.segmentation.agglomerate_graph`, the merge loop of
:func:`neuroinverse.segmentation.agglomerate` (Funke et al., IEEE TPAMI 41(7), 2019, Sec. 3:
score ``1 − Q`` of the pooled boundary affinities, lowest first, exact order statistics), gives
the same fragment → segment maps as on the whole volume's graph, bit for bit.

The table keeps every boundary affinity (the exact quantile needs them): its size grows with
the area of the fragments' faces, not with the volume, and it must fit in one process's
memory (8 bytes per boundary edge plus 16 per fragment pair).
"""

from __future__ import annotations

import numpy as np

from .agglomerate import RegionGraph

__all__ = ["block_edges", "assemble_region_graph"]


def _edge_slices(d: int):
    a = [slice(None)] * 3
    b = [slice(None)] * 3
    a[d], b[d] = slice(1, None), slice(None, -1)
    return tuple(a), tuple(b)


def block_edges(
    fragments: np.ndarray, affinities: np.ndarray, faces: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fragment-pair edges of one block: inside it, and across its low faces.

    Args:
        fragments: ``(z, y, x)`` global fragment ids of the block.
        affinities: ``(3, z, y, x)`` the block's affinities; channel ``d`` at voxel ``p``
            links ``p`` with its ``−1`` neighbour along axis ``d``.
        faces: for each axis ``d`` on which the block has a lower neighbour, the neighbour's
            last slice of fragment ids (shape of ``fragments`` with axis ``d`` of size 1).

    Returns:
        ``(u, v, values)``: ``u < v`` int64 fragment ids and the affinity of every edge
        whose two voxels lie in different fragments.
    """
    us, vs, vals = [], [], []
    for d in range(3):
        a, b = _edge_slices(d)
        pairs = [(fragments[a], fragments[b], affinities[d][a])]
        if d in faces:
            first = [slice(None)] * 3
            first[d] = slice(0, 1)
            first = tuple(first)
            pairs.append((fragments[first], faces[d], affinities[d][first]))
        for fa, fb, val in pairs:
            cut = fa != fb
            us.append(np.minimum(fa[cut], fb[cut]).astype(np.int64))
            vs.append(np.maximum(fa[cut], fb[cut]).astype(np.int64))
            vals.append(val[cut])
    return np.concatenate(us), np.concatenate(vs), np.concatenate(vals)


def assemble_region_graph(edges, n_fragments: int) -> RegionGraph:
    """The :class:`RegionGraph` of a volume from its blocks' :func:`block_edges`.

    Args:
        edges: iterable of ``(u, v, values)`` triples, one per block, in any order.
        n_fragments: ``F``, the largest fragment id.

    Returns:
        The graph that :func:`neuroinverse.segmentation.region_graph` returns for the whole
        volume's fragments and affinities (values as float64).
    """
    edges = list(edges)
    n = int(n_fragments)
    if edges:
        u = np.concatenate([e[0] for e in edges]).astype(np.int64)
        v = np.concatenate([e[1] for e in edges]).astype(np.int64)
        val = np.concatenate([e[2] for e in edges]).astype(np.float64)
    else:
        u = v = np.zeros(0, np.int64)
        val = np.zeros(0)
    key = u * (n + 1) + v
    order = np.lexsort((val, key))
    key, val = key[order], val[order]
    uniq, start = np.unique(key, return_index=True)
    offsets = np.append(start, key.size).astype(np.int64)
    pairs = np.stack([uniq // (n + 1), uniq % (n + 1)], axis=1).astype(np.int64)
    return RegionGraph(n_fragments=n, pairs=pairs, offsets=offsets, values=val)
