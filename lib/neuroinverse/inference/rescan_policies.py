"""Rescan policies of learning-guided SEM: which pixels a second, slow pass revisits.

Mi et al., "Learning Guided Electron Microscopy with Active Acquisition" (MICCAI 2020,
arXiv:2101.02746), Sec. 2: a fast scan is taken everywhere, a network predicts where it will
cause errors (a map ``p`` in [0, 1]), and a budget of ``k = ρ·N`` pixels is rescanned slowly.
Every policy here returns a boolean mask with exactly ``k`` pixels set:

* :func:`random_rescan`: ``k`` pixels drawn uniformly without replacement (baseline);
* :func:`grid_rescan`: ``k`` pixels on an even lattice (the uniform, content-blind baseline);
* :func:`topk_rescan`: the ``k`` largest scores (the SmartEM-style threshold policy; given the
  true error map it is the oracle, given ``-x_fast`` the darkest-pixel baseline);
* :func:`wdpp_rescan`: the paper's weighted determinantal point process (WDPP), per 64×64
  window, with the likelihood kernel ``L = diag(q) K diag(q)``, quality ``q = (p / max p)^λ``
  and similarity ``K_ij = exp(-‖x_i − x_j‖² / σ²)`` (Sec. 2.3). The paper samples it exactly;
  here the mode is approximated by the greedy MAP algorithm of Chen, Zhang & Zhou, "Fast
  greedy MAP inference for determinantal point process" (NeurIPS 2018, Alg. 1), which grows
  the set by the item of largest marginal gain ``log det L_{Y∪{j}} − log det L_Y`` with an
  incremental Cholesky factor, in O(N k²) per window. It is deterministic, where the paper's
  sampler is random.

The total budget is shared among windows in proportion to the window's ``Σ p`` (largest
remainders), so that every policy spends the same ``k`` (the paper sets ``k`` per window by
thresholding ``p``, which leaves the total free).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive, check_positive_int, check_range, to_numpy

__all__ = [
    "rescan_budget",
    "random_rescan",
    "grid_rescan",
    "topk_rescan",
    "greedy_kdpp",
    "window_budgets",
    "wdpp_rescan",
    "POLICIES",
    "rescan_masks",
]

#: The policies :func:`rescan_masks` knows, by name.
POLICIES = ("random", "grid", "topk", "wdpp")


def rescan_budget(n_pixels: int, rho: float) -> int:
    """Rescanned pixels ``k = round(ρ·N)`` (at least 1) for a fraction ``ρ ∈ (0, 1]``."""
    n_pixels = check_positive_int(n_pixels, "n_pixels")
    rho = check_range(rho, "rho", 0.0, 1.0, low_open=True)
    return int(min(n_pixels, max(1, round(rho * n_pixels))))


def _score_map(x, name: str) -> np.ndarray:
    a = np.asarray(to_numpy(x, name), dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D map (H, W); got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _generator(seed, generator) -> np.random.Generator:
    return generator if generator is not None else np.random.default_rng(seed)


def random_rescan(shape, rho: float, *, seed: int = 0, generator=None) -> np.ndarray:
    """``k = rescan_budget(H·W, ρ)`` pixels drawn uniformly without replacement; (H, W) bool."""
    h, w = (check_positive_int(s, "shape") for s in shape)
    k = rescan_budget(h * w, rho)
    idx = _generator(seed, generator).choice(h * w, size=k, replace=False)
    mask = np.zeros(h * w, bool)
    mask[idx] = True
    return mask.reshape(h, w)


def grid_rescan(shape, rho: float) -> np.ndarray:
    """``k`` pixels spread evenly: every ``N/k``-th pixel of the raster, offsets staggered."""
    h, w = (check_positive_int(s, "shape") for s in shape)
    k = rescan_budget(h * w, rho)
    # an irrational-step (golden-ratio) sequence over the raster: even in both axes, exact k
    idx = np.floor((np.arange(k) * 0.6180339887498949 % 1.0) * h * w).astype(int)
    idx = np.unique(idx)
    if idx.size < k:  # collisions (tiny maps only): fill with the first free raster pixels
        free = np.setdiff1d(np.arange(h * w), idx)[: k - idx.size]
        idx = np.concatenate([idx, free])
    mask = np.zeros(h * w, bool)
    mask[idx] = True
    return mask.reshape(h, w)


def topk_rescan(score, rho: float, *, seed: int = 0, generator=None) -> np.ndarray:
    """The ``k`` pixels of largest ``score`` (ties broken at random); (H, W) bool.

    With the predicted error map it is the threshold policy, with the true error map the
    oracle, and with ``-x_fast`` the darkest-pixel baseline.
    """
    s = _score_map(score, "score")
    k = rescan_budget(s.size, rho)
    tie = _generator(seed, generator).random(s.size)
    order = np.lexsort((tie, -s.ravel()))  # by score descending, then the random tie-breaker
    mask = np.zeros(s.size, bool)
    mask[order[:k]] = True
    return mask.reshape(s.shape)


def greedy_kdpp(quality, coords, k: int, *, sigma: float, eps: float = 1e-10) -> np.ndarray:
    """Greedy MAP of the k-DPP with ``L = diag(q) K diag(q)``, ``K_ij = exp(-‖x_i−x_j‖²/σ²)``.

    Chen, Zhang & Zhou (NeurIPS 2018), Alg. 1: keep ``c_j`` (the rows of the Cholesky factor of
    ``L_Y`` extended by item ``j``) and ``d_j² = L_jj − ‖c_j‖²``, the gain of adding ``j``;
    pick ``argmax d_j²``, then update ``e_j = (L_{y j} − ⟨c_y, c_j⟩)/d_y``, ``c_j ← [c_j, e_j]``,
    ``d_j² ← d_j² − e_j²``. When every gain is below ``eps`` (``L`` has rank < k, e.g. many
    items in a small window), the rest of the budget is filled by quality order.

    Args:
        quality: (N,) non-negative qualities ``q``.
        coords: (N, D) item positions, in the units of ``sigma``.
        k: number of items to choose (1 ≤ k ≤ N).
        sigma: kernel length (> 0).

    Returns:
        (k,) int indices into the N items, in the order chosen.
    """
    q = np.asarray(to_numpy(quality, "quality"), dtype=np.float64)
    x = np.asarray(to_numpy(coords, "coords"), dtype=np.float64)
    if q.ndim != 1 or x.ndim != 2 or x.shape[0] != q.size:
        raise ValueError(f"quality must be (N,) and coords (N, D); got {q.shape} and {x.shape}")
    if (q < 0).any() or not np.isfinite(q).all():
        raise ValueError("quality must be finite and non-negative")
    n = q.size
    k = check_positive_int(k, "k")
    if k > n:
        raise ValueError(f"k must be at most the number of items ({n}); got {k}")
    sigma = check_positive(sigma, "sigma")
    c = np.zeros((k, n))
    d2 = q**2  # K_jj = 1
    chosen = np.zeros(n, bool)
    order: list[int] = []
    j = int(np.argmax(d2))
    for t in range(k):
        if d2[j] <= eps:
            break
        order.append(j)
        chosen[j] = True
        if t == k - 1:
            break
        l_row = q[j] * q * np.exp(-((x - x[j]) ** 2).sum(1) / sigma**2)
        e = (l_row - c[:t, j] @ c[:t]) / np.sqrt(d2[j])
        c[t] = e
        d2 = d2 - e**2
        d2[chosen] = -np.inf
        j = int(np.argmax(d2))
    if len(order) < k:  # rank-deficient L: fill by quality
        rest = np.flatnonzero(~chosen)
        rest = rest[np.argsort(-q[rest], kind="stable")][: k - len(order)]
        order.extend(int(i) for i in rest)
    return np.asarray(order, dtype=int)


def window_budgets(p, k: int, window: int) -> np.ndarray:
    """Share ``k`` among the ``window``×``window`` tiles of ``p`` in proportion to their ``Σ p``.

    Largest-remainder rounding, capped by each tile's pixel count. Returns the per-tile
    budgets, shape (n_rows, n_cols) of tiles (edge tiles may be smaller).
    """
    s = _score_map(p, "p")
    k = check_positive_int(k, "k")
    window = check_positive_int(window, "window")
    if k > s.size:
        raise ValueError(f"k must be at most the number of pixels ({s.size}); got {k}")
    rows = range(0, s.shape[0], window)
    cols = range(0, s.shape[1], window)
    mass = np.array([[s[r : r + window, c : c + window].sum() for c in cols] for r in rows])
    size = np.array([[s[r : r + window, c : c + window].size for c in cols] for r in rows])
    mass = np.clip(mass, 0, None) + 1e-12 * size  # an all-zero map shares by area
    budget = np.zeros(mass.shape, int)
    left = k
    free = np.ones(mass.shape, bool)
    while left > 0:  # proportional shares, re-shared while some tile is full
        share = left * mass * free / (mass * free).sum()
        add = np.minimum(np.floor(share).astype(int), size - budget)
        if add.sum() == 0:
            rem = np.where(free, share - np.floor(share), -1.0)
            add = np.zeros_like(budget)
            add.flat[np.argmax(rem)] = 1
        budget += add
        left -= int(add.sum())
        free = budget < size
    return budget


def wdpp_rescan(
    p,
    rho: float,
    *,
    window: int = 64,
    sigma: float = 0.1,
    lam: float = 1.0,
    pool_factor: int = 4,
) -> np.ndarray:
    """The weighted-DPP rescan mask: per window, greedy k-DPP over the top ``pool_factor·k``.

    Args:
        p: (H, W) predicted error probability.
        rho: rescan fraction in (0, 1].
        window: tile side (the paper's 64).
        sigma: kernel length in window-normalised coordinates (the paper's 0.1, i.e. 6.4 px
            for a 64-px window; coordinates are ``(i + 1)/window``).
        lam: quality exponent λ (> 0) in ``q = (p / max p)^λ`` (the paper's ``(255 p)^λ``
            rescaled so that λ = 8 does not overflow).
        pool_factor: candidates per chosen pixel (the top ``pool_factor·k`` of ``p``).

    Returns:
        (H, W) bool with exactly ``rescan_budget(H·W, ρ)`` pixels set.
    """
    s = _score_map(p, "p")
    k = rescan_budget(s.size, rho)
    lam = check_positive(lam, "lam")
    sigma = check_positive(sigma, "sigma")
    pool_factor = check_positive_int(pool_factor, "pool_factor")
    window = check_positive_int(window, "window")
    budgets = window_budgets(s, k, window)
    mask = np.zeros(s.shape, bool)
    top = max(float(s.max()), 1e-12)
    for bi, r in enumerate(range(0, s.shape[0], window)):
        for bj, c in enumerate(range(0, s.shape[1], window)):
            kw = int(budgets[bi, bj])
            if kw == 0:
                continue
            tile = s[r : r + window, c : c + window]
            flat = tile.ravel()
            pool = np.argsort(-flat, kind="stable")[: min(flat.size, pool_factor * kw)]
            yy, xx = np.unravel_index(pool, tile.shape)
            coords = np.stack([yy + 1, xx + 1], axis=1) / window
            q = (np.clip(flat[pool], 0, None) / top) ** lam
            pick = pool[greedy_kdpp(q, coords, kw, sigma=sigma)]
            sub = np.zeros(flat.size, bool)
            sub[pick] = True
            mask[r : r + window, c : c + window] = sub.reshape(tile.shape)
    return mask


def rescan_masks(policy: str, scores, rho: float, *, seed: int = 0, **wdpp) -> np.ndarray:
    """One policy's masks for a stack of score maps (N, H, W): (N, H, W) bool.

    ``policy`` is one of :data:`POLICIES`; ``random`` and ``grid`` ignore the scores (image
    ``i`` of ``random`` uses seed ``seed + i``); ``wdpp`` passes ``wdpp`` keywords on.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(map(repr, POLICIES))}; got {policy!r}")
    s = np.asarray(to_numpy(scores, "scores"))
    if s.ndim != 3:
        raise ValueError(f"scores must have shape (N, H, W); got {s.shape}")
    out = []
    for i, p in enumerate(s):
        if policy == "random":
            out.append(random_rescan(p.shape, rho, seed=seed + i))
        elif policy == "grid":
            out.append(grid_rescan(p.shape, rho))
        elif policy == "topk":
            out.append(topk_rescan(p, rho, seed=seed + i))
        else:
            out.append(wdpp_rescan(p, rho, **wdpp))
    return np.stack(out)
