"""Connectivity between imaged cells: a learnable coupled generative model and GLM baselines.

* :class:`CoupledCalciumModel`: the generative model of several cells imaged together, for
  the VAE: a GLM spike prior with coupling, s_{i,t} ~ Bern(σ(b_i + Σ_j W_ij s_{j,t−1})), and
  linear calcium per cell, f_{i,t} ~ N(α_i c_{i,t} + β_i, σ_i²), c_{i,t} = γ_i c_{i,t−1} + s_{i,t}.
  Its parameters (b, W, γ, α, β, σ) are point estimates, learned by maximising the ELBO
  together with the posterior (Aitchison, Adam, Turaga 2018).
* :func:`glm_connectivity`: a logistic GLM per cell on the previous frame's spikes
  (scikit-learn), the oracle when fitted on the true spikes.
* :func:`two_stage_connectivity`: OASIS deconvolution, spikes thresholded at half the median
  non-zero amplitude, then the same GLM: the classical two-stage baseline.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_ndim, check_positive_int, check_range, to_numpy
from .calcium_models import ar1_calcium, gaussian_log_likelihood
from .deconvolution import oasis_deconvolve

__all__ = [
    "CoupledCalciumModel",
    "glm_connectivity",
    "threshold_deconvolved",
    "two_stage_connectivity",
]


def _inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.expm1(x))


class CoupledCalciumModel(nn.Module):
    """Differentiable generative model of N coupled cells recorded together.

    The VAE indexes generative parameter sets by "cell"; here one set covers the whole
    recording, so :attr:`n_cells` is 1 and the ``cell`` argument must be 0. The N neurons are
    the channels of traces and spikes ``(..., N, T)``. Self-coupling is not modelled (the
    diagonal of W is held at zero).

    Args:
        n_neurons: N.
        prior_rate: initial spike probability per frame (sets b).
        calcium: initial calcium parameters ``gamma, alpha, beta, sigma``, each a number or
            ``(N,)`` values (the centres of the simulation ranges by default: 0.96, 0.4, 0, 0.1).
        learn_calcium: learn the calcium parameters too; ``False`` holds them fixed (a
            calibrated indicator) and only b and W are learned.
    """

    def __init__(
        self,
        n_neurons: int,
        *,
        prior_rate: float = 2.0 / 60.0,
        calcium: dict | None = None,
        learn_calcium: bool = True,
    ) -> None:
        super().__init__()
        n = check_positive_int(n_neurons, "n_neurons")
        check_range(prior_rate, "prior_rate", 1e-6, 1 - 1e-6)
        init = {"gamma": 0.96, "alpha": 0.4, "beta": 0.0, "sigma": 0.1, **(calcium or {})}
        unknown = set(init) - {"gamma", "alpha", "beta", "sigma"}
        if unknown:
            raise ValueError(
                f"unknown calcium parameters {sorted(unknown)}; known: gamma, alpha, beta, sigma"
            )
        v = {k: torch.as_tensor(x, dtype=torch.float32).expand(n).clone() for k, x in init.items()}
        if (
            ((v["gamma"] <= 0) | (v["gamma"] >= 1)).any()
            or (v["alpha"] <= 0).any()
            or (v["sigma"] <= 0).any()
        ):
            raise ValueError("calcium needs gamma in (0, 1) and alpha, sigma > 0")
        self.bias = nn.Parameter(torch.full((n,), math.log(prior_rate / (1 - prior_rate))))
        self.coupling = nn.Parameter(torch.zeros(n, n))
        self.g = nn.Parameter(torch.logit(v["gamma"]), requires_grad=learn_calcium)
        self.a = nn.Parameter(_inverse_softplus(v["alpha"]), requires_grad=learn_calcium)
        self.beta = nn.Parameter(v["beta"], requires_grad=learn_calcium)
        self.sigma_param = nn.Parameter(_inverse_softplus(v["sigma"]), requires_grad=learn_calcium)
        self.register_buffer("off_diagonal", 1.0 - torch.eye(n))

    @property
    def n_cells(self) -> int:
        """Parameter sets the VAE indexes: one, for the whole recording."""
        return 1

    @property
    def n_neurons(self) -> int:
        return self.bias.shape[0]

    def _check(self, spikes: torch.Tensor, cell) -> None:
        if int(torch.as_tensor(cell).max()) != 0 or int(torch.as_tensor(cell).min()) != 0:
            raise ValueError(
                f"CoupledCalciumModel describes one recording: cell must be 0; got {cell}"
            )
        if spikes.dim() < 2 or spikes.shape[-2] != self.n_neurons:
            raise ValueError(
                f"spikes must have shape (..., {self.n_neurons}, T); got {tuple(spikes.shape)}"
            )

    @property
    def weights(self) -> torch.Tensor:
        """W with its diagonal held at zero ``(N, N)``."""
        return self.coupling * self.off_diagonal

    def constrained(self) -> dict[str, torch.Tensor]:
        """b, W, γ, α, β, σ (detached copies)."""
        with torch.no_grad():
            return dict(
                bias=self.bias.clone(),
                weights=self.weights.clone(),
                gamma=torch.sigmoid(self.g).clone(),
                alpha=F.softplus(self.a).clone(),
                beta=self.beta.clone(),
                sigma=F.softplus(self.sigma_param).clone(),
            )

    def mean(self, spikes: torch.Tensor, cell: int = 0) -> torch.Tensor:
        """Noiseless traces ``α c + β`` with the shape of ``spikes`` ``(..., N, T)``."""
        self._check(spikes, cell)
        c = ar1_calcium(spikes, torch.sigmoid(self.g))
        return F.softplus(self.a)[:, None] * c + self.beta[:, None]

    def log_likelihood(
        self,
        traces: torch.Tensor,
        spikes: torch.Tensor,
        cell: int = 0,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Σ over neurons and frames of log N(f; α c + β, σ²) (masked frames left out)."""
        return gaussian_log_likelihood(
            traces,
            self.mean(spikes, cell),
            F.softplus(self.sigma_param)[:, None],
            mask,
            dims=(-1, -2),
        )

    def log_prior(self, spikes: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log p(s) of the coupled GLM, summed over neurons and frames; real-valued s accepted.

        The frame before a snippet counts as silent.
        """
        self._check(spikes, 0)
        prev = F.pad(spikes[..., :-1], (1, 0))
        ell = self.bias[:, None] + torch.einsum("ij,...jt->...it", self.weights, prev)
        lp = -spikes * F.softplus(-ell) - (1 - spikes) * F.softplus(ell)
        if mask is not None:
            lp = lp * mask
        return lp.sum((-1, -2))


def glm_connectivity(spikes, *, c: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Coupling from spike trains by a logistic GLM per cell on the previous frame's spikes.

    Args:
        spikes: ``(N, T)`` binary spike trains (true, or thresholded estimates).
        c: inverse L2 penalty of :class:`sklearn.linear_model.LogisticRegression`.

    Returns:
        ``(W_hat, b_hat)``: ``(N, N)`` (row i: inputs to cell i, diagonal included: each cell's
        own previous frame is a regressor) and ``(N,)``. A cell that never (or always) spikes
        gets a zero row.
    """
    from sklearn.linear_model import LogisticRegression

    s = to_numpy(spikes, "spikes").astype(float)
    if s.ndim != 2 or s.shape[1] < 2:
        raise ValueError(f"spikes must have shape (cells, frames) with >= 2 frames; got {s.shape}")
    if not np.isin(s, (0.0, 1.0)).all():
        raise ValueError("spikes must be 0 or 1")
    x, y = s[:, :-1].T, s[:, 1:]
    n = s.shape[0]
    w, b = np.zeros((n, n)), np.zeros(n)
    for i in range(n):
        if y[i].min() == y[i].max():
            continue
        model = LogisticRegression(C=c, max_iter=1000).fit(x, y[i])
        w[i], b[i] = model.coef_[0], model.intercept_[0]
    return w, b


def threshold_deconvolved(activity, *, fraction: float = 0.5) -> np.ndarray:
    """Binary spikes from deconvolved activity ``(N, T)``: above ``fraction`` × each trace's
    median non-zero amplitude."""
    x = to_numpy(activity, "activity").astype(float)
    if x.ndim != 2:
        raise ValueError(f"activity must have shape (cells, frames); got {x.shape}")
    check_range(fraction, "fraction", 0.0, 1.0)
    out = np.zeros_like(x)
    for i, row in enumerate(x):
        nz = row[row > 1e-9]
        if nz.size:
            out[i] = row > fraction * np.median(nz)
    return out


def two_stage_connectivity(fluorescence, *, c: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """OASIS (decay estimated per trace) → thresholded spikes → :func:`glm_connectivity`."""
    f = (
        fluorescence
        if isinstance(fluorescence, torch.Tensor)
        else torch.as_tensor(np.asarray(fluorescence))
    )
    check_ndim(f, "fluorescence", 2, "(cells, frames)")
    activity, _ = oasis_deconvolve(f)
    return glm_connectivity(threshold_deconvolved(activity), c=c)
