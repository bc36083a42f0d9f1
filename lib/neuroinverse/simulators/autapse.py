"""Autapse rate model: the simulator-failure example of Lueckmann et al., NIPS 2017, Fig. 4.

A single rate unit with a self-connection of strength J (Lueckmann, Goncalves, Bassetto,
Öcal, Nonnenmacher & Macke, "Flexible statistical inference for mechanistic models of
neural dynamics", arXiv:1711.01861, section 3 and Fig. 4)::

    τ_x dx/dt = (J - 1) x + I(t) + 15 ξ(t),        y(t) = x(t) + 0.25 η(t),

with white noise ξ, observation noise η ~ N(0, 1) per sample, x(0) = 0, a step input
I = 1 on [10, 110) ms, T = 120 ms, dt = 0.01 ms (Euler-Maruyama, all runs of a batch
together). θ = (J, τ_x), θ* = (0.95, 1), prior J ~ U(0.1, 2), τ_x ~ U(-1, 2.5). The unit
grows exponentially at rate (J - 1)/τ_x, so it diverges for J > 1 with τ_x > 0 or for J < 1
with τ_x < 0 (the paper's "J > 1 or τ_x < 0"); a run is **bad** if |x(T)| > 1000 (or
non-finite).

The summary features are the book's choice (the paper does not list them): the mean of y
before the input, over the first and the second half of the input window and after it, the
standard deviation of y in the input window and its autocorrelation at a lag of 1 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import as_tensor, check_positive
from .priors import BoxUniform

__all__ = [
    "AUTAPSE_PRIOR",
    "AUTAPSE_THETA_STAR",
    "AUTAPSE_FEATURES",
    "AutapseTraces",
    "simulate_autapse",
    "autapse_summary",
    "AutapseSimulator",
]

#: Prior of (J, τ_x) (paper, Fig. 4).
AUTAPSE_PRIOR = BoxUniform([0.1, -1.0], [2.0, 2.5])
#: Ground truth (J, τ_x).
AUTAPSE_THETA_STAR = torch.tensor([0.95, 1.0])
#: Names of the summary features of :func:`autapse_summary`.
AUTAPSE_FEATURES = (
    "mean before input",
    "mean, 1st half of input",
    "mean, 2nd half of input",
    "mean after input",
    "sd during input",
    "autocorr 1 ms",
)


@dataclass
class AutapseTraces:
    """Simulated autapse runs.

    Attributes:
        rate: ``(n, n_t)`` latent rate x(t) (a.u.).
        observed: ``(n, n_t)`` observation y(t) = x(t) + noise.
        dt, t_on, t_off: time step and input window (ms).
        bad: ``(n,)`` bool, |x(T)| > 1000 or a non-finite value.
    """

    rate: torch.Tensor
    observed: torch.Tensor
    dt: float
    t_on: float
    t_off: float
    bad: torch.Tensor

    @property
    def t(self) -> torch.Tensor:
        return torch.arange(self.rate.shape[1], dtype=torch.float64) * self.dt


def simulate_autapse(
    theta,
    *,
    dt: float = 0.01,
    duration: float = 120.0,
    t_on: float = 10.0,
    t_off: float | None = None,
    amplitude: float = 1.0,
    noise_scale: float = 15.0,
    obs_noise: float = 0.25,
    bad_threshold: float = 1000.0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> AutapseTraces:
    """Simulate a batch of autapse units (Euler-Maruyama).

    Args:
        theta: ``(n, 2)`` rows (J, τ_x) (τ_x in ms), or one ``(2,)`` row.
        dt: time step (ms).
        duration: T (ms); ``n_t = round(T/dt) + 1`` samples.
        t_on, t_off: input window (ms), ``t_off`` defaults to ``duration - 10``.
        amplitude: step input I.
        noise_scale: amplitude of the white noise ξ (15 in the paper's Fig. 4 setting).
        obs_noise: standard deviation of the observation noise.
        bad_threshold: a run is bad if |x(T)| exceeds it.
        generator: CPU generator of all noise.
        device: where to integrate.

    Returns:
        :class:`AutapseTraces` on ``device``.
    """
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, "theta")
    if t.ndim == 1 and t.numel() == 2:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != 2 or t.shape[0] < 1:
        raise ValueError(f"theta must have shape (n, 2) with rows (J, tau_x); got {tuple(t.shape)}")
    if torch.isnan(t).any():
        raise ValueError("theta contains NaN")
    dt = check_positive(dt, "dt")
    duration = check_positive(duration, "duration")
    t_off = duration - 10.0 if t_off is None else float(t_off)
    if not (0 <= t_on < t_off <= duration):
        raise ValueError(f"need 0 <= t_on < t_off <= duration; got {t_on}, {t_off}, {duration}")
    device = torch.device(device)
    n, n_t = t.shape[0], int(round(duration / dt)) + 1
    xi = torch.randn(n_t - 1, n, generator=generator).to(device)
    eta = torch.randn(n, n_t, generator=generator).to(device)
    J, tau = t[:, 0].to(device), t[:, 1].to(device)
    a = dt * (J - 1.0) / tau
    b = dt / tau
    s = noise_scale * math.sqrt(dt) / tau
    tt = torch.arange(n_t - 1, dtype=torch.float64) * dt
    inp = torch.where((tt >= t_on) & (tt < t_off), float(amplitude), 0.0).float().tolist()
    x = torch.zeros(n, device=device)
    out = torch.empty(n_t, n, device=device)
    out[0] = x
    with torch.no_grad():
        for k in range(n_t - 1):
            x = x + a * x + b * inp[k] + s * xi[k]
            out[k + 1] = x
    rate = out.T.contiguous()
    last = rate[:, -1]
    bad = ~torch.isfinite(rate).all(1) | (last.abs() > bad_threshold)
    return AutapseTraces(
        rate=rate, observed=rate + obs_noise * eta, dt=dt, t_on=float(t_on), t_off=t_off, bad=bad
    )


def autapse_summary(traces: AutapseTraces) -> torch.Tensor:
    """The 6 features of :data:`AUTAPSE_FEATURES` of every run, ``(n, 6)`` float32 (NaN rows for
    bad runs)."""
    y = traces.observed.double()
    t = traces.t.to(y.device)
    mid = 0.5 * (traces.t_on + traces.t_off)
    pre = y[:, t < traces.t_on].mean(1)
    first = y[:, (t >= traces.t_on) & (t < mid)].mean(1)
    second = y[:, (t >= mid) & (t < traces.t_off)].mean(1)
    post = y[:, t >= traces.t_off].mean(1)
    win = y[:, (t >= traces.t_on) & (t < traces.t_off)]
    c = win - win.mean(1, keepdim=True)
    sd = c.pow(2).mean(1).sqrt()
    lag = max(1, int(round(1.0 / traces.dt)))
    ac = (c[:, lag:] * c[:, :-lag]).sum(1) / c.pow(2).sum(1)
    x = torch.stack([pre, first, second, post, sd, ac], 1)
    x = torch.where(traces.bad[:, None], torch.full_like(x, math.nan), x)
    return x.float()


class AutapseSimulator:
    """θ → features for SNPE-B: ``sim(theta, generator=g) -> (x, bad)`` (CPU tensors).

    Args:
        dt: time step (ms); the paper's 0.01 ms, or 0.05 ms to save time.
        device: where to integrate.
        zscore: optional ``(mean, std)`` applied to the features.
    """

    def __init__(
        self,
        *,
        dt: float = 0.01,
        device: str | torch.device = "cpu",
        zscore: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.dt = float(dt)
        self.device = torch.device(device)
        self.zscore = zscore

    x_dim = len(AUTAPSE_FEATURES)

    def traces(self, theta, *, generator: torch.Generator | None = None) -> AutapseTraces:
        return simulate_autapse(theta, dt=self.dt, generator=generator, device=self.device)

    def __call__(self, theta, *, generator: torch.Generator | None = None):
        tr = self.traces(theta, generator=generator)
        x = autapse_summary(tr).cpu()
        bad = tr.bad.cpu() | ~torch.isfinite(x).all(1)
        if self.zscore is not None:
            x = (x - self.zscore[0]) / self.zscore[1]
        return x, bad
