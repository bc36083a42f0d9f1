"""Sampling a posterior known up to a constant: on a grid, or by slice sampling (with R-hat).

A base module: it imports no other part of the library, so that the reference posteriors of
the toy simulators (:mod:`neuroinverse.simulators.toy`) and the emulator posteriors
(:mod:`neuroinverse.inference.active_learning`) share one grid sampler. Slice sampling is
Neal, "Slice sampling", Ann. Statist. 31(3), 2003 (stepping out and shrinkage), vectorised
over chains; split R-hat is Gelman et al., *Bayesian Data Analysis* (3rd ed.), Sec. 11.4.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ._checks import as_tensor, check_positive, check_positive_int, check_range, check_rows

__all__ = [
    "grid_posterior",
    "sample_grid",
    "grid_kde",
    "hpd_threshold",
    "fraction_in_hpd",
    "slice_sample",
    "split_rhat",
]


# ---------------------------------------------------------------------------------------------
# posteriors on grids
# ---------------------------------------------------------------------------------------------
def grid_posterior(
    log_density: Callable[[torch.Tensor], torch.Tensor],
    low,
    high,
    *,
    points: int = 200,
    chunk: int = 65536,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Evaluate and normalise an unnormalised log density on a regular 1-D or 2-D cell grid.

    Args:
        log_density: ``f(theta (n, d)) -> (n,)`` unnormalised log density (e.g.
            ``lambda t: ensemble.log_posterior(t, x_o, prior)``).
        low, high: ``(d,)`` box bounds, d ∈ {1, 2}.
        points: cells per axis (evaluated at the cell centres).
        chunk: evaluations per call of ``log_density``.

    Returns:
        ``(axes, density)``: a list of ``d`` arrays of cell centres ``(points,)`` and the
        density ``(points,)*d`` indexed ``[i₁, i₂]``, normalised so that
        ``density.sum() * cell_volume == 1``.
    """
    lo = as_tensor(low, "low", dtype=torch.float64).reshape(-1)
    hi = as_tensor(high, "high", dtype=torch.float64).reshape(-1)
    d = lo.numel()
    if d not in (1, 2) or hi.numel() != d or not bool((hi > lo).all()):
        raise ValueError(
            "low and high must be 1-D or 2-D boxes with high > low; "
            f"got {lo.tolist()}, {hi.tolist()}"
        )
    points = check_positive_int(points, "points", minimum=2)
    h = (hi - lo) / points
    axes = [(lo[j] + h[j] * (torch.arange(points, dtype=torch.float64) + 0.5)) for j in range(d)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    theta = torch.stack([m.reshape(-1) for m in mesh], 1).float()
    with torch.no_grad():
        lp = torch.cat(
            [
                log_density(theta[i : i + chunk]).detach().double().cpu().reshape(-1)
                for i in range(0, theta.shape[0], chunk)
            ]
        )
    if lp.shape[0] != theta.shape[0] or torch.isnan(lp).any():
        raise ValueError("log_density must return one non-NaN value per grid point")
    if not torch.isfinite(lp).any():
        raise ValueError("log_density is -inf on every grid point")
    p = torch.exp(lp - lp.max())
    vol = float(torch.prod(h))
    dens = (p / (p.sum() * vol)).reshape((points,) * d).numpy()
    return [a.numpy() for a in axes], dens


def sample_grid(
    axes: Sequence[np.ndarray],
    density: np.ndarray,
    n: int,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` samples ``(n, d)`` from a grid density: cells by mass, uniform jitter within
    a cell."""
    n = check_positive_int(n, "n")
    d = len(axes)
    dens = np.asarray(density, dtype=np.float64)
    if dens.ndim != d or any(dens.shape[j] != len(axes[j]) for j in range(d)):
        raise ValueError(f"density must have shape {tuple(len(a) for a in axes)}; got {dens.shape}")
    if not (np.isfinite(dens).all() and (dens >= 0).all() and dens.sum() > 0):
        raise ValueError("density must be finite, non-negative and not all zero")
    probs = torch.as_tensor(dens.ravel() / dens.sum())
    idx = torch.multinomial(probs, n, replacement=True, generator=generator)
    sub = torch.stack(torch.unravel_index(idx, dens.shape), 1)
    centre = torch.stack([torch.as_tensor(axes[j])[sub[:, j]] for j in range(d)], 1)
    h = torch.tensor([float(a[1] - a[0]) for a in axes], dtype=torch.float64)
    jitter = (torch.rand(n, d, generator=generator, dtype=torch.float64) - 0.5) * h
    return (centre + jitter).float()


def grid_kde(samples, axes: Sequence[np.ndarray], *, bandwidth: float | None = None) -> np.ndarray:
    """The density of :func:`~neuroinverse.inference.abc.resample_with_jitter` on a cell grid.

    A Gaussian kernel density estimate of ``samples`` ``(k, d)`` with per-dimension kernel
    width ``h·σ_j`` (``h`` Scott's factor ``k^(-1/(d+4))`` unless ``bandwidth`` is given,
    σ_j the samples' standard deviation), evaluated at the cell centres of ``axes`` and
    normalised over the grid, i.e. truncated to the grid's box as ``resample_with_jitter``
    with a box prior truncates by redrawing. Lets rejection-ABC samples be scored by an exact
    grid KL divergence.

    Args:
        samples: ``(k, d)`` with k ≥ 2, d = ``len(axes)``.
        axes: one array of equally spaced cell centres per dimension.
        bandwidth: the factor ``h``; default Scott's rule.

    Returns:
        ``(len(axes[0]), …)`` density with ``density.sum() · cell volume == 1``.
    """
    s = check_rows(samples, "samples", len(axes)).double().cpu()
    if s.shape[0] < 2:
        raise ValueError(f"samples needs at least 2 rows; got {s.shape[0]}")
    k, d = s.shape
    if d not in (1, 2):
        raise ValueError(f"grid_kde supports 1-D and 2-D grids; got d = {d}")
    h = k ** (-1.0 / (d + 4)) if bandwidth is None else check_positive(bandwidth, "bandwidth")
    width = (h * s.std(0).clamp_min(1e-12)).numpy()
    # a product kernel: the density is a sum over samples of products of 1-D Gaussians
    factors = [
        np.exp(
            -0.5
            * ((np.asarray(a, dtype=np.float64)[None, :] - s[:, j].numpy()[:, None]) / width[j])
            ** 2
        )
        for j, a in enumerate(axes)
    ]
    dens = np.einsum("ka,kb->ab", *factors) if d == 2 else factors[0].sum(0)
    vol = float(np.prod([a[1] - a[0] for a in axes]))
    if not dens.sum() > 0:
        raise ValueError("the kernel density estimate vanishes on the whole grid")
    return dens / (dens.sum() * vol)


def hpd_threshold(density: np.ndarray, *, level: float = 0.95) -> float:
    """Density level of the ``level`` highest-density region of a grid density (cells above it
    hold ``level``)."""
    level = check_range(level, "level", 0.0, 1.0)
    flat = np.sort(np.asarray(density, dtype=np.float64).ravel())[::-1]
    if not (np.isfinite(flat).all() and flat.sum() > 0):
        raise ValueError("density must be finite and not all zero")
    cum = np.cumsum(flat) / flat.sum()
    return float(flat[min(int(np.searchsorted(cum, level)), flat.size - 1)])


def fraction_in_hpd(
    theta, axes: Sequence[np.ndarray], density: np.ndarray, *, level: float = 0.95
) -> float:
    """Fraction of the points ``theta`` ``(n, d)`` inside the ``level`` highest-density region
    of a grid density.

    The region is the set of cells of highest density holding ``level`` of the mass; a point
    is inside if its cell is (points outside the grid are outside).
    """
    t = check_rows(theta, "theta", len(axes)).double().cpu().numpy()
    dens = np.asarray(density, dtype=np.float64)
    thresh = hpd_threshold(dens, level=level)
    inside_grid = np.ones(t.shape[0], dtype=bool)
    idx = []
    for j, a in enumerate(axes):
        h = a[1] - a[0]
        k = np.floor((t[:, j] - (a[0] - h / 2)) / h).astype(int)
        inside_grid &= (k >= 0) & (k < len(a))
        idx.append(np.clip(k, 0, len(a) - 1))
    hit = dens[tuple(idx)] >= thresh
    return float(np.mean(hit & inside_grid))


# ---------------------------------------------------------------------------------------------
# slice sampling (generic machinery, written here for the d > 2 posteriors)
# ---------------------------------------------------------------------------------------------
def slice_sample(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    init,
    n_samples: int,
    *,
    n_warmup: int = 100,
    thin: int = 1,
    width=1.0,
    max_steps_out: int = 10,
    max_shrink: int = 30,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Coordinate-wise slice sampling with stepping out (Neal 2003), vectorised over chains.

    Every chain updates one coordinate at a time: draw the slice height log y = log p(θ) +
    log U, place an interval of ``width`` at random around θ_j, step it out until both ends
    leave the slice, then shrink it towards θ_j until a point inside the slice is drawn.

    Args:
        log_prob: ``f(theta (C, d)) -> (C,)`` unnormalised log density (−inf outside support).
        init: ``(C, d)`` starting points, one per chain, each with finite log density (e.g.
            the highest-density training parameters).
        n_samples: samples kept per chain.
        n_warmup: discarded iterations per chain.
        thin: keep every ``thin``-th iteration.
        width: initial interval width, one number or ``(d,)``.
        max_steps_out / max_shrink: caps on the stepping-out and shrinking loops (a chain
            that exhausts the shrink budget keeps its point, which is a valid move).
        generator: randomness (on the CPU).
        progress: tqdm bar over iterations.

    Returns:
        ``(C, n_samples, d)`` samples.
    """
    x = check_rows(init, "init").double().cpu().clone()
    C, d = x.shape
    n_samples = check_positive_int(n_samples, "n_samples")
    n_warmup = check_positive_int(n_warmup, "n_warmup", minimum=0)
    thin = check_positive_int(thin, "thin")
    w = torch.as_tensor(width, dtype=torch.float64).reshape(-1).expand(d).clone()
    if not bool((w > 0).all()):
        raise ValueError(f"width must be positive; got {width!r}")

    def lp_fn(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return log_prob(t.float()).detach().double().cpu().reshape(-1)

    lp = lp_fn(x)
    if not torch.isfinite(lp).all():
        raise ValueError("init must have a finite log density in every chain")
    out = torch.empty(C, n_samples, d, dtype=torch.float64)
    total = n_warmup + n_samples * thin
    for it in tqdm(range(total), desc="slice sampling", disable=not progress, mininterval=1.0):
        for j in range(d):
            log_y = lp + torch.log(1 - torch.rand(C, generator=generator, dtype=torch.float64))
            left = x[:, j] - w[j] * torch.rand(C, generator=generator, dtype=torch.float64)
            right = left + w[j]
            for end, sign in ((left, -1.0), (right, 1.0)):
                grow = torch.ones(C, dtype=torch.bool)
                for _ in range(max_steps_out):
                    probe = x.clone()
                    probe[:, j] = end
                    grow &= lp_fn(probe) > log_y
                    if not grow.any():
                        break
                    end += sign * w[j] * grow
            active = torch.ones(C, dtype=torch.bool)
            for _ in range(max_shrink):
                prop = left + (right - left) * torch.rand(
                    C, generator=generator, dtype=torch.float64
                )
                cand = x.clone()
                cand[:, j] = prop
                lp_c = lp_fn(cand)
                acc = active & (lp_c > log_y)
                x[acc, j] = prop[acc]
                lp[acc] = lp_c[acc]
                rej = active & ~acc
                below = rej & (prop < x[:, j])
                left = torch.where(below, prop, left)
                right = torch.where(rej & ~below, prop, right)
                active = rej
                if not active.any():
                    break
        k = it - n_warmup
        if k >= 0 and k % thin == thin - 1:
            out[:, k // thin] = x
    return out.float()


def split_rhat(samples) -> torch.Tensor:
    """Split-R̂ (Gelman et al., BDA3) per dimension of ``(C, n, d)`` chains; ≈ 1 when mixed."""
    s = _as_chains(samples)
    C, n, d = s.shape
    if n < 4:
        raise ValueError(f"split_rhat needs at least 4 samples per chain; got {n}")
    half = n // 2
    ch = torch.cat([s[:, :half], s[:, half : 2 * half]], 0)  # (2C, half, d)
    W = ch.var(1).mean(0)
    B = half * ch.mean(1).var(0)
    var = (half - 1) / half * W + B / half
    return torch.sqrt(var / W)


def _as_chains(samples) -> torch.Tensor:
    s = samples if isinstance(samples, torch.Tensor) else as_tensor(samples, "samples")
    if s.ndim != 3:
        raise ValueError(f"samples must have shape (chains, n, d); got {tuple(s.shape)}")
    return s.double()
