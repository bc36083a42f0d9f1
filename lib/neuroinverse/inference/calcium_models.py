"""The generative calcium models of DeepSpike: p_θ(f | s), linear, saturating and with spines.

Speiser, Yan, Archer, Buesing, Turaga, Macke, "Fast amortized inference of neural activity
from calcium imaging data with variational autoencoders", NIPS 2017: the per-cell
generative models whose parameters θ the VAE of :mod:`neuroinverse.inference.spike_vae`
learns beside its recognition network (an AR(1) calcium trace, a saturating indicator, and
dendritic spines with back-propagating action potentials), with the Gaussian likelihood of
the fluorescence and the Bernoulli log-probability of the spikes they share.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "bernoulli_log_prob",
    "ar1_calcium",
    "gaussian_log_likelihood",
    "LinearCalciumModel",
    "SaturatingCalciumModel",
    "SpineCalciumModel",
]


def bernoulli_log_prob(
    s: torch.Tensor, p: torch.Tensor, mask: torch.Tensor | None = None, clip: float = 1e-3
) -> torch.Tensor:
    """Σ_t log Bern(s_t; p_t) over the last axis, p clipped to [clip, 1 − clip], frames masked."""
    p = p.clamp(clip, 1 - clip)
    lp = s * torch.log(p) + (1 - s) * torch.log1p(-p)
    if mask is not None:
        lp = lp * mask
    return lp.sum(-1)


def ar1_calcium(spikes: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Calcium ``c_t = γ c_{t−1} + s_t`` (c_0 = s_0) by FFT convolution with the kernel γ^k.

    ``gamma`` broadcasts against ``spikes.shape[:-1]``; the result is differentiable in γ and
    exact for a snippet that starts with no calcium.
    """
    T = spikes.shape[-1]
    k = torch.arange(T, device=spikes.device, dtype=spikes.dtype)
    kernel = gamma[..., None] ** k
    n = 2 * T
    return torch.fft.irfft(torch.fft.rfft(spikes, n=n) * torch.fft.rfft(kernel, n=n), n=n)[..., :T]


def gaussian_log_likelihood(
    traces: torch.Tensor,
    mean: torch.Tensor,
    sigma: torch.Tensor,
    mask: torch.Tensor | None,
    dims: tuple[int, ...] = (-1,),
) -> torch.Tensor:
    """Σ over ``dims`` of log N(traces; mean, σ²), frames with ``mask == 0`` left out."""
    resid = traces - mean
    ll = -0.5 * (resid / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    if mask is not None:
        ll = ll * mask
    return ll.sum(dims)


class LinearCalciumModel(nn.Module):
    """Differentiable M1 generative model with one parameter set per cell.

    ``F_θ(s)_t = α Σ_k γ^k s_{t−k} + β`` and ``f_t ~ N(F_θ(s)_t, σ_θ²)``, with γ = sigmoid(g),
    α = softplus(a), σ_θ = softplus(σ-param). The convolution with the kernel γ^k
    (k < kernel_length) is done by FFT so that it is differentiable in γ and batched over
    many spike trains at once.

    Args:
        n_cells: number of cells, each with its own θ.
        init: initial unconstrained values ``g, a, beta, log_sigma`` (the reference's M1
            initialisation by default: γ = 0.971, α = 0.69, β = −0.3, σ = 0.079).
    """

    def __init__(self, n_cells: int, init: dict[str, float] | None = None) -> None:
        super().__init__()
        if not isinstance(n_cells, int) or n_cells < 1:
            raise ValueError(f"n_cells must be a positive integer; got {n_cells!r}")
        init = {"g": 3.5, "a": 0.0, "beta": -0.3, "sigma_param": -2.5, **(init or {})}
        self.g = nn.Parameter(torch.full((n_cells,), float(init["g"])))
        self.a = nn.Parameter(torch.full((n_cells,), float(init["a"])))
        self.beta = nn.Parameter(torch.full((n_cells,), float(init["beta"])))
        self.sigma_param = nn.Parameter(torch.full((n_cells,), float(init["sigma_param"])))

    @property
    def n_cells(self) -> int:
        return self.g.shape[0]

    def constrained(self) -> dict[str, torch.Tensor]:
        """γ, α, β, σ per cell (detached copies)."""
        with torch.no_grad():
            return dict(
                gamma=torch.sigmoid(self.g).clone(),
                alpha=F.softplus(self.a).clone(),
                beta=self.beta.clone(),
                sigma=F.softplus(self.sigma_param).clone(),
            )

    def _cell(self, cell: int | torch.Tensor) -> torch.Tensor:
        cell = torch.as_tensor(cell, device=next(self.parameters()).device)
        if ((cell < 0) | (cell >= self.n_cells)).any():
            raise ValueError(f"cell index out of range [0, {self.n_cells}); got {cell.tolist()}")
        return cell

    def mean(self, spikes: torch.Tensor, cell: int | torch.Tensor) -> torch.Tensor:
        """Noiseless trace ``F_θ(s)`` with the same shape as ``spikes`` ``(..., T)``.

        ``cell`` is one index for all traces or a tensor broadcastable to ``spikes.shape[:-1]``.
        """
        cell = self._cell(cell)
        c = ar1_calcium(spikes, torch.sigmoid(self.g[cell]))
        return F.softplus(self.a[cell])[..., None] * c + self.beta[cell][..., None]

    def log_likelihood(
        self,
        traces: torch.Tensor,
        spikes: torch.Tensor,
        cell: int | torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Σ_t log N(f_t; F_θ(s)_t, σ_θ²) over the last axis (masked frames excluded)."""
        cell = self._cell(cell)
        return gaussian_log_likelihood(
            traces, self.mean(spikes, cell), F.softplus(self.sigma_param[cell])[..., None], mask
        )


class SaturatingCalciumModel(nn.Module):
    """Differentiable M2 generative model (saturating, supralinear dye), one θ per cell.

    ``c_t = γ c_{t−1} + s_t`` (by FFT convolution, as in :class:`LinearCalciumModel`), then
    ``d_t = η c_t^{1+ζ} (D_max − min(d_{t−1}, D_max)) + κ min(d_{t−1}, D_max)`` by a loop
    over frames, and ``f_t ~ N(α d_t + β, σ_θ²)``. Constraints: γ, κ = sigmoid; η, ζ, α,
    σ_θ = softplus. Initial values are those of the reference M2 notebook.
    """

    _INIT = {
        "g": 3.0,
        "e": -5.0,
        "z": 0.8,
        "d_max": 6.0,
        "k": 2.0,
        "a": 0.7,
        "beta": -0.2,
        "sigma_param": -4.0,
    }

    def __init__(self, n_cells: int, init: dict[str, float] | None = None) -> None:
        super().__init__()
        if not isinstance(n_cells, int) or n_cells < 1:
            raise ValueError(f"n_cells must be a positive integer; got {n_cells!r}")
        init = {**self._INIT, **(init or {})}
        for name, value in init.items():
            if name not in self._INIT:
                raise ValueError(f"unknown parameter {name!r}; known: {sorted(self._INIT)}")
            setattr(self, name, nn.Parameter(torch.full((n_cells,), float(value))))

    @property
    def n_cells(self) -> int:
        return self.g.shape[0]

    _cell = LinearCalciumModel._cell

    def constrained(self) -> dict[str, torch.Tensor]:
        """γ, η, ζ, D_max, κ, α, β, σ per cell (detached copies)."""
        with torch.no_grad():
            return dict(
                gamma=torch.sigmoid(self.g).clone(),
                eta=F.softplus(self.e).clone(),
                zeta=F.softplus(self.z).clone(),
                d_max=self.d_max.clone(),
                kappa=torch.sigmoid(self.k).clone(),
                alpha=F.softplus(self.a).clone(),
                beta=self.beta.clone(),
                sigma=F.softplus(self.sigma_param).clone(),
            )

    def mean(self, spikes: torch.Tensor, cell: int | torch.Tensor) -> torch.Tensor:
        """Noiseless trace ``α d_t + β`` with the shape of ``spikes`` ``(..., T)``."""
        cell = self._cell(cell)
        T = spikes.shape[-1]
        c = ar1_calcium(spikes, torch.sigmoid(self.g[cell]))
        drive = F.softplus(self.e[cell])[..., None] * c.clamp_min(0.0) ** (
            1 + F.softplus(self.z[cell])[..., None]
        )
        d_max = self.d_max[cell].expand(spikes.shape[:-1])
        kappa = torch.sigmoid(self.k[cell]).expand(spikes.shape[:-1])
        prev = torch.zeros(spikes.shape[:-1], device=spikes.device, dtype=spikes.dtype)
        out = []
        for t in range(T):
            clamped = torch.minimum(prev, d_max)
            prev = drive[..., t] * (d_max - clamped) + kappa * clamped
            out.append(prev)
        d = torch.stack(out, -1)
        return F.softplus(self.a[cell])[..., None] * d + self.beta[cell][..., None]

    log_likelihood = LinearCalciumModel.log_likelihood


class SpineCalciumModel(nn.Module):
    """Differentiable M4 (dendrite + spines) generative model, one θ per branch.

    Channel 0 of traces and spikes is the dendrite and its bAP train ``b``; channel m ≥ 1 is
    spine m and its synaptic train ``e^m``. With ``c^b = b * γ_b^k`` and ``c^m = e^m * γ_s^k``:
    dendrite mean ``α_D c^b + β_0``, spine mean ``a^m_b c^b + a^m_s c^m + β_m``; Gaussian noise
    with one σ per channel. γ = sigmoid, amplitudes and σ = softplus.
    """

    def __init__(self, n_branches: int, n_spines: int = 4) -> None:
        super().__init__()
        if (
            not isinstance(n_branches, int)
            or n_branches < 1
            or not isinstance(n_spines, int)
            or n_spines < 1
        ):
            raise ValueError(
                f"n_branches and n_spines must be positive integers; got {n_branches}, {n_spines}"
            )
        N, M = n_branches, n_spines
        self.g_b = nn.Parameter(torch.full((N,), 3.0))
        self.g_s = nn.Parameter(torch.full((N,), 3.0))
        self.a_d = nn.Parameter(torch.full((N,), 0.0))
        self.a_b = nn.Parameter(torch.full((N, M), -0.5))
        self.a_s = nn.Parameter(torch.full((N, M), -0.5))
        self.beta = nn.Parameter(torch.zeros(N, M + 1))
        self.sigma_param = nn.Parameter(torch.full((N, M + 1), -2.0))

    @property
    def n_cells(self) -> int:
        return self.g_b.shape[0]

    _cell = LinearCalciumModel._cell

    def mean(self, spikes: torch.Tensor, cell: int | torch.Tensor) -> torch.Tensor:
        """Noiseless traces ``(..., 1 + M, T)`` for spikes ``(..., 1 + M, T)``."""
        cell = self._cell(cell)
        M = self.a_b.shape[1]
        if spikes.shape[-2] != M + 1:
            raise ValueError(f"spikes must have {M + 1} channels; got {spikes.shape[-2]}")
        g_b = torch.sigmoid(self.g_b[cell])[..., None]
        gamma = torch.cat(
            [g_b, torch.sigmoid(self.g_s[cell])[..., None].expand(*g_b.shape[:-1], M)], -1
        )
        c = ar1_calcium(
            spikes, gamma
        )  # (..., 1 + M, T): the bAP channel decays with γ_b, spines with γ_s
        c_b, c_s = c[..., :1, :], c[..., 1:, :]
        amp_b = torch.cat([F.softplus(self.a_d[cell])[..., None], F.softplus(self.a_b[cell])], -1)[
            ..., None
        ]
        amp_s = F.softplus(self.a_s[cell])[..., None]
        mean = amp_b * c_b
        return (
            mean + torch.cat([torch.zeros_like(c_b), amp_s * c_s], -2) + self.beta[cell][..., None]
        )

    def log_likelihood(
        self,
        traces: torch.Tensor,
        spikes: torch.Tensor,
        cell: int | torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Σ over channels and frames of log N(f; mean, σ²) (masked frames excluded)."""
        cell = self._cell(cell)
        return gaussian_log_likelihood(
            traces,
            self.mean(spikes, cell),
            F.softplus(self.sigma_param[cell])[..., None],
            mask,
            dims=(-1, -2),
        )
