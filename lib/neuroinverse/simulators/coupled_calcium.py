"""Coupled spiking cells imaged with calcium: a GLM spike prior with synaptic connectivity.

The multi-cell model of the discrete-flows chapter (Aitchison, Adam, Turaga 2018 apply their
posterior to "accurate connectivity estimates for multiple cells"; the equations below are
the book's choice, consistent with that description). For N cells and T frames:

    s_{i,t} ~ Bernoulli(σ(b_i + Σ_j W_ij s_{j,t−1})),     b_i = logit(rate / frame rate),
    c_{i,t} = γ_i c_{i,t−1} + s_{i,t},   f_{i,t} = α_i c_{i,t} + β_i + σ_i ε_{i,t}.

W has a zero diagonal; each off-diagonal entry is non-zero with probability
``connection_prob``, with magnitude uniform in ``weight_range`` and a random sign. The
calcium parameters are drawn per cell from :data:`COUPLED_RANGES`. The log-pmf of the spike
prior, :func:`coupled_log_prior`, is shipped beside the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import lfilter

from .._checks import check_positive, check_positive_int, check_probability
from .calcium import FRAME_RATE

__all__ = [
    "COUPLED_RANGES",
    "CoupledCalciumData",
    "sample_coupling",
    "sample_coupled_params",
    "simulate_coupled",
    "coupled_log_prior",
]

#: Calcium parameters per cell: γ ∈ [0.94, 0.98], α ∈ [0.3, 0.5], β = 0, σ ∈ [0.05, 0.15].
COUPLED_RANGES = dict(gamma=(0.94, 0.98), alpha=(0.3, 0.5), beta=0.0, sigma=(0.05, 0.15))


@dataclass
class CoupledCalciumData:
    """One simultaneous recording of N coupled cells.

    Attributes:
        fluorescence: ``(N, T)`` observed traces (a.u.), float32.
        spikes: ``(N, T)`` true spikes in {0, 1}, float32.
        calcium: ``(N, T)`` noiseless calcium, float32.
        weights: ``(N, N)`` true coupling W (row i: inputs to cell i), float64.
        bias: ``(N,)`` baseline log-odds b, float64.
        params: per-cell ``gamma, alpha, beta, sigma`` ``(N,)``, float64.
        frame_rate: frames per second.
    """

    fluorescence: torch.Tensor
    spikes: torch.Tensor
    calcium: torch.Tensor
    weights: torch.Tensor
    bias: torch.Tensor
    params: dict[str, torch.Tensor]
    frame_rate: float = FRAME_RATE

    @property
    def n_cells(self) -> int:
        return self.fluorescence.shape[0]

    @property
    def n_frames(self) -> int:
        return self.fluorescence.shape[1]


def _uniform(lo: float, hi: float, shape, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)


def sample_coupling(
    n_cells: int,
    *,
    generator: torch.Generator,
    connection_prob: float = 0.3,
    weight_range: tuple[float, float] = (1.5, 3.0),
) -> torch.Tensor:
    """Coupling ``(n_cells, n_cells)``: zero diagonal, sparse off-diagonal entries
    ±U[weight_range]."""
    n = check_positive_int(n_cells, "n_cells")
    check_probability(connection_prob, "connection_prob")
    lo, hi = weight_range
    if not 0 <= lo <= hi:
        raise ValueError(
            f"weight_range must be (low, high) with 0 <= low <= high; got {weight_range}"
        )
    present = torch.rand(n, n, generator=generator, dtype=torch.float64) < connection_prob
    sign = torch.where(torch.rand(n, n, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0)
    w = present * sign * _uniform(lo, hi, (n, n), generator)
    return w.fill_diagonal_(0.0)


def sample_coupled_params(n_cells: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Calcium parameters per cell from :data:`COUPLED_RANGES` (float64)."""
    n = check_positive_int(n_cells, "n_cells")
    r = COUPLED_RANGES
    return dict(
        gamma=_uniform(*r["gamma"], n, generator),
        alpha=_uniform(*r["alpha"], n, generator),
        beta=torch.full((n,), r["beta"], dtype=torch.float64),
        sigma=_uniform(*r["sigma"], n, generator),
    )


def simulate_coupled(
    n_cells: int,
    n_frames: int,
    *,
    generator: torch.Generator,
    rate_hz: float = 2.0,
    frame_rate: float = FRAME_RATE,
    weights: torch.Tensor | None = None,
    params: dict[str, torch.Tensor] | None = None,
    connection_prob: float = 0.3,
    weight_range: tuple[float, float] = (1.5, 3.0),
) -> CoupledCalciumData:
    """Simulate N coupled cells imaged together (see the module docstring).

    Args:
        n_cells, n_frames: sizes; traces are ``(n_cells, n_frames)``.
        generator: CPU generator for the coupling, parameters, spikes and noise.
        rate_hz: baseline firing rate (spikes per second without input), sets b.
        frame_rate: frames per second.
        weights: the coupling ``(N, N)`` (zero diagonal); drawn by :func:`sample_coupling`
            with ``connection_prob`` and ``weight_range`` when None.
        params: per-cell ``gamma, alpha, beta, sigma``; drawn when None.
    """
    n = check_positive_int(n_cells, "n_cells")
    T = check_positive_int(n_frames, "n_frames")
    p = check_positive(rate_hz, "rate_hz") / check_positive(frame_rate, "frame_rate")
    if p >= 1:
        raise ValueError(f"rate_hz / frame_rate must be < 1; got {rate_hz}/{frame_rate}")
    if weights is None:
        weights = sample_coupling(
            n, generator=generator, connection_prob=connection_prob, weight_range=weight_range
        )
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if (
        weights.shape != (n, n)
        or (weights.diagonal() != 0).any()
        or not torch.isfinite(weights).all()
    ):
        raise ValueError(f"weights must be a finite ({n}, {n}) matrix with a zero diagonal")
    if params is None:
        params = sample_coupled_params(n, generator=generator)
    for k in ("gamma", "alpha", "beta", "sigma"):
        if k not in params or params[k].shape != (n,):
            raise ValueError(f"params[{k!r}] must be a tensor of shape ({n},)")
    if ((params["gamma"] <= 0) | (params["gamma"] >= 1)).any() or (params["sigma"] < 0).any():
        raise ValueError("params['gamma'] must lie in (0, 1) and params['sigma'] be >= 0")
    bias = torch.full((n,), math.log(p / (1 - p)), dtype=torch.float64)
    u = torch.rand(T, n, generator=generator, dtype=torch.float64).numpy()
    w, b = weights.numpy(), bias.numpy()
    s = np.zeros((T, n))
    prev = np.zeros(n)
    for t in range(T):  # the GLM is sequential: each frame depends on the previous one
        prev = (u[t] < 1.0 / (1.0 + np.exp(-(b + w @ prev)))).astype(float)
        s[t] = prev
    spikes = torch.from_numpy(s.T.copy())
    calcium = torch.from_numpy(
        np.stack(
            [
                lfilter([1.0], [1.0, -float(g)], row)
                for g, row in zip(params["gamma"], s.T, strict=True)
            ]
        )
    )
    noise = torch.randn(n, T, generator=generator, dtype=torch.float64)
    f = (
        params["alpha"][:, None] * calcium
        + params["beta"][:, None]
        + params["sigma"][:, None] * noise
    )
    return CoupledCalciumData(
        f.float(),
        spikes.float(),
        calcium.float(),
        weights.clone(),
        bias,
        {k: v.clone() for k, v in params.items()},
        frame_rate,
    )


def coupled_log_prior(
    spikes: torch.Tensor, bias: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """log p(s) of the GLM prior for spikes ``(..., N, T)``:
    Σ_{i,t} log Bern(s_{i,t}; σ(b_i + Σ_j W_ij s_{j,t−1})).

    The first frame has no past (s_{·,−1} = 0). Returns the batch shape ``(...)``.
    """
    s = torch.as_tensor(spikes, dtype=torch.float64)
    prev = torch.nn.functional.pad(s[..., :-1], (1, 0))
    ell = torch.as_tensor(bias, dtype=torch.float64)[:, None] + torch.einsum(
        "ij,...jt->...it", torch.as_tensor(weights, dtype=torch.float64), prev
    )
    lp = -s * torch.nn.functional.softplus(-ell) - (1 - s) * torch.nn.functional.softplus(ell)
    return lp.sum((-1, -2))
