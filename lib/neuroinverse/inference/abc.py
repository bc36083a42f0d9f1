"""Rejection approximate Bayesian computation (ABC), the classical SBI baseline.

Draw θ from the prior, simulate x, keep the θ whose simulated data lie closest to the
observation x_o (Pritchard et al., Mol. Biol. Evol. 1999; the REJ-ABC baseline of the SBI
benchmark, Lueckmann et al., AISTATS 2021). Distances are Euclidean after z-scoring every
data dimension by the standard deviation of the simulated data. The accepted set is either
the ``n_keep`` nearest simulations or a ``quantile`` of them.
:func:`resample_with_jitter` turns a small accepted set into as many samples as needed by
sampling rows and adding Gaussian kernel noise (a Gaussian KDE with Scott's bandwidth, as
sbibm does to produce a fixed number of REJ-ABC samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .._checks import as_tensor, check_positive, check_positive_int, check_range

__all__ = [
    "ABCResult",
    "rejection_abc",
    "resample_with_jitter",
    "sample_prior_checked",
    "simulate_checked",
]


@dataclass
class ABCResult:
    """Accepted parameters ``theta`` ``(k, d)``, their ``distances`` ``(k,)`` (ascending),
    the data scale used for the distance ``x_scale`` ``(d_x,)`` and the number of simulations."""

    theta: torch.Tensor
    distances: torch.Tensor
    x_scale: torch.Tensor
    n_simulations: int


def simulate_checked(
    simulator: Callable,
    theta: torch.Tensor,
    *,
    generator: torch.Generator | None,
    x_dim: int | None = None,
) -> torch.Tensor:
    """Call ``simulator(theta, generator=generator)`` and check its output.

    Raises ``ValueError`` naming ``simulator`` if it does not return an ``(n, d_x)`` tensor
    with one row per θ (and ``d_x == x_dim`` when given).
    """
    x = simulator(theta, generator=generator)
    if not isinstance(x, torch.Tensor):
        x = as_tensor(x, "simulator output")
    if x.ndim != 2 or x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"simulator must return x of shape (n, d_x) with n = {theta.shape[0]} rows (one per "
            f"theta); got {tuple(x.shape)}"
        )
    if x_dim is not None and x.shape[1] != x_dim:
        raise ValueError(f"simulator returned x with {x.shape[1]} columns, expected {x_dim}")
    return x.float()


def sample_prior_checked(prior, n: int, *, generator: torch.Generator | None) -> torch.Tensor:
    """``prior.sample(n, generator=...)`` with a check that it returns ``(n, prior.dim)`` without
    NaN."""
    theta = prior.sample(n, generator=generator)
    if not isinstance(theta, torch.Tensor) or theta.ndim != 2 or theta.shape != (n, prior.dim):
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(
            f"prior.sample({n}) must return a tensor of shape ({n}, {prior.dim}); got {shape}"
        )
    if torch.isnan(theta).any():
        raise ValueError("prior returned NaN parameters")
    return theta.float()


def rejection_abc(
    prior,
    simulator: Callable,
    x_o,
    *,
    n_simulations: int,
    n_keep: int | None = None,
    quantile: float | None = None,
    generator: torch.Generator | None = None,
    z_score: bool = True,
    batch_size: int = 100_000,
) -> ABCResult:
    """Rejection ABC with a nearest-neighbour acceptance rule.

    Args:
        prior: object with ``dim`` and ``sample(n, generator=...) -> (n, d)``.
        simulator: ``simulator(theta (n, d), generator=...) -> x (n, d_x)``.
        x_o: observation ``(d_x,)``.
        n_simulations: prior draws to simulate (>= 1).
        n_keep: keep this many nearest simulations; or
        quantile: keep this fraction (in (0, 1]) of them (exactly one of the two).
        generator: randomness of the prior draws and the simulator.
        z_score: divide each data dimension by its standard deviation over the simulations
            before the Euclidean distance.
        batch_size: simulations per simulator call.

    Returns:
        :class:`ABCResult` with the accepted θ sorted by distance.
    """
    if not isinstance(n_simulations, int) or n_simulations < 1:
        raise ValueError(
            "n_simulations must be a positive integer (an empty budget cannot be used); "
            f"got {n_simulations!r}"
        )
    if (n_keep is None) == (quantile is None):
        raise ValueError("give exactly one of n_keep and quantile")
    if n_keep is not None and (not isinstance(n_keep, int) or not 1 <= n_keep <= n_simulations):
        raise ValueError(
            f"n_keep must be an integer in [1, n_simulations={n_simulations}]; got {n_keep!r}"
        )
    if quantile is not None:
        check_range(quantile, "quantile", 0.0, 1.0, low_open=True)
        n_keep = max(1, int(round(float(quantile) * n_simulations)))
    x_o = (
        as_tensor(x_o, "x_o").reshape(-1)
        if not isinstance(x_o, torch.Tensor)
        else x_o.float().reshape(-1)
    )
    if not torch.isfinite(x_o).all():
        raise ValueError("x_o contains NaN or infinite values")
    thetas, xs = [], []
    done = 0
    while done < n_simulations:
        m = min(batch_size, n_simulations - done)
        th = sample_prior_checked(prior, m, generator=generator)
        x = simulate_checked(simulator, th, generator=generator)
        if x.shape[1] != x_o.numel():
            raise ValueError(
                f"x_o has {x_o.numel()} entries but the simulator returns x with "
                f"{x.shape[1]} columns"
            )
        thetas.append(th)
        xs.append(x.cpu())
        done += m
    theta, x = torch.cat(thetas), torch.cat(xs)
    ok = torch.isfinite(x).all(1)
    scale = (
        x[ok].std(0).clamp_min(1e-12) if (z_score and int(ok.sum()) > 1) else torch.ones(x.shape[1])
    )
    dist = torch.sqrt((((x - x_o) / scale) ** 2).sum(1))
    dist = torch.where(ok, dist, torch.full_like(dist, math.inf))
    n_keep = min(n_keep, int(ok.sum()))
    if n_keep < 1:
        raise ValueError("every simulation returned NaN or infinite data; nothing can be accepted")
    d, idx = torch.topk(dist, n_keep, largest=False, sorted=True)
    return ABCResult(theta=theta[idx], distances=d, x_scale=scale, n_simulations=n_simulations)


def resample_with_jitter(
    samples,
    n: int,
    *,
    bandwidth: float | None = None,
    prior=None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` samples from a Gaussian kernel density estimate of ``samples`` ``(k, d)``.

    Rows are drawn uniformly with replacement and perturbed by N(0, (h·σ_j)²) per dimension,
    σ_j the samples' standard deviation and ``h`` the ``bandwidth`` factor (default Scott's
    rule ``k^(-1/(d+4))``). With a ``prior`` (an object with ``contains``), perturbed samples
    outside its support are redrawn.

    Returns:
        ``(n, d)`` samples.
    """
    s = as_tensor(samples, "samples") if not isinstance(samples, torch.Tensor) else samples.float()
    if s.ndim != 2 or s.shape[0] < 2:
        raise ValueError(f"samples must have shape (k, d) with k >= 2; got {tuple(s.shape)}")
    check_positive_int(n, "n")
    k, d = s.shape
    h = k ** (-1.0 / (d + 4)) if bandwidth is None else check_positive(bandwidth, "bandwidth")
    sd = s.std(0).clamp_min(1e-12)
    out: list[torch.Tensor] = []
    have = 0
    for _ in range(1000):
        idx = torch.randint(0, k, (n,), generator=generator)
        cand = s[idx] + h * sd * torch.randn(n, d, generator=generator)
        if prior is not None:
            cand = cand[prior.contains(cand)]
        out.append(cand)
        have += cand.shape[0]
        if have >= n:
            return torch.cat(out)[:n]
    raise ValueError("could not draw enough jittered samples inside the prior's support")
