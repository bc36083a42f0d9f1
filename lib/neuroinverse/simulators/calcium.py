"""Calcium-imaging simulators: spikes → calcium → fluorescence, with the true parameters.

Models of Speiser et al., "Fast amortized inference of neural activity from calcium imaging
data with variational autoencoders", NIPS 2017 (parameter ranges from the authors'
reference notebooks, in the paper's code repository ``mackelab/DeepSpike``):

* **M1, linear AR(1)**: ``c_t = γ c_{t-1} + s_t``, ``f_t = α c_t + β + σ ε_t``.
* **M4, dendritic spines** (:func:`simulate_spines`): bAPs seen on a dendrite and all its
  spines, synaptic inputs seen on one spine each.
* **M2, saturating / facilitating**: ``c_t = γ c_{t-1} + s_t``,
  ``d_t = η c_t^{1+ζ} (D_max − min(d_{t-1}, D_max)) + κ min(d_{t-1}, D_max)``,
  ``f_t = α d_t + β + σ ε_t``.

Spikes are i.i.d. Bernoulli with probability ``rate_hz / frame_rate`` per frame. Every
function takes an explicit CPU ``torch.Generator`` and returns the latent truth (spikes,
calcium, parameters) beside the observation. Shapes: ``(n_cells, n_frames)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import check_positive, check_positive_int

__all__ = [
    "FRAME_RATE",
    "M1_RANGES",
    "M2_RANGES",
    "CalciumData",
    "SpineData",
    "sample_linear_params",
    "sample_saturating_params",
    "simulate_spikes",
    "simulate_linear",
    "simulate_saturating",
    "simulate_spines",
    "decay_time",
]

FRAME_RATE = 60.0  #: frames per second of the reference data

#: M1 ranges of the *unconstrained* parameters (γ = sigmoid(g), α = softplus(a)), β, σ.
M1_RANGES = dict(g=(2.75, 4.6), a=(-1.25, -0.43), beta=-0.3, sigma=(0.07, 0.15))
#: M2 ranges (γ = sigmoid(g), η = softplus(e), ζ = softplus(z), κ = sigmoid(k), α = softplus(a)).
M2_RANGES = dict(
    g=(2.5, 3.5),
    e=(-5.9, -4.9),
    z=(0.5, 1.0),
    d_max=(5.5, 6.5),
    k=(2.0, 2.5),
    a=(0.2, 0.5),
    beta=-0.2,
    sigma=(0.02, 0.05),
)


@dataclass
class CalciumData:
    """A simulated data set.

    Attributes:
        fluorescence: ``(n_cells, n_frames)`` observed traces (a.u.).
        spikes: ``(n_cells, n_frames)`` true spike trains in {0, 1}.
        calcium: ``(n_cells, n_frames)`` noiseless calcium ``c_t`` (spikes, decayed).
        params: true per-cell parameters, each a ``(n_cells,)`` tensor (γ, α, β, σ, ...).
        frame_rate: frames per second.
    """

    fluorescence: torch.Tensor
    spikes: torch.Tensor
    calcium: torch.Tensor
    params: dict[str, torch.Tensor]
    frame_rate: float = FRAME_RATE

    @property
    def n_cells(self) -> int:
        return self.fluorescence.shape[0]

    @property
    def n_frames(self) -> int:
        return self.fluorescence.shape[1]

    def subset(self, idx) -> CalciumData:
        """The cells ``idx`` (a slice, index list or boolean mask)."""
        return CalciumData(
            self.fluorescence[idx],
            self.spikes[idx],
            self.calcium[idx],
            {k: v[idx] for k, v in self.params.items()},
            self.frame_rate,
        )


def _uniform(lo: float, hi: float, n: int, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _check_sizes(n_cells: int, n_frames: int) -> None:
    check_positive_int(n_cells, "n_cells")
    check_positive_int(n_frames, "n_frames")


def decay_time(gamma: torch.Tensor, frame_rate: float = FRAME_RATE) -> torch.Tensor:
    """Calcium decay time constant τ = −Δt / ln γ in seconds."""
    gamma = torch.as_tensor(gamma)
    if ((gamma <= 0) | (gamma >= 1)).any():
        raise ValueError("gamma must lie in (0, 1)")
    return -1.0 / (frame_rate * torch.log(gamma))


def sample_linear_params(n_cells: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Draw M1 parameters per cell from :data:`M1_RANGES`: γ, α, β, σ (float64)."""
    _check_sizes(n_cells, 1)
    r = M1_RANGES
    g = _uniform(*r["g"], n_cells, generator)
    a = _uniform(*r["a"], n_cells, generator)
    return dict(
        gamma=torch.sigmoid(g),
        alpha=torch.nn.functional.softplus(a),
        beta=torch.full((n_cells,), r["beta"], dtype=torch.float64),
        sigma=_uniform(*r["sigma"], n_cells, generator),
    )


def sample_saturating_params(
    n_cells: int, *, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Draw M2 parameters per cell from :data:`M2_RANGES` (float64)."""
    _check_sizes(n_cells, 1)
    r, sp = M2_RANGES, torch.nn.functional.softplus
    return dict(
        gamma=torch.sigmoid(_uniform(*r["g"], n_cells, generator)),
        eta=sp(_uniform(*r["e"], n_cells, generator)),
        zeta=sp(_uniform(*r["z"], n_cells, generator)),
        d_max=_uniform(*r["d_max"], n_cells, generator),
        kappa=torch.sigmoid(_uniform(*r["k"], n_cells, generator)),
        alpha=sp(_uniform(*r["a"], n_cells, generator)),
        beta=torch.full((n_cells,), r["beta"], dtype=torch.float64),
        sigma=_uniform(*r["sigma"], n_cells, generator),
    )


def simulate_spikes(
    n_cells: int,
    n_frames: int,
    *,
    rate_hz: float,
    frame_rate: float = FRAME_RATE,
    generator: torch.Generator,
) -> torch.Tensor:
    """I.i.d. Bernoulli spike trains ``(n_cells, n_frames)`` with ``rate_hz`` spikes per second."""
    _check_sizes(n_cells, n_frames)
    rate_hz = check_positive(rate_hz, "rate_hz", allow_zero=True)
    frame_rate = check_positive(frame_rate, "frame_rate")
    p = rate_hz / frame_rate
    if p > 1:
        raise ValueError(f"rate_hz / frame_rate must be <= 1; got {rate_hz}/{frame_rate}")
    return (torch.rand(n_cells, n_frames, generator=generator, dtype=torch.float64) < p).double()


def _ar1(spikes: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    c = torch.empty_like(spikes)
    prev = torch.zeros(spikes.shape[0], dtype=spikes.dtype)
    for t in range(spikes.shape[1]):
        prev = gamma * prev + spikes[:, t]
        c[:, t] = prev
    return c


def simulate_linear(
    n_cells: int,
    n_frames: int,
    *,
    rate_hz: float = 1.0,
    frame_rate: float = FRAME_RATE,
    generator: torch.Generator,
    params: dict[str, torch.Tensor] | None = None,
) -> CalciumData:
    """Simulate M1 (linear AR(1) calcium, Gaussian noise) for ``n_cells`` cells.

    Args:
        n_cells, n_frames: sizes; traces are ``(n_cells, n_frames)``.
        rate_hz: firing rate in spikes per second (the paper uses 0.7–1.2 Hz).
        frame_rate: frames per second (60 Hz in the reference).
        generator: CPU generator for parameters, spikes and noise.
        params: per-cell ``gamma, alpha, beta, sigma``; drawn from :data:`M1_RANGES` if None.
    """
    _check_sizes(n_cells, n_frames)
    if params is None:
        params = sample_linear_params(n_cells, generator=generator)
    for k in ("gamma", "alpha", "beta", "sigma"):
        if k not in params or params[k].shape != (n_cells,):
            raise ValueError(f"params[{k!r}] must be a tensor of shape ({n_cells},)")
    if ((params["gamma"] <= 0) | (params["gamma"] >= 1)).any():
        raise ValueError("params['gamma'] must lie in (0, 1)")
    if (params["sigma"] < 0).any() or (params["alpha"] <= 0).any():
        raise ValueError("params['sigma'] must be >= 0 and params['alpha'] > 0")
    s = simulate_spikes(
        n_cells, n_frames, rate_hz=rate_hz, frame_rate=frame_rate, generator=generator
    )
    c = _ar1(s, params["gamma"])
    noise = torch.randn(n_cells, n_frames, generator=generator, dtype=torch.float64)
    f = params["alpha"][:, None] * c + params["beta"][:, None] + params["sigma"][:, None] * noise
    return CalciumData(
        f.float(), s.float(), c.float(), {k: v.clone() for k, v in params.items()}, frame_rate
    )


def simulate_saturating(
    n_cells: int,
    n_frames: int,
    *,
    rate_hz: float = 1.0,
    frame_rate: float = FRAME_RATE,
    generator: torch.Generator,
    params: dict[str, torch.Tensor] | None = None,
) -> CalciumData:
    """Simulate M2 (calcium binding to a saturating dye, supralinear in calcium).

    The bound dye ``d_t`` is clamped at ``D_max`` inside the update, as in the reference
    model, which keeps it from oscillating. ``CalciumData.calcium`` holds ``c_t``;
    ``params`` holds γ, η, ζ, D_max, κ, α, β, σ.
    """
    _check_sizes(n_cells, n_frames)
    if params is None:
        params = sample_saturating_params(n_cells, generator=generator)
    s = simulate_spikes(
        n_cells, n_frames, rate_hz=rate_hz, frame_rate=frame_rate, generator=generator
    )
    c = _ar1(s, params["gamma"])
    d = torch.empty_like(c)
    prev = torch.zeros(n_cells, dtype=torch.float64)
    dm = params["d_max"]
    for t in range(n_frames):
        clamped = torch.minimum(prev, dm)
        prev = (
            params["eta"] * c[:, t] ** (1 + params["zeta"]) * (dm - clamped)
            + params["kappa"] * clamped
        )
        d[:, t] = prev
    noise = torch.randn(n_cells, n_frames, generator=generator, dtype=torch.float64)
    f = params["alpha"][:, None] * d + params["beta"][:, None] + params["sigma"][:, None] * noise
    return CalciumData(
        f.float(), s.float(), c.float(), {k: v.clone() for k, v in params.items()}, frame_rate
    )


@dataclass
class SpineData:
    """A simulated dendritic branch with spines.

    The dendritic-spine model of the DeepSpike paper, as the book defines it.

    Attributes:
        fluorescence: ``(n_branches, 1 + n_spines, n_frames)``: the dendrite, then each spine.
        spikes: ``(n_branches, 1 + n_spines, n_frames)``: the bAP train, then each spine's
            synaptic-input train, in {0, 1}.
        params: per-branch parameters: ``gamma_b, gamma_s, alpha_d`` ``(n_branches,)``;
            ``a_b, a_s`` ``(n_branches, n_spines)``; ``beta, sigma`` ``(n_branches, 1 + n_spines)``.
    """

    fluorescence: torch.Tensor
    spikes: torch.Tensor
    params: dict[str, torch.Tensor]
    frame_rate: float = FRAME_RATE

    @property
    def n_cells(self) -> int:
        return self.fluorescence.shape[0]

    def subset(self, idx) -> SpineData:
        return SpineData(
            self.fluorescence[idx],
            self.spikes[idx],
            {k: v[idx] for k, v in self.params.items()},
            self.frame_rate,
        )


def simulate_spines(
    n_branches: int,
    n_frames: int,
    *,
    n_spines: int = 4,
    bap_rate_hz: float = 0.5,
    syn_rate_hz: float = 1.0,
    sigma: float = 0.1,
    frame_rate: float = FRAME_RATE,
    generator: torch.Generator,
) -> SpineData:
    """Simulate M4: back-propagating action potentials (bAPs) and synaptic inputs on spines.

    The bAP train ``b`` reaches the dendrite and every spine; spine ``m`` also sees its own
    synaptic train ``e^m``. With ``c^b_t = γ_b c^b_{t−1} + b_t`` and
    ``c^m_t = γ_s c^m_{t−1} + e^m_t``:
    dendrite ``f^D = α_D c^b + β_D + σ ε``, spine ``f^m = a^m_b c^b + a^m_s c^m + β_m + σ ε``.
    γ_b, γ_s ~ U[0.95, 0.97]; α_D, a^m_b, a^m_s ~ U[0.3, 0.6]; β = 0. The paper's exact
    equations were not available; this is the book's definition.
    """
    _check_sizes(n_branches, n_frames)
    check_positive_int(n_spines, "n_spines")
    sigma = check_positive(sigma, "sigma", allow_zero=True)
    N, M, gen = n_branches, n_spines, generator
    p = dict(
        gamma_b=_uniform(0.95, 0.97, N, gen),
        gamma_s=_uniform(0.95, 0.97, N, gen),
        alpha_d=_uniform(0.3, 0.6, N, gen),
        a_b=_uniform(0.3, 0.6, N * M, gen).reshape(N, M),
        a_s=_uniform(0.3, 0.6, N * M, gen).reshape(N, M),
        beta=torch.zeros(N, M + 1, dtype=torch.float64),
        sigma=torch.full((N, M + 1), sigma, dtype=torch.float64),
    )
    bap = simulate_spikes(N, n_frames, rate_hz=bap_rate_hz, frame_rate=frame_rate, generator=gen)
    syn = simulate_spikes(
        N * M, n_frames, rate_hz=syn_rate_hz, frame_rate=frame_rate, generator=gen
    ).reshape(N, M, n_frames)
    c_b = _ar1(bap, p["gamma_b"])
    c_s = _ar1(syn.reshape(N * M, n_frames), p["gamma_s"].repeat_interleave(M)).reshape(
        N, M, n_frames
    )
    mean = torch.cat(
        [
            (p["alpha_d"][:, None] * c_b)[:, None],
            p["a_b"][..., None] * c_b[:, None] + p["a_s"][..., None] * c_s,
        ],
        1,
    )
    noise = torch.randn(N, M + 1, n_frames, generator=gen, dtype=torch.float64)
    f = mean + p["beta"][..., None] + p["sigma"][..., None] * noise
    return SpineData(f.float(), torch.cat([bap[:, None], syn], 1).float(), p, frame_rate)
