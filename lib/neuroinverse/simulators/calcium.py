"""Calcium-imaging simulators: spikes → calcium → fluorescence, with the true parameters.

Models of Speiser et al., "Fast amortized inference of neural activity from calcium imaging
data with variational autoencoders", NIPS 2017 (parameter ranges from the authors'
reference notebooks, see ``shared/papers/deepspike.md``):

* **M1, linear AR(1)**: ``c_t = γ c_{t-1} + s_t``, ``f_t = α c_t + β + σ ε_t``.
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

from .._checks import check_positive

__all__ = [
    "FRAME_RATE",
    "M1_RANGES",
    "M2_RANGES",
    "CalciumData",
    "sample_linear_params",
    "sample_saturating_params",
    "simulate_spikes",
    "simulate_linear",
    "simulate_saturating",
    "decay_time",
]

FRAME_RATE = 60.0  #: frames per second of the reference data

#: M1 ranges of the *unconstrained* parameters (γ = sigmoid(g), α = softplus(a)), β, σ.
M1_RANGES = dict(g=(2.75, 4.6), a=(-1.25, -0.43), beta=-0.3, sigma=(0.07, 0.15))
#: M2 ranges (γ = sigmoid(g), η = softplus(e), ζ = softplus(z), κ = sigmoid(k), α = softplus(a)).
M2_RANGES = dict(g=(2.5, 3.5), e=(-5.9, -4.9), z=(0.5, 1.0), d_max=(5.5, 6.5), k=(2.0, 2.5),
                 a=(0.2, 0.5), beta=-0.2, sigma=(0.02, 0.05))


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
        return CalciumData(self.fluorescence[idx], self.spikes[idx], self.calcium[idx],
                           {k: v[idx] for k, v in self.params.items()}, self.frame_rate)


def _uniform(lo: float, hi: float, n: int, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)


def _check_sizes(n_cells: int, n_frames: int) -> None:
    if not isinstance(n_cells, int) or n_cells < 1:
        raise ValueError(f"n_cells must be a positive integer; got {n_cells!r}")
    if not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer; got {n_frames!r}")


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
    return dict(gamma=torch.sigmoid(g), alpha=torch.nn.functional.softplus(a),
                beta=torch.full((n_cells,), r["beta"], dtype=torch.float64),
                sigma=_uniform(*r["sigma"], n_cells, generator))


def sample_saturating_params(n_cells: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
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


def simulate_spikes(n_cells: int, n_frames: int, *, rate_hz: float, frame_rate: float = FRAME_RATE,
                    generator: torch.Generator) -> torch.Tensor:
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


def simulate_linear(n_cells: int, n_frames: int, *, rate_hz: float = 1.0,
                    frame_rate: float = FRAME_RATE, generator: torch.Generator,
                    params: dict[str, torch.Tensor] | None = None) -> CalciumData:
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
    s = simulate_spikes(n_cells, n_frames, rate_hz=rate_hz, frame_rate=frame_rate, generator=generator)
    c = _ar1(s, params["gamma"])
    noise = torch.randn(n_cells, n_frames, generator=generator, dtype=torch.float64)
    f = params["alpha"][:, None] * c + params["beta"][:, None] + params["sigma"][:, None] * noise
    return CalciumData(f.float(), s.float(), c.float(), {k: v.clone() for k, v in params.items()}, frame_rate)


def simulate_saturating(n_cells: int, n_frames: int, *, rate_hz: float = 1.0,
                        frame_rate: float = FRAME_RATE, generator: torch.Generator,
                        params: dict[str, torch.Tensor] | None = None) -> CalciumData:
    """Simulate M2 (calcium binding to a saturating dye, supralinear in calcium).

    The bound dye ``d_t`` is clamped at ``D_max`` inside the update, as in the reference
    model, which keeps it from oscillating. ``CalciumData.calcium`` holds ``c_t``;
    ``params`` holds γ, η, ζ, D_max, κ, α, β, σ.
    """
    _check_sizes(n_cells, n_frames)
    if params is None:
        params = sample_saturating_params(n_cells, generator=generator)
    s = simulate_spikes(n_cells, n_frames, rate_hz=rate_hz, frame_rate=frame_rate, generator=generator)
    c = _ar1(s, params["gamma"])
    d = torch.empty_like(c)
    prev = torch.zeros(n_cells, dtype=torch.float64)
    dm = params["d_max"]
    for t in range(n_frames):
        clamped = torch.minimum(prev, dm)
        prev = params["eta"] * c[:, t] ** (1 + params["zeta"]) * (dm - clamped) + params["kappa"] * clamped
        d[:, t] = prev
    noise = torch.randn(n_cells, n_frames, generator=generator, dtype=torch.float64)
    f = params["alpha"][:, None] * d + params["beta"][:, None] + params["sigma"][:, None] * noise
    return CalciumData(f.float(), s.float(), c.float(), {k: v.clone() for k, v in params.items()}, frame_rate)
