"""The Hodgkin-Huxley task as a callable: θ → summary features, with pilot z-scoring.

The simulator SNPE-B and ABC call for the neuron with Pospischil et al. (2008) kinetics of
Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible statistical inference
for mechanistic models of neural dynamics", NIPS 2017 (arXiv:1711.01861), section 4.3 and
Fig. 3: :class:`HHSimulator` integrates with
:func:`~neuroinverse.simulators.hodgkin_huxley.simulate_hh` and summarises with
:func:`~neuroinverse.simulators.hh_features.hh_summary`; :func:`pilot_zscore` standardises
the features from a pilot run, redrawing failed simulations as the paper's reference code
(``mackelab/delfi``) does. The code is the book's own.
"""

from __future__ import annotations

from typing import Callable

import torch

from .._checks import check_choice, check_positive_int
from .hh_features import FEATURE_SETS, hh_summary, raw_trace_context
from .hh_models import HHModel, check_hh_theta, resolve_hh_model
from .hodgkin_huxley import HHTraces, simulate_hh

__all__ = [
    "HHSimulator",
    "pilot_zscore",
]


class HHSimulator:
    """θ → summary features, the callable SNPE-B and ABC use: ``sim(theta, generator=g)``.

    Args:
        model: model name or :class:`~neuroinverse.simulators.hh_models.HHModel`.
        features: feature set of :func:`~neuroinverse.simulators.hh_features.hh_summary`, or
            ``"raw"`` for :func:`~neuroinverse.simulators.hh_features.raw_trace_context`
            (downsampled voltage and current, for a GRU).
        dt, duration: integration step and trace length (ms).
        device: where to integrate; features come back on the CPU.
        zscore: optional ``(mean, std)`` of the features (from :func:`pilot_zscore`); the
            output is then ``(x - mean) / std``.
        batch_size: traces integrated together (bounds memory).
        return_bad: return ``(x, bad)`` where ``bad`` flags failed runs (and, for complete
            feature sets, runs with a non-finite feature); with ``False`` only ``x``.
        allow_missing: NaN features are missing values, not failures (hand-crafted set).
    """

    def __init__(
        self,
        model: str | HHModel = "2param",
        *,
        features: str = "7",
        dt: float = 0.025,
        duration: float = 120.0,
        device: str | torch.device = "cpu",
        zscore: tuple[torch.Tensor, torch.Tensor] | None = None,
        batch_size: int = 5000,
        return_bad: bool = True,
        allow_missing: bool | None = None,
        raw_every: float = 0.2,
    ) -> None:
        self.model = resolve_hh_model(model)
        check_choice(features, "features", (*FEATURE_SETS, "raw"))
        self.raw_every = float(raw_every)
        self.features, self.dt, self.duration = features, float(dt), float(duration)
        self.device = torch.device(device)
        self.zscore = zscore
        self.batch_size = int(batch_size)
        self.return_bad = return_bad
        self.allow_missing = (features == "handcrafted") if allow_missing is None else allow_missing

    @property
    def x_dim(self) -> int:
        if self.features == "raw":
            n_t = int(round(self.duration / self.dt)) + 1
            step = max(1, int(round(self.raw_every / self.dt)))
            return 2 * len(range(0, n_t, step))
        return len(FEATURE_SETS[self.features])

    def traces(self, theta, *, generator: torch.Generator | None = None) -> HHTraces:
        return simulate_hh(
            theta,
            model=self.model,
            dt=self.dt,
            duration=self.duration,
            generator=generator,
            device=self.device,
        )

    def __call__(self, theta, *, generator: torch.Generator | None = None):
        theta = check_hh_theta(theta, self.model)
        xs, bads = [], []
        for start in range(0, theta.shape[0], self.batch_size):
            tr = self.traces(theta[start : start + self.batch_size], generator=generator)
            if self.features == "raw":
                x = raw_trace_context(tr, every=self.raw_every).cpu()
            else:
                x = hh_summary(tr, features=self.features).cpu()
            bad = tr.failed.cpu() | torch.isinf(x).any(1)
            if not self.allow_missing:
                bad |= torch.isnan(x).any(1)
            xs.append(x)
            bads.append(bad)
        x, bad = torch.cat(xs), torch.cat(bads)
        if self.zscore is not None:
            x = (x - self.zscore[0]) / self.zscore[1]
        return (x, bad) if self.return_bad else x


def pilot_zscore(
    simulator: Callable,
    prior,
    n: int,
    *,
    generator: torch.Generator | None = None,
    max_redraws: int = 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature mean and standard deviation (ddof 1) from a pilot run of prior simulations.

    Failed simulations are redrawn (new θ from the prior) until ``n`` good ones are in hand
    (as delfi does: pilot simulations producing NaN are redrawn). Missing (NaN) features of good
    runs are ignored feature by feature.

    Args:
        simulator: ``simulator(theta, generator=g)`` returning ``(x, bad)`` or ``x`` (then a
            row with a non-finite value is bad).
        prior: object with ``sample(n, generator=...)``.
        n: pilot size (>= 2).
        generator: randomness of prior draws and simulations.
        max_redraws: rounds of redrawing before giving up (``RuntimeError``).

    Returns:
        ``(mean, std)``, each ``(d_x,)``; a constant feature gets std 1.
    """
    n = check_positive_int(n, "n", minimum=2)
    good: list[torch.Tensor] = []
    have = 0
    for _ in range(max_redraws + 1):
        theta = prior.sample(n - have, generator=generator)
        out = simulator(theta, generator=generator)
        x, bad = out if isinstance(out, tuple) else (out, ~torch.isfinite(out).all(1))
        good.append(x[~bad])
        have += int((~bad).sum())
        if have >= n:
            break
    else:
        raise RuntimeError(
            f"only {have} of {n} pilot simulations succeeded after {max_redraws} redraws"
        )
    x = torch.cat(good)[:n].double()
    mean = torch.nanmean(x, 0)
    cnt = (~torch.isnan(x)).sum(0)
    var = torch.nansum((x - mean) ** 2, 0) / (cnt - 1).clamp_min(1)
    std = var.sqrt()
    std = torch.where((std > 0) & torch.isfinite(std), std, torch.ones_like(std))
    if torch.isnan(mean).any():
        raise RuntimeError("a feature is undefined in every pilot simulation")
    return mean.float(), std.float()
