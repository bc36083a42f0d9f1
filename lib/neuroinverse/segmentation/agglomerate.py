"""From affinities to segmentations: watershed fragments, region graph, quantile agglomeration.

The inference pipeline of Funke et al., "Large Scale Image Segmentation with Structured Loss
based Deep Learning for Connectome Reconstruction", IEEE TPAMI 41(7), 2019 (arXiv:1709.02974),
Sec. 3 (the ``waterz`` semantics), in a simple form (the book's ``mala`` chapter):

1. :func:`watershed_fragments`: a boundary map ``b = 1 −`` (mean affinity of the edges at a
   voxel, xy edges only for anisotropic data), seeds at the maxima of the distance transform
   of ``b < boundary_threshold``, then **scikit-image's** seeded watershed
   (:func:`skimage.segmentation.watershed`), per section (2-D) or in 3-D. The paper's
   zwatershed-style steepest-ascent fragments are not re-implemented.
2. :func:`region_graph`: every affinity edge whose two voxels lie in different fragments adds
   its affinity to the fragment pair's list (vectorised with ``np.unique`` on pair keys).
3. :func:`agglomerate`: hierarchical merging with a priority queue (``heapq``). The score of
   two adjacent regions is ``1 − Q({a_e})``, a quantile (or the mean) of **all** affinities
   on their current shared boundary; the lowest score is merged while it is below the
   threshold; the boundary lists of parallel edges are combined and rescored after each
   merge (scores need not grow monotonically, so stale heap entries are skipped). The
   quantile is exact (an order statistic of the pooled list), not waterz's 256-bin
   histogram; waterz's ``InitWithMax`` initialisation is not used. One pass produces the
   segmentations of a whole sorted threshold sweep.
4. :func:`threshold_components`: the baseline, connected components of the graph of edges
   with affinity above a threshold, for a sweep of thresholds (one call of
   :func:`neuroinverse.labels.connected_components` per threshold).

Affinity convention (``malis.mknhood3d`` / ``waterz``): ``affinities[d, z, y, x]`` links the
voxel with its −1 neighbour along axis ``d`` (0 = z, 1 = y, 2 = x); values lie in [0, 1].
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import watershed

from .._checks import check_choice, check_positive, check_range, to_numpy
from ..labels import check_affinities, connected_components
from .training import predict_affinities as _predict_batch

__all__ = [
    "QUANTILES",
    "predict_volume_affinities",
    "RegionGraph",
    "Agglomeration",
    "boundary_map",
    "watershed_fragments",
    "seeded_threshold_components",
    "region_graph",
    "agglomerate",
    "agglomerate_graph",
    "threshold_components",
]

#: Named scoring functions: the quantile (in [0, 1]) of the boundary affinities, or "mean".
QUANTILES: dict[str, float | None] = {
    "min": 0.0,
    "p10": 0.10,
    "p25": 0.25,
    "median": 0.5,
    "p75": 0.75,
    "p90": 0.90,
    "max": 1.0,
    "mean": None,
}


def _check_volume_affinities(affinities, *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``affinities`` as float64 ``(3, Z, Y, X)`` in [0, 1] (3-D only), checked by
    :func:`neuroinverse.labels.check_affinities`."""
    aff = to_numpy(affinities, "affinities")
    if aff.ndim != 4:
        raise ValueError(f"affinities must have shape (3, Z, Y, X); got {aff.shape}")
    return check_affinities(aff, spatial_shape=shape)


def predict_volume_affinities(
    model: torch.nn.Module,
    raw,
    *,
    device: str | torch.device = "cpu",
    block: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Affinities of a whole volume from a valid-convolution 3-D U-Net, block by block.

    Stage 0 of the pipeline: the raw volume is reflect-padded by the network's context
    (``model.crop_margin``) so that the output covers every voxel; output blocks of shape
    ``block`` tile the volume (the last block per axis is shifted back to end at the border).
    Each block goes through :func:`neuroinverse.segmentation.training.predict_affinities` (the
    book's one no-grad network call); this function adds only the padding and the tiling.

    Args:
        model: a :class:`~neuroinverse.models.unet.UNet` with ``dims=3``, one input channel,
            three sigmoid outputs and ``padding="valid"`` (or ``"same"``).
        raw: ``(Z, Y, X)`` float image.
        device: where the network runs.
        block: output block shape; default: the whole volume in one pass.

    Returns:
        ``(3, Z, Y, X)`` float32 affinities in [0, 1].
    """
    x = to_numpy(raw, "raw").astype(np.float32)
    if x.ndim != 3:
        raise ValueError(f"raw must have shape (Z, Y, X); got {x.shape}")
    out_shape = (
        x.shape
        if block is None
        else tuple(min(int(b), s) for b, s in zip(block, x.shape, strict=True))
    )
    in_shape = model.valid_input_shape(out_shape) if model.padding == "valid" else out_shape
    model_out = model.output_shape(in_shape)
    margin = model.crop_margin(in_shape)
    pad = [
        (m, m + max(i - 2 * m - s, 0)) for m, i, s in zip(margin, in_shape, x.shape, strict=True)
    ]
    xp = np.pad(x, pad, mode="reflect")
    out = np.zeros((3, *x.shape), np.float32)
    starts = [
        sorted({min(k, max(s - o, 0)) for k in range(0, s, o)})
        for s, o in zip(x.shape, model_out, strict=True)
    ]
    was_training = model.training
    try:
        for z in starts[0]:
            for y in starts[1]:
                for xx in starts[2]:
                    inp = xp[z : z + in_shape[0], y : y + in_shape[1], xx : xx + in_shape[2]]
                    pred = _predict_batch(model, np.ascontiguousarray(inp)[None], device=device)[0]
                    dz, dy, dx = (
                        min(o, s - st)
                        for o, s, st in zip(model_out, x.shape, (z, y, xx), strict=True)
                    )
                    out[:, z : z + dz, y : y + dy, xx : xx + dx] = pred[
                        :, :dz, :dy, :dx
                    ]  # float32 output: exact
    finally:
        model.train(was_training)
    return out


def _check_quantile(quantile: str) -> float | None:
    check_choice(quantile, "quantile", sorted(QUANTILES))
    return QUANTILES[quantile]


def _edge_slices(d: int):
    """Index pair (voxel, its −1 neighbour) for channel ``d`` of a (Z, Y, X) volume."""
    a = [slice(None)] * 3
    b = [slice(None)] * 3
    a[d], b[d] = slice(1, None), slice(None, -1)
    return tuple(a), tuple(b)


def boundary_map(affinities, *, channels: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """``1 −`` the mean affinity of the edges that touch each voxel, over ``channels``.

    Args:
        affinities: ``(3, Z, Y, X)`` in [0, 1].
        channels: affinity channels to use; ``(1, 2)`` (xy only) suits anisotropic data.

    Returns:
        ``(Z, Y, X)`` float64 boundary probability in [0, 1].
    """
    aff = _check_volume_affinities(affinities)
    total = np.zeros(aff.shape[1:])
    count = np.zeros(aff.shape[1:])
    for d in channels:
        a, b = _edge_slices(d)
        total[a] += aff[d][a]
        count[a] += 1
        total[b] += aff[d][a]
        count[b] += 1
    return 1.0 - total / np.maximum(count, 1)


def watershed_fragments(
    affinities,
    *,
    per_section: bool = True,
    boundary_threshold: float = 0.5,
    smooth: float = 1.0,
) -> np.ndarray:
    """Over-segment a volume into fragments with scikit-image's seeded watershed.

    Seeds are the connected plateaus of local maxima of the (Gaussian-smoothed, ``smooth``
    voxels) distance transform of ``b < boundary_threshold``, ``b`` from :func:`boundary_map`.

    Args:
        affinities: ``(3, Z, Y, X)`` in [0, 1].
        per_section: 2-D fragments per z-section (xy affinities only), as for serial-section
            data; ``False`` gives 3-D fragments from all three channels.
        boundary_threshold: boundary level below which a voxel counts as inside a cell.
        smooth: Gaussian σ (voxels, in xy) applied to the distance transform before the maxima.

    Returns:
        ``(Z, Y, X)`` int64 fragment ids ``1..F`` (every voxel belongs to a fragment).
    """
    aff = _check_volume_affinities(affinities)
    check_range(boundary_threshold, "boundary_threshold", 0.0, 1.0, low_open=True, high_open=True)
    check_positive(smooth, "smooth", allow_zero=True)
    b = boundary_map(aff, channels=(1, 2) if per_section else (0, 1, 2))
    inside = b < boundary_threshold
    if per_section:
        dist = np.stack([ndimage.distance_transform_edt(s) for s in inside])
        dist = ndimage.gaussian_filter(dist, sigma=(0.0, smooth, smooth)) if smooth else dist
        footprint = np.zeros((3, 3, 3), bool)
        footprint[1] = True
    else:
        dist = ndimage.distance_transform_edt(inside)
        dist = ndimage.gaussian_filter(dist, sigma=smooth) if smooth else dist
        footprint = ndimage.generate_binary_structure(3, 3)
    peaks = (dist == ndimage.maximum_filter(dist, footprint=footprint)) & inside
    structure = ndimage.generate_binary_structure(3, 1)
    if per_section:
        structure[0] = structure[2] = False
    markers, n = ndimage.label(peaks, structure=structure)
    if n == 0:  # no interior at all: one fragment per section (or one in 3-D)
        markers = np.zeros(b.shape, np.int64)
        if per_section:
            markers[:, 0, 0] = np.arange(1, b.shape[0] + 1)
        else:
            markers[0, 0, 0] = 1
    conn = structure if per_section else ndimage.generate_binary_structure(3, 1)
    return watershed(b, markers, connectivity=conn).astype(np.int64)


@dataclass
class RegionGraph:
    """Fragment adjacency with the affinities of every boundary edge.

    Attributes:
        n_fragments: ``F``; fragment ids are ``1..F``.
        pairs: ``(P, 2)`` int64 adjacent fragment pairs ``u < v``, sorted.
        offsets: ``(P + 1,)`` int64; pair ``k``'s affinities are
            ``values[offsets[k]:offsets[k+1]]``.
        values: ``(E,)`` float64 boundary affinities, sorted within each pair.
    """

    n_fragments: int
    pairs: np.ndarray
    offsets: np.ndarray
    values: np.ndarray

    def edge_values(self, k: int) -> np.ndarray:
        return self.values[self.offsets[k] : self.offsets[k + 1]]


def _check_fragments(fragments, shape=None) -> np.ndarray:
    frag = to_numpy(fragments, "fragments")
    if frag.ndim != 3 or not np.issubdtype(frag.dtype, np.integer):
        raise ValueError(
            f"fragments must be an integer array of shape (Z, Y, X); got {frag.dtype} {frag.shape}"
        )
    if shape is not None and frag.shape != tuple(shape):
        raise ValueError(
            f"fragments of shape {frag.shape} do not match affinities of spatial shape "
            f"{tuple(shape)}"
        )
    if frag.size and frag.min() < 1:
        raise ValueError("fragments must be labelled 1..F (no 0 or negative ids)")
    return frag.astype(np.int64, copy=False)


def region_graph(fragments, affinities) -> RegionGraph:
    """Collect, for each pair of adjacent fragments, the affinities of the edges between them.

    Args:
        fragments: ``(Z, Y, X)`` integer ids ``≥ 1``.
        affinities: ``(3, Z, Y, X)`` in [0, 1] (see the module docstring for the convention).

    Returns:
        The :class:`RegionGraph`.
    """
    aff = _check_volume_affinities(affinities)
    frag = _check_fragments(fragments, aff.shape[1:])
    n = int(frag.max()) if frag.size else 0
    us, vs, vals = [], [], []
    for d in range(3):
        a, b = _edge_slices(d)
        fa, fb = frag[a], frag[b]
        cut = fa != fb
        us.append(np.minimum(fa[cut], fb[cut]))
        vs.append(np.maximum(fa[cut], fb[cut]))
        vals.append(aff[d][a][cut])
    u, v, val = np.concatenate(us), np.concatenate(vs), np.concatenate(vals)
    key = u * (n + 1) + v
    order = np.lexsort((val, key))
    key, val = key[order], val[order]
    uniq, start = np.unique(key, return_index=True)
    offsets = np.append(start, key.size).astype(np.int64)
    pairs = np.stack([uniq // (n + 1), uniq % (n + 1)], axis=1).astype(np.int64)
    return RegionGraph(n_fragments=n, pairs=pairs, offsets=offsets, values=val)


def _score(sorted_values: np.ndarray, q: float | None) -> float:
    """``1 − Q_q`` of a sorted list: the order statistic at ``floor(q·(n−1))``, or ``1 − mean``."""
    if q is None:
        return 1.0 - float(sorted_values.mean())
    return 1.0 - float(sorted_values[int(np.floor(q * (sorted_values.size - 1)))])


@dataclass
class Agglomeration:
    """Segmentations of one merge run at a sweep of thresholds.

    Attributes:
        fragments: ``(Z, Y, X)`` int64 fragment ids ``1..F``.
        thresholds: ``(T,)`` sorted increasing score thresholds (larger merges more).
        maps: ``(T, F + 1)`` int64; ``maps[i, f]`` is the segment id of fragment ``f`` at
            ``thresholds[i]`` (``maps[:, 0] = 0`` is unused).
        merge_scores: ``(M,)`` the score of each merge, in merge order.
    """

    fragments: np.ndarray
    thresholds: np.ndarray
    maps: np.ndarray
    merge_scores: np.ndarray

    def segmentation(self, i: int) -> np.ndarray:
        """``(Z, Y, X)`` segmentation at ``thresholds[i]``."""
        return self.maps[i][self.fragments]

    def n_segments(self) -> np.ndarray:
        """``(T,)`` number of segments at each threshold."""
        return np.array([np.unique(m[1:]).size for m in self.maps])


def agglomerate(
    affinities,
    fragments,
    *,
    thresholds,
    quantile: str = "median",
) -> Agglomeration:
    """Merge fragments greedily by a quantile of their boundary affinities (Funke et al., Sec. 3).

    The score of adjacent regions ``u, v`` is ``s(u, v) = 1 − Q({a_e : e between u and v})``
    (:data:`QUANTILES`: ``"median"``, ``"p75"``, ``"mean"``, ...). The region pair of lowest
    score is merged while that score is ``< t``; after a merge the boundary affinities of
    parallel edges are pooled and rescored. Thresholds are processed in increasing order,
    continuing from the previous one, so the whole sweep is one merge run.

    Args:
        affinities: ``(3, Z, Y, X)`` in [0, 1].
        fragments: ``(Z, Y, X)`` integer fragment ids ``1..F`` (e.g. :func:`watershed_fragments`).
        thresholds: score thresholds (any order; they are sorted; finite).
        quantile: name of the boundary statistic, a key of :data:`QUANTILES`.

    Returns:
        The :class:`Agglomeration` (one segmentation per sorted threshold).
    """
    _check_quantile(quantile)  # before the region graph is built
    thr = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if thr.size == 0 or not np.all(np.isfinite(thr)):
        raise ValueError(
            f"thresholds must be a non-empty sequence of finite numbers; got {thresholds!r}"
        )
    graph = region_graph(fragments, affinities)
    frag = _check_fragments(fragments)
    thr, maps, merges = agglomerate_graph(graph, thresholds=thr, quantile=quantile)
    return Agglomeration(fragments=frag, thresholds=thr, maps=maps, merge_scores=merges)


def agglomerate_graph(
    graph: RegionGraph, *, thresholds, quantile: str = "median"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The merge loop of :func:`agglomerate` on a region graph, without the volume.

    Used by :func:`agglomerate` on the graph of a whole volume and by the blockwise path on
    the graph assembled from blocks (:mod:`neuroinverse.segmentation.blockwise_graph`): a heap
    of ``(score, stamp, u, v)`` with stamps in pair order (ties broken the same way), sorted
    boundary lists pooled after each merge.

    Args:
        graph: the :class:`RegionGraph` (:func:`region_graph` or the blockwise assembly).
        thresholds: score thresholds (sorted here; finite, non-empty).
        quantile: a key of :data:`QUANTILES`.

    Returns:
        ``(thresholds, maps, merge_scores)``: the sorted ``(T,)`` thresholds, the ``(T, F + 1)``
        int64 fragment → segment maps, and the ``(M,)`` scores in merge order.
    """
    q = _check_quantile(quantile)
    thr = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if thr.size == 0 or not np.all(np.isfinite(thr)):
        raise ValueError(
            f"thresholds must be a non-empty sequence of finite numbers; got {thresholds!r}"
        )
    n = graph.n_fragments
    parent = np.arange(n + 1)
    # adjacency: region -> {neighbour: sorted affinity array}; heap of (score, stamp, u, v)
    nbrs: list[dict[int, np.ndarray]] = [dict() for _ in range(n + 1)]
    stamp: dict[tuple[int, int], int] = {}
    heap: list[tuple[float, int, int, int]] = []
    counter = 0
    for k, (u, v) in enumerate(graph.pairs.tolist()):
        vals = graph.edge_values(k)
        nbrs[u][v] = vals
        nbrs[v][u] = vals
        stamp[(u, v)] = counter
        heap.append((_score(vals, q), counter, u, v))
        counter += 1
    heapq.heapify(heap)

    def roots() -> np.ndarray:
        r = parent.copy()
        while True:
            nxt = r[r]
            if np.array_equal(nxt, r):
                return r
            r = nxt

    maps = np.zeros((thr.size, n + 1), np.int64)
    merges: list[float] = []
    ti = 0
    while ti < thr.size:
        while heap and stamp.get((heap[0][2], heap[0][3])) != heap[0][1]:
            heapq.heappop(heap)  # stale entry: a merged region or a rescored edge
        if not heap or heap[0][0] >= thr[ti]:
            maps[ti] = roots()
            ti += 1
            continue
        s, _, u, v = heapq.heappop(heap)
        del stamp[(u, v)]
        merges.append(s)
        # keep the region with more neighbours; fold the other one into it
        if len(nbrs[u]) < len(nbrs[v]):
            u, v = v, u
        parent[v] = u
        del nbrs[u][v]
        del nbrs[v][u]
        for w, vals in nbrs[v].items():
            del nbrs[w][v]
            stamp.pop((min(v, w), max(v, w)), None)
            if w in nbrs[u]:
                vals = np.sort(np.concatenate([nbrs[u][w], vals]), kind="stable")
            nbrs[u][w] = vals
            nbrs[w][u] = vals
            key = (min(u, w), max(u, w))
            stamp[key] = counter
            heapq.heappush(heap, (_score(vals, q), counter, key[0], key[1]))
            counter += 1
        nbrs[v] = {}
    return thr, maps, np.asarray(merges)


def _check_thresholds(thresholds) -> np.ndarray:
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    if thr.size == 0 or not np.all(np.isfinite(thr)):
        raise ValueError(
            f"thresholds must be a non-empty sequence of finite numbers; got {thresholds!r}"
        )
    return thr


def threshold_components(affinities, *, thresholds) -> list[np.ndarray]:
    """Connected components of the graph of edges with affinity ``> θ``, for each ``θ``.

    The plain baseline of the ``mala`` chapter, through
    :func:`neuroinverse.labels.connected_components`. Voxels with no kept
    edge are singleton segments.

    Args:
        affinities: ``(3, Z, Y, X)`` in [0, 1].
        thresholds: affinity thresholds ``θ`` (smaller merges more), in the order given.

    Returns:
        One ``(Z, Y, X)`` int64 segmentation (ids ``1..K``) per threshold.
    """
    aff = _check_volume_affinities(affinities)
    thr = _check_thresholds(thresholds)
    return [connected_components(aff, threshold=float(t)) for t in thr]


def seeded_threshold_components(affinities, *, thresholds) -> list[np.ndarray]:
    """Connected components of thresholded affinities, grown over the unassigned voxels.

    For each ``θ``: the components of the edges with affinity ``> θ`` that hold at least two
    voxels are the seeds; every other voxel (a singleton of :func:`threshold_components`) is
    given to a seed by a seeded watershed (scikit-image, 3-D, face connectivity) on
    :func:`boundary_map`, i.e. to the component it reaches first while flooding from low to
    high boundary probability. No voxel stays a singleton unless no component has two
    voxels (then the plain components are returned).

    Args:
        affinities: ``(3, Z, Y, X)`` in [0, 1].
        thresholds: affinity thresholds ``θ``, in the order given.

    Returns:
        One ``(Z, Y, X)`` int64 segmentation (ids ``1..K``) per threshold.
    """
    aff = _check_volume_affinities(affinities)
    thr = _check_thresholds(thresholds)
    bmap = boundary_map(aff)
    out = []
    for t in thr:
        seeds = connected_components(aff, threshold=float(t), min_size=2)
        if seeds.max() == 0:
            out.append(connected_components(aff, threshold=float(t)))
            continue
        if seeds.min() > 0:
            out.append(seeds)
            continue
        out.append(watershed(bmap, markers=seeds).astype(np.int64))
    return out
