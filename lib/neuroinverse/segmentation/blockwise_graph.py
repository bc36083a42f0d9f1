"""The region graph of a volume assembled from blocks: one histogram per fragment pair.

The blockwise path (:mod:`neuroinverse.segmentation.blockwise`) never holds the volume; it
holds the region graph. Each block contributes the affinity edges whose ``+1`` voxel lies in
the block (:func:`block_edges`): the edges inside it and, on its low faces, the edges to the
neighbouring blocks, so that every edge of the volume is counted exactly once. A block keeps
not the edges but their histogram per fragment pair (the distinct values, quantised to
``bins`` levels, with their counts; :func:`~neuroinverse.segmentation.pair_histograms`).
:func:`assemble_region_graph` sorts the blocks' histograms (each pair's comes whole from one
block) into the same :class:`~neuroinverse.segmentation.RegionGraph` that
:func:`neuroinverse.segmentation.region_graph` builds from the whole volume with the same
``bins`` (same pairs, same order, the same histogram per pair), on which
:func:`neuroinverse.segmentation.agglomerate_graph`, the merge loop of
:func:`neuroinverse.segmentation.agglomerate` (Funke et al., IEEE TPAMI 41(7), 2019, Sec. 3:
score ``1 − Q`` of the pooled boundary affinities, lowest first), gives the same fragment →
segment maps as on the whole volume's graph, bit for bit.

Size: with ``bins=B`` a pair's histogram holds at most ``B`` entries (a uint16 level and a
uint32 count, 6 bytes) however large its boundary, so the table grows with the number of
fragment pairs, not with the number of voxels or of boundary voxels. With ``bins=None``
(exact quantiles) it keeps every distinct affinity (12 bytes each), i.e. grows with the
boundary area.
"""

from __future__ import annotations

import numpy as np

from .agglomerate import RegionGraph, pair_histograms

__all__ = ["block_edges", "assemble_region_graph"]


def _edge_slices(d: int):
    a = [slice(None)] * 3
    b = [slice(None)] * 3
    a[d], b[d] = slice(1, None), slice(None, -1)
    return tuple(a), tuple(b)


def block_edges(
    fragments: np.ndarray,
    affinities: np.ndarray,
    faces: dict[int, np.ndarray],
    *,
    bins: int | None = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Histograms of the fragment-pair edges of one block: inside it and across its low faces.

    Args:
        fragments: ``(z, y, x)`` global fragment ids of the block.
        affinities: ``(3, z, y, x)`` the block's affinities; channel ``d`` at voxel ``p``
            links ``p`` with its ``−1`` neighbour along axis ``d``.
        faces: for each axis ``d`` on which the block has a lower neighbour, the neighbour's
            last slice of fragment ids (shape of ``fragments`` with axis ``d`` of size 1).
        bins: quantisation levels (:meth:`~neuroinverse.segmentation.RegionGraph.encode`);
            None: exact.

    Returns:
        ``(u, v, values, counts)`` from :func:`~neuroinverse.segmentation.pair_histograms`
        over every edge whose two voxels lie in different fragments (``u < v``).
    """
    bins = RegionGraph.check_bins(bins)
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
            vals.append(RegionGraph.encode(val[cut], bins))
    return pair_histograms(np.concatenate(us), np.concatenate(vs), np.concatenate(vals))


def assemble_region_graph(edges, n_fragments: int, *, bins: int | None = 256) -> RegionGraph:
    """The :class:`RegionGraph` of a volume from its blocks' :func:`block_edges`.

    Fragments never cross a block face, and every edge between two fragments is counted by
    the block that holds its ``+1`` voxel, so each fragment pair's histogram comes whole from
    one block: assembling sorts the blocks' pairs (not their entries) and moves each pair's
    entries as one run, with no sums. The per-entry fragment ids are dropped block by block;
    the peak is about the table plus one index per entry.

    Args:
        edges: iterable of ``(u, v, values, counts)`` histograms, one per block, any order,
            sorted by ``(u, v, value)`` within a block (as :func:`block_edges` gives them).
        n_fragments: ``F``, the largest fragment id.
        bins: the ``bins`` the blocks were made with (recorded in the graph).

    Returns:
        The graph that :func:`neuroinverse.segmentation.region_graph` returns for the whole
        volume's fragments and affinities with the same ``bins``.

    Raises:
        ValueError: if a fragment pair comes from two blocks (fragments crossing a block
            face) or a block's entries are not sorted.
    """
    bins = RegionGraph.check_bins(bins)
    n = int(n_fragments)
    keys, lengths, values, counts = [], [], [], []
    for u, v, val, cnt in edges:  # per block: one key and one length per pair
        key = np.asarray(u, np.int64) * (n + 1) + np.asarray(v, np.int64)
        start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if key.size else []
        keys.append(key[start])
        lengths.append(np.diff(np.append(start, key.size)).astype(np.int64))
        values.append(np.asarray(val))
        counts.append(np.asarray(cnt))
    key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    length = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    first = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)  # in block order
    del keys, lengths
    order = np.argsort(key, kind="stable")
    key, length, first = key[order], length[order], first[order]
    if np.any(key[1:] == key[:-1]):
        raise ValueError(
            "a fragment pair appears in two blocks' tables (fragments must not cross block "
            "faces) or twice in one (its entries are not sorted by pair)"
        )
    offsets = np.concatenate([[0], np.cumsum(length)]).astype(np.int64)
    index = np.repeat(first - offsets[:-1], length) + np.arange(offsets[-1], dtype=np.int64)
    del order, first
    cols = []
    for parts, empty in ((values, np.float64), (counts, np.uint32)):  # one column at a time
        cat = np.concatenate(parts) if parts else np.zeros(0, empty)
        parts.clear()
        cols.append(cat[index])
        del cat
    del index
    val, cnt = cols
    inner = np.ones(max(val.size - 1, 0), bool)
    inner[offsets[1:-1] - 1] = False  # consecutive entries of the same pair
    if np.any(inner & (val[1:] <= val[:-1])):
        raise ValueError("a block's histogram entries are repeated or not sorted by value")
    return RegionGraph(
        n_fragments=n,
        pairs=np.stack([key // (n + 1), key % (n + 1)], axis=1).reshape(-1, 2),
        offsets=offsets,
        values=val,
        counts=cnt,
        bins=bins,
    )
