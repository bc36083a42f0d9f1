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
   its affinity to the fragment pair's histogram (:func:`pair_histograms`: the distinct
   values on the pair's boundary with their counts, vectorised with one ``np.lexsort``).
   With ``bins=None`` the values are the affinities themselves (the histogram is the sorted
   list, run-length coded, and the quantile exact); with ``bins=B`` they are first rounded
   to the ``B`` levels ``k / (B − 1)`` and stored as uint16 ``k`` with a uint32 count (6
   bytes an entry), so a pair's histogram never holds more than ``B`` entries whatever the
   size of its boundary, as waterz's 256-bin histograms (for affinities stored as
   ``uint8 / 255``, ``bins=256`` loses nothing).
3. :func:`agglomerate`: hierarchical merging with a priority queue (``heapq``). The score of
   two adjacent regions is ``1 − Q({a_e})``, a quantile (or the mean) of **all** affinities
   on their current shared boundary; the lowest score is merged while it is below the
   threshold; the histograms of parallel edges are added and rescored after each merge
   (scores need not grow monotonically, so stale heap entries are skipped). The quantile
   is an order statistic of the pooled (exact or quantised) values; waterz's
   ``InitWithMax`` initialisation is not used. One pass produces the segmentations of a
   whole sorted threshold sweep.
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
    "quantise",
    "pair_histograms",
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
    """Fragment adjacency with the histogram of the boundary affinities of every pair.

    Attributes:
        n_fragments: ``F``; fragment ids are ``1..F``.
        pairs: ``(P, 2)`` int64 adjacent fragment pairs ``u < v``, sorted.
        offsets: ``(P + 1,)`` int64; pair ``k``'s histogram is entries
            ``offsets[k]:offsets[k+1]`` of ``values`` and ``counts``.
        values: ``(K,)`` the distinct boundary values of each pair, increasing within the
            pair, as :meth:`encode` stores them: float64 affinities when ``bins`` is None,
            else uint16 levels ``k`` that stand for the affinity ``k / (bins − 1)``.
        counts: ``(K,)`` unsigned number of boundary edges that carry each value.
        bins: ``None`` for exact values, else the number of quantisation levels.
    """

    n_fragments: int
    pairs: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    bins: int | None = None

    def histogram(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair ``k``'s ``(values, counts)`` as stored (levels if ``bins`` is set)."""
        sl = slice(self.offsets[k], self.offsets[k + 1])
        return self.values[sl], self.counts[sl]

    def affinities(self, values) -> np.ndarray:
        """Stored ``values`` as float64 affinities (:meth:`encode` undone)."""
        v = np.asarray(values)
        return v.astype(np.float64) if self.bins is None else v / (self.bins - 1)

    def edge_values(self, k: int) -> np.ndarray:
        """Pair ``k``'s boundary affinities as one sorted list (each value repeated)."""
        values, counts = self.histogram(k)
        return np.repeat(self.affinities(values), counts.astype(np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes of the table's arrays."""
        return sum(a.nbytes for a in (self.pairs, self.offsets, self.values, self.counts))

    @staticmethod
    def encode(values, bins: int | None) -> np.ndarray:
        """Affinities in [0, 1] as the table stores them: float64 (``bins`` None) or the
        uint16 level ``rint(a · (bins − 1))``, whose affinity is :func:`quantise`'s."""
        v = np.asarray(values, dtype=np.float64)
        b = RegionGraph.check_bins(bins)
        if b is None:
            return v
        if v.size and not (v.min() >= 0.0 and v.max() <= 1.0):  # NaN fails both
            raise ValueError("affinities must lie in [0, 1] (no NaN) to be quantised")
        return np.rint(v * (b - 1)).astype(np.uint16)

    @staticmethod
    def check_bins(bins) -> int | None:
        """``bins`` checked: None (exact values) or an integer in [2, 65536]."""
        if bins is None:
            return None
        if (
            isinstance(bins, bool)
            or not isinstance(bins, (int, np.integer))
            or not 2 <= bins <= 65536
        ):
            raise ValueError(f"bins must be None (exact) or an integer in [2, 65536]; got {bins!r}")
        return int(bins)

    @classmethod
    def from_histograms(cls, n_fragments, u, v, values, counts, bins=None) -> RegionGraph:
        """The graph of ``F = n_fragments`` fragments from :func:`pair_histograms`' output."""
        new = np.ones(u.size, bool)
        new[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        start = np.flatnonzero(new)
        return cls(
            n_fragments=int(n_fragments),
            pairs=np.stack([u[start], v[start]], axis=1).reshape(-1, 2),
            offsets=np.append(start, u.size).astype(np.int64),
            values=values,
            counts=counts,
            bins=cls.check_bins(bins),
        )


def quantise(values, bins: int | None) -> np.ndarray:
    """Affinities in [0, 1] rounded to the ``bins`` levels ``k / (bins − 1)`` (float64;
    unchanged if ``bins`` is None): the affinities a quantised :class:`RegionGraph` stands
    for. With ``bins=256``, values already of the form ``k / 255`` are kept."""
    b = RegionGraph.check_bins(bins)
    v = RegionGraph.encode(values, b)
    return v if b is None else v / (b - 1)


def pair_histograms(u, v, values, counts=None) -> tuple[np.ndarray, ...]:
    """Sum a list of weighted boundary values into one histogram per fragment pair.

    Args:
        u, v: ``(E,)`` fragment ids of each entry, ``u < v``.
        values: ``(E,)`` values as :meth:`RegionGraph.encode` gives them (dtype kept).
        counts: ``(E,)`` integer weights; default 1 each (uint32, one per boundary edge).

    Returns:
        ``(u, v, values, counts)``, one entry per distinct ``(u, v, value)``, sorted by
        ``u``, then ``v``, then ``value``, with the counts summed.
    """
    u = np.asarray(u, dtype=np.int64).ravel()
    v = np.asarray(v, dtype=np.int64).ravel()
    val = np.asarray(values).ravel()
    cnt = np.ones(u.size, np.uint32) if counts is None else np.asarray(counts).ravel()
    if not u.size == v.size == val.size == cnt.size:
        raise ValueError(
            f"u, v, values and counts must have the same length; got {u.size}, {v.size}, "
            f"{val.size}, {cnt.size}"
        )
    order = np.lexsort((val, v, u))
    u, v, val, cnt = u[order], v[order], val[order], cnt[order]
    new = np.ones(u.size, bool)
    new[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1]) | (val[1:] != val[:-1])
    start = np.flatnonzero(new)
    total = np.add.reduceat(cnt, start, dtype=cnt.dtype) if start.size else cnt[:0]
    return u[start], v[start], val[start], total


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


def region_graph(fragments, affinities, *, bins: int | None = None) -> RegionGraph:
    """Histogram, for each pair of adjacent fragments, the affinities of the edges between them.

    Args:
        fragments: ``(Z, Y, X)`` integer ids ``≥ 1``.
        affinities: ``(3, Z, Y, X)`` in [0, 1] (see the module docstring for the convention).
        bins: ``None`` keeps every distinct affinity (exact quantiles); an integer quantises
            them to that many levels first (:func:`quantise`), which bounds each pair's
            histogram by ``bins`` entries.

    Returns:
        The :class:`RegionGraph`.
    """
    bins = RegionGraph.check_bins(bins)
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
        vals.append(RegionGraph.encode(aff[d][a][cut], bins))
    hist = pair_histograms(np.concatenate(us), np.concatenate(vs), np.concatenate(vals))
    return RegionGraph.from_histograms(n, *hist, bins)


def _score(values: np.ndarray, counts: np.ndarray, q: float | None, bins: int | None) -> float:
    """``1 − Q_q`` of a histogram: the order statistic at ``floor(q·(n−1))`` of the ``n``
    pooled values, or ``1 −`` their mean (levels divided by ``bins − 1`` when quantised)."""
    if q is None:
        m = float(np.dot(values.astype(np.float64), counts) / counts.sum())
    else:
        cum = np.cumsum(counts)
        m = float(values[np.searchsorted(cum, int(np.floor(q * (cum[-1] - 1))), side="right")])
    return 1.0 - (m if bins is None else m / (bins - 1))


def _scores(graph: RegionGraph, q: float | None) -> np.ndarray:
    """:func:`_score` of every pair of ``graph`` at once (the same order statistics)."""
    if len(graph.pairs) == 0:
        return np.zeros(0)
    start = graph.offsets[:-1]
    if q is None:
        total = np.add.reduceat(graph.counts.astype(np.int64), start)
        m = np.add.reduceat(graph.values.astype(np.float64) * graph.counts, start) / total
    else:
        cum = np.cumsum(graph.counts, dtype=np.int64)
        base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0)
        total = cum[graph.offsets[1:] - 1] - base
        idx = np.floor(q * (total - 1)).astype(np.int64)
        m = graph.values[np.searchsorted(cum, base + idx, side="right")].astype(np.float64)
    return 1.0 - (m if graph.bins is None else m / (graph.bins - 1))


def _pool(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]):
    """The sum of two histograms ``(values, counts)``."""
    val = np.concatenate([a[0], b[0]])
    cnt = np.concatenate([a[1], b[1]]).astype(np.int64)  # merged regions: no overflow
    order = np.argsort(val, kind="stable")
    val, cnt = val[order], cnt[order]
    new = np.ones(val.size, bool)
    new[1:] = val[1:] != val[:-1]
    start = np.flatnonzero(new)
    return val[start], np.add.reduceat(cnt, start)


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
    bins: int | None = None,
) -> Agglomeration:
    """Merge fragments greedily by a quantile of their boundary affinities (Funke et al., Sec. 3).

    The score of adjacent regions ``u, v`` is ``s(u, v) = 1 − Q({a_e : e between u and v})``
    (:data:`QUANTILES`: ``"median"``, ``"p75"``, ``"mean"``, ...). The region pair of lowest
    score is merged while that score is ``< t``; after a merge the boundary affinities of
    parallel edges are pooled and rescored. Thresholds are processed in increasing order,
    continuing from the previous one, so the whole sweep is one merge run. With ``bins`` the
    affinities are quantised first (:func:`region_graph`), as the blockwise path does.

    Args:
        affinities: ``(3, Z, Y, X)`` in [0, 1].
        fragments: ``(Z, Y, X)`` integer fragment ids ``1..F`` (e.g. :func:`watershed_fragments`).
        thresholds: score thresholds (any order; they are sorted; finite).
        quantile: name of the boundary statistic, a key of :data:`QUANTILES`.
        bins: ``None`` for exact quantiles, or the number of quantisation levels.

    Returns:
        The :class:`Agglomeration` (one segmentation per sorted threshold).
    """
    _check_quantile(quantile)  # before the region graph is built
    thr = np.sort(np.asarray(thresholds, dtype=np.float64).ravel())
    if thr.size == 0 or not np.all(np.isfinite(thr)):
        raise ValueError(
            f"thresholds must be a non-empty sequence of finite numbers; got {thresholds!r}"
        )
    graph = region_graph(fragments, affinities, bins=bins)
    frag = _check_fragments(fragments)
    thr, maps, merges = agglomerate_graph(graph, thresholds=thr, quantile=quantile)
    return Agglomeration(fragments=frag, thresholds=thr, maps=maps, merge_scores=merges)


def agglomerate_graph(
    graph: RegionGraph, *, thresholds, quantile: str = "median"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The merge loop of :func:`agglomerate` on a region graph, without the volume.

    Used by :func:`agglomerate` on the graph of a whole volume and by the blockwise path on
    the graph assembled from blocks (:mod:`neuroinverse.segmentation.blockwise_graph`): a heap
    of ``(score, stamp, u, v)`` with stamps in pair order (ties broken the same way), the
    histograms of parallel edges summed after each merge.

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
    # adjacency: region -> {neighbour: h}, h the pair's index in the graph until the pair is
    # pooled, then its (values, counts); heap of (score, stamp, u, v)
    nbrs: list[dict[int, int | tuple[np.ndarray, np.ndarray]]] = [dict() for _ in range(n + 1)]
    stamp: dict[tuple[int, int], int] = {}
    first = _scores(graph, q)
    u0, v0 = graph.pairs[:, 0].tolist(), graph.pairs[:, 1].tolist()
    for k, (u, v) in enumerate(zip(u0, v0, strict=True)):
        nbrs[u][v] = k
        nbrs[v][u] = k
        stamp[(u, v)] = k
    heap = list(zip(first.tolist(), range(len(u0)), u0, v0, strict=True))
    counter = len(u0)

    def score(h) -> float:
        return float(first[h]) if isinstance(h, int) else _score(*h, q, graph.bins)

    def histogram(h):
        return graph.histogram(h) if isinstance(h, int) else h

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
        for w, hist in nbrs[v].items():
            del nbrs[w][v]
            stamp.pop((min(v, w), max(v, w)), None)
            if w in nbrs[u]:
                hist = _pool(histogram(nbrs[u][w]), histogram(hist))
            nbrs[u][w] = hist
            nbrs[w][u] = hist
            key = (min(u, w), max(u, w))
            stamp[key] = counter
            heapq.heappush(heap, (score(hist), counter, key[0], key[1]))
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
