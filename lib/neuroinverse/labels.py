"""Label images and their nearest-neighbour affinity graphs (shared by simulators and methods).

A base module like :mod:`neuroinverse._checks`: it imports no other part of the library, so
that the simulators can state their ground truth (connected labels, true affinities) and the
segmentation methods can build on the same graph without either layer importing the other.

The graph of Turaga et al., "Maximin affinity learning of image segmentation", NIPS 2009
(arXiv:0911.5372), Sec. 2: nodes are pixels (voxels), edges link nearest neighbours, and an
*affinity* ``a_e`` in [0, 1] says how likely the two ends belong to one object. A
segmentation is the set of connected components of the edges with ``a_e > θ``.

Convention (``malis.mknhood2d/3d`` and ``waterz``): channel ``c`` at node ``p`` is the edge
between ``p`` and ``p + offset_c``, with the offsets

* 2-D ``(H, W)``: ``(0, -1)`` (left neighbour) and ``(-1, 0)`` (upper neighbour);
* 3-D ``(Z, Y, X)``: ``(-1, 0, 0)``, ``(0, -1, 0)``, ``(0, 0, -1)`` (``aff[d]`` links a voxel
  with its −1 neighbour along axis ``d``).

Edges whose neighbour falls outside the array do not exist (their affinity entries are set
to 0 by :func:`affinities_from_labels` and ignored by every graph routine here and in
:mod:`neuroinverse.segmentation.malis`).
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np

from ._checks import check_choice, check_labels, check_positive_int, to_numpy

__all__ = [
    "NEIGHBOURHOOD_2D",
    "NEIGHBOURHOOD_3D",
    "neighbourhood",
    "affinity_graph",
    "affinities_from_labels",
    "connected_components",
    "relabel_connected",
    "check_affinities",
    "label_components",
]

NEIGHBOURHOOD_2D: tuple[tuple[int, ...], ...] = ((0, -1), (-1, 0))
NEIGHBOURHOOD_3D: tuple[tuple[int, ...], ...] = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))


def neighbourhood(dims: int) -> tuple[tuple[int, ...], ...]:
    """The book's nearest-neighbour offsets for ``dims`` = 2 or 3 (see the module docstring)."""
    check_choice(dims, "dims", (2, 3))
    return NEIGHBOURHOOD_2D if dims == 2 else NEIGHBOURHOOD_3D


def check_affinities(
    affinities, *, spatial_shape: tuple[int, ...] | None = None, name: str = "affinities"
) -> np.ndarray:
    """Return ``affinities`` as a float64 ``(C, *spatial)`` array after checking it.

    Raises ``ValueError`` unless it has ``C = dims`` channels (2 for images, 3 for volumes),
    the given spatial shape (if any), finite values and values in [0, 1].
    """
    aff = to_numpy(affinities, name)
    if aff.ndim not in (3, 4) or aff.shape[0] != aff.ndim - 1:
        raise ValueError(f"{name} must have shape (2, H, W) or (3, Z, Y, X); got {aff.shape}")
    if spatial_shape is not None and tuple(aff.shape[1:]) != tuple(spatial_shape):
        raise ValueError(
            f"{name} of spatial shape {tuple(aff.shape[1:])} do not match the labels/image shape "
            f"{tuple(spatial_shape)}"
        )
    aff = aff.astype(np.float64)
    if not np.all(np.isfinite(aff)):
        raise ValueError(f"{name} contain NaN or infinite values")
    if aff.size and (aff.min() < 0.0 or aff.max() > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1]; got values in [{aff.min():.4g}, {aff.max():.4g}]"
        )
    return aff


def _slices(offset: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(node slice, neighbour slice) so that ``x[node]`` and ``x[neighbour]`` are the edge ends."""
    node, nb = [], []
    for o in offset:
        if o < 0:
            node.append(slice(-o, None))
            nb.append(slice(None, o))
        elif o > 0:
            node.append(slice(None, -o))
            nb.append(slice(o, None))
        else:
            node.append(slice(None))
            nb.append(slice(None))
    return tuple(node), tuple(nb)


def affinity_graph(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge list of the nearest-neighbour graph on a grid of ``shape`` (2-D or 3-D).

    Edge ``e`` is the flat index into an affinity array of shape ``(dims, *shape)``.

    Returns:
        ``(u, v, valid)``: int64 ``(dims·N,)`` node and neighbour flat indices (``v`` is -1
        where the neighbour is outside the grid) and the bool mask of existing edges.
    """
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be 2 or 3 positive sizes; got {shape!r}") from None
    if len(shape) not in (2, 3) or any(s < 1 for s in shape):
        raise ValueError(f"shape must be 2 or 3 positive sizes; got {shape}")
    return _affinity_graph(shape)


@lru_cache(maxsize=16)
def _affinity_graph(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`affinity_graph`, built once per shape; the arrays are read-only (shared)."""
    nb = neighbourhood(len(shape))
    n = int(np.prod(shape))
    idx = np.arange(n, dtype=np.int64).reshape(shape)
    u = np.tile(np.arange(n, dtype=np.int64), len(nb))
    v = np.full((len(nb), *shape), -1, dtype=np.int64)
    for c, off in enumerate(nb):
        node, other = _slices(off)
        v[c][node] = idx[other]
    v = v.ravel()
    valid = v >= 0
    for arr in (u, v, valid):
        arr.setflags(write=False)
    return u, v, valid


@numba.njit(cache=True)
def label_components(u, v, keep, n_nodes):
    """Connected components of the edges ``e`` with ``keep[e]`` (union-find), ids ``1..K``
    numbered by first appearance in flat (C) node order."""
    parent = np.arange(n_nodes)
    for e in range(u.shape[0]):
        if not keep[e]:
            continue
        a = u[e]
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        b = v[e]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a != b:
            if a < b:
                parent[b] = a
            else:
                parent[a] = b
    seg = np.zeros(n_nodes, np.int64)
    next_id = 1
    for i in range(n_nodes):
        r = i
        while parent[r] != r:
            r = parent[r]
        parent[i] = r
        if r == i:  # roots are the smallest node of their component: its first appearance
            seg[i] = next_id
            next_id += 1
        else:
            seg[i] = seg[r]
    return seg


def affinities_from_labels(labels) -> np.ndarray:
    """Ground-truth affinities: 1 iff an edge joins two nodes of the same nonzero label.

    Args:
        labels: ``(H, W)`` or ``(Z, Y, X)`` integer ids, 0 = boundary/unlabelled.

    Returns:
        float32 ``(2, H, W)`` or ``(3, Z, Y, X)``; edges leaving the array are 0.
    """
    lab = check_labels(labels, ndims=(2, 3))
    nb = neighbourhood(lab.ndim)
    aff = np.zeros((len(nb), *lab.shape), dtype=np.float32)
    for c, off in enumerate(nb):
        node, other = _slices(off)
        a, b = lab[node], lab[other]
        aff[c][node] = (a == b) & (a != 0)
    return aff


def connected_components(affinities, *, threshold: float = 0.5, min_size: int = 1) -> np.ndarray:
    """Segmentation ``S_θ``: connected components of the edges with ``a_e > threshold``.

    Turaga et al. (2009), Sec. 2. Union-find over the kept edges (``numba``).

    Args:
        affinities: ``(2, H, W)`` or ``(3, Z, Y, X)`` in [0, 1] (numpy or torch).
        threshold: ``θ``; an edge is kept iff its affinity is strictly above it.
        min_size: components with fewer nodes get id 0 (``min_size=2`` drops singletons, as
            ``malis.connected_components`` with ``sizeThreshold=1`` does); 1 keeps all.

    Returns:
        int64 ids ``1..K`` of shape ``(H, W)`` / ``(Z, Y, X)``, numbered in order of first
        appearance in C order; 0 only for components below ``min_size``.
    """
    aff = check_affinities(affinities)
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite; got {threshold!r}")
    check_positive_int(min_size, "min_size")
    shape = aff.shape[1:]
    n = int(np.prod(shape))
    u, v, valid = affinity_graph(shape)
    keep = valid & (aff.ravel() > threshold)
    seg = label_components(u, v, keep, n)
    if min_size > 1:
        sizes = np.bincount(seg)
        seg = np.where(sizes[seg] >= min_size, seg, 0)
        ids = np.unique(seg[seg > 0])
        lut = np.zeros(seg.max() + 1 if seg.size else 1, dtype=np.int64)
        lut[ids] = np.arange(1, ids.size + 1)
        seg = lut[seg]
    return seg.reshape(shape).astype(np.int64)


def relabel_connected(labels, *, min_size: int = 1) -> np.ndarray:
    """Give every face-connected piece of each nonzero label its own id (0 stays 0).

    The ``RenumberConnectedComponents`` step needed before MALIS on a crop (the ``malis`` chapter,
    pitfalls): two pieces of one object that are disconnected inside the crop must not form
    positive pairs. Pieces smaller than ``min_size`` become 0 (2 drops singletons).

    Args:
        labels: ``(H, W)`` or ``(Z, Y, X)`` integer ids.

    Returns:
        int64 array of the same shape with ids ``1..K`` (first appearance in C order).
    """
    lab = check_labels(labels, ndims=(2, 3))
    seg = connected_components(affinities_from_labels(lab), threshold=0.5)
    seg = np.where(lab > 0, seg, 0)
    sizes = np.bincount(seg.ravel())
    sizes[0] = 0
    keep = sizes >= max(int(min_size), 1)
    keep[0] = False
    lut = np.zeros(sizes.size, dtype=np.int64)
    # ids by first appearance of the surviving pieces
    flat = seg.ravel()
    present = np.flatnonzero(keep)
    first = np.full(sizes.size, flat.size, dtype=np.int64)
    np.minimum.at(first, flat, np.arange(flat.size))
    order = present[np.argsort(first[present], kind="stable")]
    lut[order] = np.arange(1, order.size + 1)
    return lut[seg]
