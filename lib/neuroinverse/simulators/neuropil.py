"""Synthetic anisotropic 3-D neuropil: serial-section EM volumes of touching neurites with labels.

The book's stand-in for the CREMI / FIB-25 volumes of Funke et al., "Large Scale Image
Segmentation with Structured Loss based Deep Learning for Connectome Reconstruction",
IEEE TPAMI 41(7), 2019 (arXiv:1709.02974), which cannot be downloaded. The generator follows
the book's ``mala`` chapter, in 9 steps (lengths in voxels of the isotropic working grid):

1. an isotropic working grid ``(a·Z, Y, X)`` with anisotropy ``a`` (2 at ci, 3 at full);
2. ``n_tubes`` persistent random walks (neurite centrelines) entering from the box faces,
   with branching children of the same label and a smoothly varying radius;
3. space-filling labels: every voxel takes the label of its nearest centreline point
   (Euclidean distance transform with indices), plus optional large soma/glia ellipsoids;
4. membranes: voxels with a 6-neighbour of another label (about 2 voxels thick);
5. every ``a``-th slice is kept (serial sections);
6. the image: textured cytoplasm 0.70, membranes ``0.70 − 0.50·c`` with a contrast ``c`` per
   interface, dark organelles (false-split decoys);
7. membrane gaps: for each touching pair, with probability ``p_gap``, one elliptical hole in
   the membrane image (the labels are unchanged): the false-merge trap;
8. optics: anisotropic blur, Gaussian noise, per-section gain and shift, optional missing
   sections; ``raw ← 2·raw − 1``;
9. training ground truth: ``grow_boundary`` (xy), connected-component relabelling and
   nearest-neighbour affinities (via :mod:`neuroinverse.labels`).

Random numbers come from one ``numpy.random.Generator`` built from ``seed``: the same seed
gives the same volume on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .._checks import check_positive, check_positive_int, check_probability

__all__ = [
    "NEUROPIL_SIZES",
    "NeuropilVolume",
    "simulate_neuropil",
    "membrane_mask",
    "grow_boundary",
    "training_ground_truth",
    "random_training_crop",
]

#: The book's sizes per profile: anisotropic output shape ``(Z, Y, X)``, anisotropy and tubes.
NEUROPIL_SIZES: dict[str, dict] = {
    "ci": dict(
        shape=(16, 96, 96), anisotropy=2, n_tubes=25, p_gap=0.3, n_somata=0, p_missing_section=0.0
    ),
    "full": dict(
        shape=(48, 256, 256),
        anisotropy=3,
        n_tubes=120,
        p_gap=0.2,
        n_somata=2,
        p_missing_section=0.03,
    ),
}

_FACE_NORMALS = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float
)


@dataclass
class NeuropilVolume:
    """One simulated volume on the anisotropic grid ``(Z, Y, X)``.

    Attributes:
        raw: ``(Z, Y, X)`` float32 EM image in [−1, 1].
        labels: ``(Z, Y, X)`` uint64 dense neuron ids (every voxel belongs to a neurite, ids ≥ 1).
        membrane: ``(Z, Y, X)`` bool, voxels on a cell boundary (before gaps are cut).
        gaps: ``(Z, Y, X)`` bool, membrane voxels erased from the image by a gap.
        organelles: ``(Z, Y, X)`` bool, voxels of the dark organelle decoys.
        anisotropy: z spacing in units of the xy spacing.
        missing_sections: indices of sections blanked by the missing-section defect.
        meta: counts (tubes, branches, touching pairs, gapped pairs, organelles).
    """

    raw: np.ndarray
    labels: np.ndarray
    membrane: np.ndarray
    gaps: np.ndarray
    organelles: np.ndarray
    anisotropy: int
    missing_sections: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.raw.shape)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or a numpy Generator; got {seed!r}")
    return np.random.default_rng(int(seed))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(np.linalg.norm(v), 1e-12)


def _rotate_away(d: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at ``angle`` (radians) from the unit vector ``d``, random azimuth."""
    perp = _unit(np.cross(d, rng.normal(size=3)))
    return _unit(math.cos(angle) * d + math.sin(angle) * perp)


def _walk(start, direction, shape, max_steps, kappa, p_branch, rng):
    """One persistent random walk (step 1 voxel); returns points and branch seeds."""
    noise = (rng.normal(size=(max_steps, 3)) * kappa).tolist()
    branch = (rng.random(max_steps) < p_branch).tolist()
    z, y, x = (float(v) for v in start)
    dz, dy, dx = (float(v) for v in _unit(np.asarray(direction, float)))
    hz, hy, hx = (s - 0.5 for s in shape)
    pts, children = [], []
    for k in range(max_steps):
        if not (-0.5 <= z <= hz and -0.5 <= y <= hy and -0.5 <= x <= hx):
            break
        pts.append((z, y, x))
        if branch[k]:
            children.append(
                (
                    np.array([z, y, x]),
                    _rotate_away(
                        np.array([dz, dy, dx]), math.radians(45.0) + rng.normal(0.0, 0.15), rng
                    ),
                )
            )
        nz, ny, nx = noise[k]
        dz, dy, dx = dz + nz, dy + ny, dx + nx
        norm = math.sqrt(dz * dz + dy * dy + dx * dx) or 1.0
        dz, dy, dx = dz / norm, dy / norm, dx / norm
        z, y, x = z + dz, y + dy, x + dx
    return (np.array(pts) if pts else np.zeros((0, 3))), children


def _smooth_profile(n: int, rng: np.random.Generator, *, corr: float = 15.0) -> np.ndarray:
    """Smooth 1-D noise in [−1, 1] of length ``n`` (Gaussian-filtered white noise, rescaled)."""
    if n == 0:
        return np.zeros(0)
    x = ndimage.gaussian_filter1d(rng.normal(size=n + 60), corr, mode="wrap")[30 : 30 + n]
    return x / max(np.abs(x).max(), 1e-12)


def _centrelines(shape_iso, n_tubes, rng, *, kappa=0.15, p_branch=0.01, max_branches=8):
    """Rasterised centrelines: ``(P, 3)`` integer points, their label and their radius."""
    max_steps = 4 * max(shape_iso)
    pts, labs, rads = [], [], []
    n_branches = 0
    for t in range(n_tubes):
        face = rng.integers(6)
        normal = _FACE_NORMALS[face]
        start = rng.uniform(0, 1, 3) * (np.asarray(shape_iso) - 1)
        axis = face // 2
        start[axis] = 0.0 if normal[axis] > 0 else shape_iso[axis] - 1
        r0 = rng.uniform(2.5, 6.0)
        stack = [(start, _unit(normal + rng.normal(0, 0.5, 3)))]
        budget = max_branches
        while stack:
            s, d = stack.pop()
            p, kids = _walk(s, d, shape_iso, max_steps, kappa, p_branch, rng)
            if len(p):
                pts.append(p)
                labs.append(np.full(len(p), t + 1, np.int64))
                rads.append(r0 * (1 + 0.2 * _smooth_profile(len(p), rng)))
            for kid in kids[:budget]:
                stack.append(kid)
                budget -= 1
                n_branches += 1
    p = np.rint(np.concatenate(pts)).astype(np.int64)
    p = np.clip(p, 0, np.asarray(shape_iso) - 1)
    return p, np.concatenate(labs), np.concatenate(rads), n_branches


def membrane_mask(labels: np.ndarray, *, only_xy: bool = False) -> np.ndarray:
    """Voxels with a face neighbour (6-neighbourhood, or 4 in xy) of another label.

    Args:
        labels: ``(Z, Y, X)`` integer labels.
        only_xy: look at the in-plane neighbours only.

    Returns:
        ``(Z, Y, X)`` bool mask; each interface gets about 2 voxels (one on each side).
    """
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must have shape (Z, Y, X); got {lab.shape}")
    out = np.zeros(lab.shape, bool)
    for ax in (1, 2) if only_xy else (0, 1, 2):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[ax], b[ax] = slice(1, None), slice(None, -1)
        diff = lab[tuple(a)] != lab[tuple(b)]
        out[tuple(a)] |= diff
        out[tuple(b)] |= diff
    return out


def grow_boundary(labels: np.ndarray, *, steps: int = 1, only_xy: bool = True) -> np.ndarray:
    """Set to 0 the voxels within ``steps`` (xy) voxels of another label (gunpowder
    ``GrowBoundary``).

    Args:
        labels: ``(Z, Y, X)`` integer labels (0 = background, also grows).
        steps: boundary width added on each side, voxels.
        only_xy: grow in-plane only (the anisotropic-data setting of the paper).

    Returns:
        A copy of ``labels`` with boundary voxels set to 0.
    """
    check_positive_int(steps, "steps", minimum=0)
    out = np.array(labels, copy=True)
    for _ in range(int(steps)):
        out[membrane_mask(out, only_xy=only_xy)] = 0
    return out


def _interface_partner(labels: np.ndarray, membrane: np.ndarray) -> np.ndarray:
    """For every voxel, the label of one differing 6-neighbour (0 where there is none)."""
    partner = np.zeros(labels.shape, labels.dtype)
    for ax in (0, 1, 2):
        for shift in (1, -1):
            nb = np.roll(labels, shift, axis=ax)
            edge = [slice(None)] * 3
            edge[ax] = 0 if shift == 1 else -1
            nb[tuple(edge)] = labels[tuple(edge)]  # no wrap-around
            take = membrane & (partner == 0) & (nb != labels)
            partner[take] = nb[take]
    return partner


def _stamp_ellipsoids(shape, centres, semi_axes, angles, *, z_scale: float) -> np.ndarray:
    """Union of ellipsoids (xy rotated by ``angles``) on an anisotropic grid, as a bool mask."""
    mask = np.zeros(shape, bool)
    for c, (ra, rb, rz), th in zip(centres, semi_axes, angles, strict=True):
        ext = int(math.ceil(max(ra, rb)))
        ez = int(math.floor(rz / z_scale))
        z0, y0, x0 = (int(v) for v in c)
        zs = slice(max(z0 - ez, 0), min(z0 + ez + 1, shape[0]))
        ys = slice(max(y0 - ext, 0), min(y0 + ext + 1, shape[1]))
        xs = slice(max(x0 - ext, 0), min(x0 + ext + 1, shape[2]))
        zz, yy, xx = np.meshgrid(
            np.arange(zs.start, zs.stop) - z0,
            np.arange(ys.start, ys.stop) - y0,
            np.arange(xs.start, xs.stop) - x0,
            indexing="ij",
        )
        u = math.cos(th) * xx + math.sin(th) * yy
        v = -math.sin(th) * xx + math.cos(th) * yy
        dz2 = (zz * z_scale / rz) ** 2 if rz > 0 else np.zeros(zz.shape)  # rz = 0: one section
        mask[zs, ys, xs] |= (u / ra) ** 2 + (v / rb) ** 2 + dz2 <= 1.0
    return mask


def simulate_neuropil(
    *,
    shape: tuple[int, int, int] = (16, 96, 96),
    anisotropy: int = 2,
    n_tubes: int = 25,
    p_gap: float = 0.3,
    n_somata: int = 0,
    p_missing_section: float = 0.0,
    noise_std: float = 0.08,
    seed: int | np.random.Generator = 0,
) -> NeuropilVolume:
    """Simulate one anisotropic serial-section EM volume of neuropil (the ``mala`` chapter,
    steps 1-8 above).

    Args:
        shape: output shape ``(Z, Y, X)`` on the anisotropic grid, voxels.
        anisotropy: z spacing over xy spacing ``a`` (integer ≥ 1); the working grid is
            ``(a·Z, Y, X)``.
        n_tubes: number of neurites (random-walk centrelines, each with its own label).
        p_gap: probability that a touching pair of neurites gets one membrane gap.
        n_somata: number of large soma/glia ellipsoids (radius 15-25 voxels) overriding labels.
        p_missing_section: probability per section of a blank (missing) section.
        noise_std: standard deviation of the additive Gaussian noise (image units, before
            ``2·raw − 1``).
        seed: non-negative integer seed or a ``numpy.random.Generator``.

    Returns:
        The :class:`NeuropilVolume`. See :data:`NEUROPIL_SIZES` for the book's ci and full sizes.
    """
    if len(shape) != 3 or any((not isinstance(s, (int, np.integer))) or s < 4 for s in shape):
        raise ValueError(f"shape must be three integers >= 4 (Z, Y, X); got {shape!r}")
    check_positive_int(anisotropy, "anisotropy")
    check_positive_int(n_tubes, "n_tubes")
    check_probability(p_gap, "p_gap")
    check_probability(p_missing_section, "p_missing_section")
    check_positive(noise_std, "noise_std", allow_zero=True)
    rng = _rng(seed)
    a = int(anisotropy)
    Z, Y, X = (int(s) for s in shape)
    iso = (a * Z, Y, X)

    # 2-3. centrelines, then nearest-centreline-point labels (space filling)
    pts, plab, _, n_branches = _centrelines(iso, int(n_tubes), rng)
    seedvol = np.zeros(iso, np.int64)
    seedvol[pts[:, 0], pts[:, 1], pts[:, 2]] = plab
    idx = ndimage.distance_transform_edt(seedvol == 0, return_distances=False, return_indices=True)
    lab_iso = seedvol[idx[0], idx[1], idx[2]]
    del idx
    for s in range(int(n_somata)):
        centre = rng.uniform(0, 1, 3) * (np.asarray(iso) - 1)
        radii = rng.uniform(15, 25, 3)
        zz, yy, xx = np.ogrid[: iso[0], : iso[1], : iso[2]]
        blob = (
            ((zz - centre[0]) / radii[0]) ** 2
            + ((yy - centre[1]) / radii[1]) ** 2
            + ((xx - centre[2]) / radii[2]) ** 2
        ) <= 1.0
        lab_iso[blob] = n_tubes + 1 + s
    # compact ids 1..K (a tube may have lost every voxel to a soma)
    present = np.flatnonzero(np.bincount(lab_iso.ravel()))
    lut = np.zeros(present.max() + 1, np.int64)
    lut[present] = np.arange(1, present.size + 1)
    lab_iso = lut[lab_iso]

    # 4-5. membranes on the isotropic grid, then keep every a-th section
    mem_iso = membrane_mask(lab_iso)
    keep = slice(a // 2, None, a)
    labels = np.ascontiguousarray(lab_iso[keep])[:Z]
    membrane = np.ascontiguousarray(mem_iso[keep])[:Z]
    partner = np.ascontiguousarray(_interface_partner(lab_iso, mem_iso)[keep])[:Z]
    del lab_iso, mem_iso

    # 6. image: textured cytoplasm, membranes with per-interface contrast, organelles
    tex = ndimage.gaussian_filter(rng.normal(size=(Z, Y, X)), sigma=(2.0 / a, 2.0, 2.0))
    img = 0.70 + 0.05 * tex / max(tex.std(), 1e-12)
    mz, my, mx = np.nonzero(membrane & (partner > 0))
    own, other = labels[mz, my, mx], partner[mz, my, mx]
    n_lab = int(labels.max()) + 1
    pair = np.minimum(own, other).astype(np.int64) * n_lab + np.maximum(own, other)
    pair_ids, pair_inv = np.unique(pair, return_inverse=True)
    contrast = rng.uniform(0.4, 1.0, pair_ids.size)

    dist_mem = ndimage.distance_transform_edt(~membrane, sampling=(a, 1.0, 1.0))
    obj_ids = np.unique(labels)
    centres, axes, angles = [], [], []
    for obj in obj_ids:
        if rng.random() >= 0.3:
            continue
        ra, rb = sorted(rng.uniform(1.5, 3.0, 2), reverse=True)
        cand = np.flatnonzero((labels == obj).ravel() & (dist_mem.ravel() >= ra + 2.0))
        if cand.size == 0:
            continue
        centres.append(np.unravel_index(cand[rng.integers(cand.size)], labels.shape))
        axes.append((ra, rb, float(a)))  # ±1 section in z
        angles.append(rng.uniform(0, math.pi))
    organelles = _stamp_ellipsoids(labels.shape, centres, axes, angles, z_scale=a)
    organelles &= dist_mem >= 2.0
    img[organelles] = 0.35

    # 7. gaps: one ellipse per chosen touching pair, at a random interface voxel
    order = rng.permutation(pair_inv.size)
    first = np.unique(pair_inv[order], return_index=True)[1]
    at = order[first]  # one random interface voxel per pair (pairs in pair_ids order)
    chosen = rng.random(pair_ids.size) < p_gap
    r_gap = rng.uniform(2.0, 4.0, pair_ids.size)
    gap_centres = [(mz[i], my[i], mx[i]) for i in at[chosen]]
    gap_axes = [(r, r, 0.0) for r in r_gap[chosen]]
    gap_disc = _stamp_ellipsoids(
        labels.shape, gap_centres, gap_axes, [0.0] * len(gap_axes), z_scale=a
    )
    gaps = gap_disc & membrane
    visible = ~gap_disc[mz, my, mx]
    img[mz[visible], my[visible], mx[visible]] = (0.70 - 0.50 * contrast[pair_inv])[visible]

    # 8. optics, noise, per-section intensity, missing sections
    img = ndimage.gaussian_filter(img, sigma=(0.3, 1.0, 1.0))
    img = img + noise_std * rng.normal(size=img.shape)
    gain = rng.uniform(0.9, 1.1, Z)[:, None, None]
    shift = rng.uniform(-0.05, 0.05, Z)[:, None, None]
    img = img * gain + shift
    missing = np.flatnonzero(rng.random(Z) < p_missing_section)
    img[missing] = 0.0
    raw = np.clip(2.0 * img - 1.0, -1.0, 1.0).astype(np.float32)

    meta = dict(
        n_tubes=int(n_tubes),
        n_branches=int(n_branches),
        n_objects=int(obj_ids.size),
        n_touching_pairs=int(pair_ids.size),
        n_gapped_pairs=int(chosen.sum()),
        n_organelles=len(centres),
    )
    return NeuropilVolume(
        raw=raw,
        labels=labels.astype(np.uint64),
        membrane=membrane,
        gaps=gaps,
        organelles=organelles,
        anisotropy=a,
        missing_sections=missing,
        meta=meta,
    )


def training_ground_truth(labels, *, grow_steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Training targets from dense labels (the ``mala`` chapter, step 9).

    ``grow_boundary`` in xy (``grow_steps`` voxels, label 0 on the membrane), then
    connected-component relabelling
    (:func:`~neuroinverse.labels.relabel_connected`) and nearest-neighbour
    affinities (:func:`~neuroinverse.labels.affinities_from_labels`).

    Args:
        labels: ``(Z, Y, X)`` integer ids.
        grow_steps: boundary width in voxels (xy).

    Returns:
        ``(gt_labels, gt_affinities)``: int64 ``(Z, Y, X)`` (0 = boundary) and float32
        ``(3, Z, Y, X)``; ``aff[d]`` links a voxel with its −1 neighbour along axis ``d``.
    """
    from ..labels import affinities_from_labels, relabel_connected

    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must have shape (Z, Y, X); got {lab.shape}")
    gt = relabel_connected(grow_boundary(lab.astype(np.int64), steps=grow_steps, only_xy=True))
    return gt, affinities_from_labels(gt)


def random_training_crop(
    raw: np.ndarray,
    labels: np.ndarray,
    *,
    input_shape: tuple[int, int, int],
    output_shape: tuple[int, int, int],
    generator,
    augment: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One random training sample: a raw crop and the centred targets, relabelled per crop.

    Args:
        raw: ``(Z, Y, X)`` float image.
        labels: ``(Z, Y, X)`` int labels **after** :func:`grow_boundary` (0 = boundary).
        input_shape: network input shape ``(z, y, x)``.
        output_shape: network output shape; the target is the centred ``output_shape`` box.
        generator: ``torch.Generator`` (the training loop's) for the crop position and the
            xy flips / transpose (gunpowder ``SimpleAugment`` in xy).
        augment: apply the random xy flips and transpose.

    Returns:
        ``(raw_crop, gt_labels, gt_affinities, edge_mask)``: float32 ``input_shape``; int64
        ``output_shape`` relabelled into connected pieces (gunpowder
        ``RenumberConnectedComponents``); float32 ``(3, *output_shape)``; float32
        ``(3, *output_shape)`` with 0 on the edges that leave the crop (no target there).
    """
    import torch

    from ..labels import affinities_from_labels, relabel_connected

    raw, labels = np.asarray(raw), np.asarray(labels)
    if raw.shape != labels.shape or raw.ndim != 3:
        raise ValueError(
            "raw and labels must be (Z, Y, X) arrays of one shape; "
            f"got {raw.shape} and {labels.shape}"
        )
    ins, outs = tuple(int(s) for s in input_shape), tuple(int(s) for s in output_shape)
    if (
        len(ins) != 3
        or len(outs) != 3
        or any(o > i or (i - o) % 2 for i, o in zip(ins, outs, strict=True))
    ):
        raise ValueError(
            f"output_shape {output_shape} must fit centred in input_shape {input_shape}"
        )
    if any(i > s for i, s in zip(ins, raw.shape, strict=True)):
        raise ValueError(f"input_shape {input_shape} is larger than the volume {raw.shape}")
    hi = torch.tensor([s - i + 1 for s, i in zip(raw.shape, ins, strict=True)])
    o = (torch.rand(3, generator=generator) * hi).long().clamp(max=hi - 1).tolist()
    flips = (torch.rand(3, generator=generator) < 0.5).tolist()
    m = [(i - q) // 2 for i, q in zip(ins, outs, strict=True)]
    x = raw[o[0] : o[0] + ins[0], o[1] : o[1] + ins[1], o[2] : o[2] + ins[2]]
    lab = labels[
        o[0] + m[0] : o[0] + m[0] + outs[0],
        o[1] + m[1] : o[1] + m[1] + outs[1],
        o[2] + m[2] : o[2] + m[2] + outs[2],
    ]
    if augment:
        if flips[0]:
            x, lab = x[:, ::-1], lab[:, ::-1]
        if flips[1]:
            x, lab = x[:, :, ::-1], lab[:, :, ::-1]
        if flips[2] and ins[1] == ins[2] and outs[1] == outs[2]:
            x, lab = x.transpose(0, 2, 1), lab.transpose(0, 2, 1)
    gt = relabel_connected(np.ascontiguousarray(lab))
    aff = affinities_from_labels(gt)
    mask = np.ones_like(aff)
    mask[0, 0], mask[1, :, 0], mask[2, :, :, 0] = 0, 0, 0
    return np.ascontiguousarray(x, dtype=np.float32), gt, aff, mask
