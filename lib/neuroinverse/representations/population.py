"""A simulated "recorded" neural population driven by a network layer, with Poisson trial noise.

The ground truth for comparing a model with a brain (Barrett, Morcos & Macke 2019):
the population's rates are a random mixture of the units of one layer of a network that
the analyst does not have (another seed), passed through a softplus; spike counts in a
short window are Poisson, repeated over trials.

* :func:`simulate_population`: rates and trial-by-trial counts, with the mixing weights.
* :class:`Population`: the result; its ``mean_counts`` over a set of trials (a split half for
  the noise ceiling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_positive, check_positive_int, check_range
from .dimension import as_points

__all__ = ["Population", "simulate_population"]


@dataclass(frozen=True)
class Population:
    """A simulated recording.

    Attributes:
        counts: int ``(trials, stimuli, neurons)`` spike counts in the window.
        rates: float ``(stimuli, neurons)`` true rates in Hz.
        weights: float ``(units, neurons)`` mixing weights from the driving layer.
        window: counting window in seconds.
    """

    counts: np.ndarray
    rates: np.ndarray
    weights: np.ndarray
    window: float

    @property
    def n_trials(self) -> int:
        return self.counts.shape[0]

    def mean_counts(self, trials=None) -> np.ndarray:
        """Trial-averaged counts ``(stimuli, neurons)`` over ``trials`` (default: all)."""
        c = self.counts if trials is None else self.counts[np.asarray(trials, dtype=np.int64)]
        if len(c) == 0:
            raise ValueError("trials must name at least one trial")
        return c.mean(0)


def _softplus(x):
    return np.logaddexp(0.0, x)


def simulate_population(
    drive,
    *,
    n_neurons: int = 100,
    n_trials: int = 10,
    window: float = 0.1,
    median_rate: float = 10.0,
    max_rate: float = 40.0,
    seed: int = 0,
) -> Population:
    """Poisson neurons whose rates are a softplus of a random mixture of ``drive``'s units.

    1. Mixing: ``u = Z W`` with ``W`` iid ``N(0, 1/units)``, shape ``(units, n_neurons)``.
    2. Each neuron's drive is centred on its median and scaled by its standard deviation
       over stimuli: ``v = (u - median) / sd``.
    3. Rates ``lambda = beta * softplus(g * v)`` in Hz, with ``beta = median_rate / log 2``
       (so each neuron's median rate is ``median_rate``) and one gain ``g`` set so that the
       99.9th percentile of all rates is ``max_rate``.
    4. Counts ``n ~ Poisson(window * lambda)``, independently per trial, stimulus and neuron.

    Args:
        drive: ``(stimuli, units)`` activations of the driving layer (finite; at least one
            unit that varies over stimuli).
        n_neurons, n_trials: population size and repeats per stimulus.
        window: counting window in seconds.
        median_rate, max_rate: rates in Hz, ``max_rate > median_rate``.
        seed: seed of the ``torch.Generator`` for weights and spikes.
    """
    z = as_points(drive, "drive", minimum=2)
    n_neurons = check_positive_int(n_neurons, "n_neurons")
    n_trials = check_positive_int(n_trials, "n_trials")
    window = check_positive(window, "window")
    median_rate = check_positive(median_rate, "median_rate")
    max_rate = check_range(max_rate, "max_rate", median_rate, np.inf, low_open=True)
    g = torch.Generator().manual_seed(check_positive_int(seed, "seed", minimum=0))
    w = torch.randn(z.shape[1], n_neurons, generator=g, dtype=torch.float64).numpy() / np.sqrt(
        z.shape[1]
    )
    u = z @ w
    sd = u.std(0)
    sd = np.where(
        sd > 1e-12 * max(np.abs(u).max(), 1e-300), sd, 0.0
    )  # rounding noise is no variation
    if not (sd > 0).any():
        raise ValueError("drive does not vary over stimuli: the population would be silent")
    v = (u - np.median(u, 0)) / np.where(sd > 0, sd, 1.0)
    beta = median_rate / np.log(2.0)
    top = np.quantile(v, 0.999)
    if top <= 0:
        raise ValueError("drive gives no neuron a response above its median")
    gain = np.log(np.expm1(max_rate / beta)) / top  # softplus^-1(max_rate / beta) / top
    rates = beta * _softplus(gain * v)
    counts = torch.poisson(
        torch.as_tensor(window * rates).expand(n_trials, *rates.shape).contiguous(), generator=g
    ).numpy()
    return Population(counts=counts.astype(np.int64), rates=rates, weights=w, window=window)
