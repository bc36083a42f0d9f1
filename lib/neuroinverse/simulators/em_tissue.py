"""Synthetic high-resolution EM of neural tissue: membranes, mitochondria, vesicles, stain grain.

A stand-in for transmission/scanning EM of neuropil (the ``pssr`` and ``active-sem``
chapters), rendered on the *ground-truth* grid that a point scanner then samples
(:mod:`~neuroinverse.simulators.point_scan`). Lengths are set in nanometres and converted with
``pixel_nm`` (nominal 2 nm/px, the high-resolution tSEM of Fang et al., Nature Methods 2021),
so the same tissue can be drawn at 2 nm/px (fine structure resolved) or at 4-8 nm/px.

Recipe (intensities in [0, 1]; lengths in nm, px at 2 nm/px in brackets):

1. Cytoplasm ``0.62`` + a smooth field (white noise, Gaussian ``σ = 40`` nm [20 px], scaled to
   std 0.04).
2. Cells: Poisson seeds (``cells_per_um2``, default 46 µm⁻², about 12 in 256² px at 2 nm/px),
   nearest seed on coordinates warped by a smooth displacement (RMS 12 nm, smoothing 48 nm).
   Membrane of each cell pair: width ``w ~ U(membrane_nm)`` (4-7 nm [2-3.5 px], at least
   1 px), intensity 0.18 with a soft edge (sigmoid, 0.7 px). ``labels`` = cell id, 0 where the
   distance to the interface is below ``w/2``.
3. Mitochondria (about 2 per 0.26 µm²): ellipses with semi-axes U(36, 90) × U(18, 32) nm,
   lumen 0.42, a double outer membrane (two rings at 0.15, 3 nm thick, 4 nm apart) and cristae
   (stripes 3 nm thick, period U(12, 16) nm, across the long axis, with a sinusoidal wobble),
   clipped to their cell.
4. Synaptic vesicle clusters (2-4 per 0.26 µm², 10-35 vesicles): radius U(14, 22) nm, dark
   ring 4 nm at 0.20 around a 0.75 lumen, dart-thrown without overlap in a disk that holds
   the count at about 50 % packing, inside one cell; a postsynaptic density (0.12, 80-140 nm
   long, 10-16 nm thick) on the nearest membrane.
5. Stain grain (white noise filtered with ``σ = 1.6`` nm, std 0.03), probe blur ``σ = 1.4``
   nm [0.7 px], clip to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .._checks import check_positive, check_positive_int

__all__ = ["EMTissue", "em_tissue", "em_tissue_batch"]

_CYTO, _MEMBRANE, _MITO, _RING, _VES_RING, _VES_LUMEN, _PSD = (
    0.62,
    0.18,
    0.42,
    0.15,
    0.20,
    0.75,
    0.12,
)
_REF_AREA_NM2 = (256 * 2.0) ** 2  # the reference canvas: 256² px at 2 nm/px


@dataclass(frozen=True)
class EMTissue:
    """One synthetic EM image on the ground-truth grid.

    Attributes:
        image: float32 ``(H, W)`` in [0, 1] (dark = stained).
        labels: int64 ``(H, W)`` cell ids ``1..K``, 0 on membranes.
        mitochondria: bool ``(H, W)`` mitochondria (outer membrane included).
        vesicles: bool ``(H, W)`` synaptic vesicles (ring and lumen).
        psd: bool ``(H, W)`` postsynaptic densities.
        pixel_nm: the pixel size in nm.
    """

    image: np.ndarray
    labels: np.ndarray
    mitochondria: np.ndarray
    vesicles: np.ndarray
    psd: np.ndarray
    pixel_nm: float

    @property
    def membrane(self) -> np.ndarray:
        """bool ``(H, W)``: the membrane pixels (``labels == 0``)."""
        return self.labels == 0

    @property
    def organelles(self) -> np.ndarray:
        """bool ``(H, W)``: mitochondria, vesicles or postsynaptic density."""
        return self.mitochondria | self.vesicles | self.psd


def _rng(seed, generator) -> np.random.Generator:
    if generator is not None:
        if seed is not None:
            raise ValueError("pass either seed or generator, not both")
        if not isinstance(generator, np.random.Generator):
            raise ValueError(f"generator must be a numpy Generator; got {type(generator).__name__}")
        return generator
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:
        raise ValueError(f"seed must be an int or a sequence of ints: {err}") from None


def _smooth_noise(rng, shape, sigma, std) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return f * (std / max(float(f.std()), 1e-12))


def _cells(rng, shape, n_seeds, warp_px, warp_smooth_px) -> np.ndarray:
    h, w = shape
    seeds = rng.uniform((0.0, 0.0), (h, w), size=(n_seeds, 2))
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    if warp_px > 0:
        yy = yy + _smooth_noise(rng, shape, warp_smooth_px, warp_px)
        xx = xx + _smooth_noise(rng, shape, warp_smooth_px, warp_px)
    _, idx = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], axis=1))
    _, inv = np.unique(idx, return_inverse=True)
    return inv.reshape(shape).astype(np.int64) + 1


def _membrane(rng, cells, width_px):
    """Distance to the interface, its width per pixel, the interface mask (both sides of it)
    and a one-sided interface (1 px thick; it separates every pair of cells)."""
    h, w = cells.shape
    other = np.zeros_like(cells)
    for axis in (0, 1):
        a = cells
        d = np.diff(a, axis=axis) != 0
        sl_lo = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        sl_hi = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        lo, hi = other[sl_lo], other[sl_hi]
        lo[d & (lo == 0)] = a[sl_hi][d & (lo == 0)]
        hi[d & (hi == 0)] = a[sl_lo][d & (hi == 0)]
    boundary = other > 0
    one_sided = np.zeros_like(boundary)  # p whose lower or right neighbour differs
    one_sided[:-1] |= cells[:-1] != cells[1:]
    one_sided[:, :-1] |= cells[:, :-1] != cells[:, 1:]
    k = int(cells.max()) + 1
    pair_width = rng.uniform(width_px[0], width_px[1], size=(k, k))
    pair_width = np.triu(pair_width) + np.triu(pair_width, 1).T
    if not boundary.any():
        return np.full((h, w), np.inf), np.full((h, w), width_px[0]), boundary, one_sided
    dist, (iy, ix) = ndimage.distance_transform_edt(~boundary, return_indices=True)
    a, b = cells[iy, ix], other[iy, ix]
    return dist + 0.5, pair_width[a, b], boundary, one_sided


def _ellipse_frame(yy, xx, cy, cx, angle):
    r1 = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    r2 = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    return r1, r2


def _mitochondrion(rng, image, cell_mask, dist_mem, s, mito_mask):
    """Paint one mitochondrion into ``image`` inside ``cell_mask``; return its mask."""
    a = rng.uniform(36, 90) * s
    b = rng.uniform(18, 32) * s
    ok = np.flatnonzero((cell_mask & (dist_mem > b + 1) & ~mito_mask).ravel())
    if ok.size == 0:
        return np.zeros_like(cell_mask)
    h, w = image.shape
    cy, cx = divmod(int(ok[rng.integers(ok.size)]), w)
    angle = rng.uniform(0, np.pi)
    r = int(np.ceil(a)) + 2
    y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, h), max(cx - r, 0), min(cx + r + 1, w)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(float)
    r1, r2 = _ellipse_frame(yy, xx, cy, cx, angle)
    inside = ((r1 / a) ** 2 + (r2 / b) ** 2 <= 1.0) & cell_mask[y0:y1, x0:x1]
    if not inside.any():
        return np.zeros_like(cell_mask)
    d = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]  # depth inside
    t, gap = 3.0 * s, 4.0 * s
    patch = image[y0:y1, x0:x1]
    val = np.full(inside.shape, _MITO)
    period = rng.uniform(12, 16) * s
    phase = rng.uniform(0, period)
    wob = rng.uniform(1.0, 3.0) * s * np.sin(r2 / max(b, 1.0) * np.pi + rng.uniform(0, 2 * np.pi))
    stripes = np.mod(r1 + wob + phase, period) < t
    val[stripes & (d > t + gap)] = _RING
    val[(d <= t) | ((d > t + gap) & (d <= 2 * t + gap))] = _RING
    patch[inside] = val[inside]
    out = np.zeros_like(cell_mask)
    out[y0:y1, x0:x1] = inside
    return out


def _vesicle_cluster(rng, image, cells, dist_mem, boundary, s, taken):
    """Paint a vesicle cluster and its postsynaptic density; return (vesicles, psd) masks."""
    h, w = image.shape
    n_target = int(rng.integers(10, 36))
    rv = rng.uniform(14, 22) * s
    radius = np.sqrt(n_target * (rv + 1.0) ** 2 / 0.5)
    ok = np.flatnonzero(((dist_mem > rv + 2) & (dist_mem < radius) & ~taken).ravel())
    ves = np.zeros((h, w), bool)
    psd = np.zeros((h, w), bool)
    if ok.size == 0:
        return ves, psd
    cy, cx = divmod(int(ok[rng.integers(ok.size)]), w)
    cell = cells[cy, cx]
    centres: list[tuple[float, float, float]] = []
    for _ in range(30 * n_target):
        if len(centres) >= n_target:
            break
        rad, ang = radius * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        y, x = cy + rad * np.sin(ang), cx + rad * np.cos(ang)
        r = rv * rng.uniform(0.85, 1.15)
        iy, ix = int(round(y)), int(round(x))
        if not (0 <= iy < h and 0 <= ix < w) or cells[iy, ix] != cell:
            continue
        if dist_mem[iy, ix] < r + 1 or taken[iy, ix]:
            continue
        if any((y - u) ** 2 + (x - v) ** 2 < (r + q + 1.0) ** 2 for u, v, q in centres):
            continue
        centres.append((y, x, r))
    ring = 4.0 * s
    for y, x, r in centres:
        rr = int(np.ceil(r)) + 1
        y0, y1 = max(int(y) - rr, 0), min(int(y) + rr + 2, h)
        x0, x1 = max(int(x) - rr, 0), min(int(x) + rr + 2, w)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        rho = np.hypot(yy - y, xx - x)
        disk = rho <= r
        patch = image[y0:y1, x0:x1]
        patch[disk] = np.where(rho[disk] > r - ring, _VES_RING, _VES_LUMEN)
        ves[y0:y1, x0:x1] |= disk
    # postsynaptic density: a dark band along the nearest membrane, on the other side
    if centres and boundary.any():
        by, bx = np.nonzero(boundary & (cells != cell))
        if by.size:
            j = int(np.argmin((by - cy) ** 2 + (bx - cx) ** 2))
            length = rng.uniform(80, 140) * s
            thick = rng.uniform(10, 16) * s
            yy, xx = np.mgrid[0:h, 0:w]
            near = (yy - by[j]) ** 2 + (xx - bx[j]) ** 2 <= (length / 2) ** 2
            side = cells == cells[by[j], bx[j]]
            psd = near & side & (dist_mem <= thick)
            image[psd] = _PSD
    return ves, psd


def em_tissue(
    shape: tuple[int, int] = (256, 256),
    *,
    pixel_nm: float = 2.0,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
    cells_per_um2: float = 46.0,
    membrane_nm: tuple[float, float] = (4.0, 7.0),
    mitochondria_per_um2: float = 7.6,
    clusters_per_um2: float = 11.4,
    grain_std: float = 0.03,
    probe_nm: float = 1.4,
    supersample: int = 1,
) -> EMTissue:
    """One synthetic EM image with its labels (see the module docstring for the recipe).

    Args:
        shape: ``(H, W)`` in pixels (each at least 16).
        pixel_nm: pixel size in nm; every length of the recipe is divided by it.
        seed: int or sequence of ints; or pass ``generator`` (a ``numpy.random.Generator``).
        cells_per_um2: mean number of cells per µm².
        membrane_nm: range of the membrane width in nm (each interface draws one; >= 1 px).
        mitochondria_per_um2: mean number of mitochondria per µm².
        clusters_per_um2: mean number of vesicle clusters per µm².
        grain_std: std of the stain grain (intensity units; 0 disables).
        probe_nm: Gaussian probe blur σ in nm (0 disables).
        supersample: render on a grid ``supersample`` times finer and average blocks (use it at
            pixel sizes above ~2 nm, where vesicles and cristae are under a few pixels).
            ``labels``: the fine cells sampled at block centres, 0 where at least half of a
            block is membrane or where two cells touch; organelle masks: any fine pixel.

    Returns:
        :class:`EMTissue`.
    """
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (H, W); got {shape!r}") from None
    if h < 16 or w < 16:
        raise ValueError(f"shape must be at least 16x16 pixels; got {shape!r}")
    px = check_positive(pixel_nm, "pixel_nm")
    check_positive(cells_per_um2, "cells_per_um2")
    check_positive(mitochondria_per_um2, "mitochondria_per_um2", allow_zero=True)
    check_positive(clusters_per_um2, "clusters_per_um2", allow_zero=True)
    check_positive(grain_std, "grain_std", allow_zero=True)
    check_positive(probe_nm, "probe_nm", allow_zero=True)
    if not (0 < membrane_nm[0] <= membrane_nm[1]):
        raise ValueError(f"membrane_nm must satisfy 0 < low <= high; got {membrane_nm!r}")
    k = check_positive_int(supersample, "supersample")
    rng = _rng(seed, generator)
    kw = dict(
        cells_per_um2=cells_per_um2,
        membrane_nm=membrane_nm,
        mitochondria_per_um2=mitochondria_per_um2,
        clusters_per_um2=clusters_per_um2,
        grain_std=grain_std,
        probe_nm=probe_nm,
    )
    if k == 1:
        return _render(rng, h, w, px, **kw)[0]
    fine, cells = _render(rng, h * k, w * k, px / k, **kw)

    def blocks(a):
        return a.reshape(h, k, w, k)

    c = k // 2
    cells = cells[c::k, c::k]
    one_sided = np.zeros((h, w), bool)
    one_sided[:-1] |= cells[:-1] != cells[1:]
    one_sided[:, :-1] |= cells[:, :-1] != cells[:, 1:]
    membrane = (blocks(fine.labels == 0).mean(axis=(1, 3)) >= 0.5) | one_sided
    return EMTissue(
        image=blocks(fine.image).mean(axis=(1, 3), dtype=np.float64).astype(np.float32),
        labels=np.where(membrane, 0, cells),
        mitochondria=blocks(fine.mitochondria).any(axis=(1, 3)),
        vesicles=blocks(fine.vesicles).any(axis=(1, 3)),
        psd=blocks(fine.psd).any(axis=(1, 3)),
        pixel_nm=px,
    )


def _render(
    rng,
    h,
    w,
    px,
    *,
    cells_per_um2,
    membrane_nm,
    mitochondria_per_um2,
    clusters_per_um2,
    grain_std,
    probe_nm,
) -> tuple[EMTissue, np.ndarray]:
    """The recipe at pixel size ``px``; returns the tissue and the cell ids before membranes."""
    s = 1.0 / px  # nm -> px
    area_um2 = h * w * px * px * 1e-6

    image = _CYTO + _smooth_noise(rng, (h, w), 40.0 * s, 0.04)
    n_seeds = max(2, int(rng.poisson(cells_per_um2 * area_um2)))
    cells = _cells(rng, (h, w), n_seeds, 12.0 * s, 48.0 * s)
    widths = (max(membrane_nm[0] * s, 1.0), max(membrane_nm[1] * s, 1.0))
    dist, width, boundary, one_sided = _membrane(rng, cells, widths)
    labels = np.where((dist < width / 2) | one_sided, 0, cells)
    interior = labels > 0
    dist_mem = np.maximum(dist - width / 2, 0.0)

    mito = np.zeros((h, w), bool)
    for _ in range(int(rng.poisson(mitochondria_per_um2 * area_um2))):
        cell = int(rng.integers(1, cells.max() + 1))
        mito |= _mitochondrion(rng, image, interior & (cells == cell), dist_mem, s, mito)
    ves = np.zeros((h, w), bool)
    psd = np.zeros((h, w), bool)
    for _ in range(int(rng.poisson(clusters_per_um2 * area_um2))):
        v, p = _vesicle_cluster(rng, image, labels, dist_mem, boundary, s, mito | ves | psd)
        ves |= v
        psd |= p

    m = 1.0 / (1.0 + np.exp(-(width / 2 - dist) / 0.7))  # soft membrane edge
    image = image * (1 - m) + _MEMBRANE * m
    if grain_std > 0:
        image = image + _smooth_noise(rng, (h, w), 1.6 * s, grain_std)
    if probe_nm > 0:
        image = ndimage.gaussian_filter(image, probe_nm * s, mode="reflect")
    tissue = EMTissue(
        image=np.clip(image, 0.0, 1.0).astype(np.float32),
        labels=labels.astype(np.int64),
        mitochondria=mito,
        vesicles=ves,
        psd=psd,
        pixel_nm=px,
    )
    return tissue, cells


def em_tissue_batch(
    n: int, shape: tuple[int, int] = (256, 256), *, seed: int = 0, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` independent images (image ``i`` uses the seed sequence ``(seed, i)``).

    Returns ``(images, labels)``: float32 ``(n, H, W)`` in [0, 1] and int64 ``(n, H, W)``.
    Other keyword arguments go to :func:`em_tissue`.
    """
    check_positive_int(n, "n")
    try:
        base = [int(v) for v in (seed if isinstance(seed, (list, tuple)) else [seed])]
    except (TypeError, ValueError):
        raise ValueError(f"seed must be an int or a sequence of ints; got {seed!r}") from None
    if any(v < 0 for v in base):
        raise ValueError(f"seed must be non-negative; got {seed!r}")
    items = [em_tissue(shape, seed=[*base, i], **kwargs) for i in range(n)]
    return np.stack([t.image for t in items]), np.stack([t.labels for t in items])
