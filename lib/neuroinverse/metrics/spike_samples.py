"""Scores of posterior spike *samples*: dependencies between frames and calibrated counts.

A factorised posterior draws every frame independently; an autoregressive one can say "one
spike, in frame t or in frame t + 1, not both" (Aitchison, Adam, Turaga 2018). These metrics
read such structure from samples ``(traces, samples, frames)``:

* :func:`ambiguous_pairs` and :func:`lag1_correlation`: the correlation across samples of
  s_t and s_{t+1} at pairs of frames where a posterior is unsure of both;
* :func:`count_coverage`: for windows of frames grouped by their true spike count, the
  fraction whose true count lies in the central interval of the sampled counts.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_int, check_range, to_numpy
from .spikes import frame_mask

__all__ = ["ambiguous_pairs", "lag1_correlation", "count_coverage"]


def _samples(samples, name: str = "samples") -> np.ndarray:
    s = to_numpy(samples, name).astype(float)
    if s.ndim != 3:
        raise ValueError(f"{name} must have shape (traces, samples, frames); got {s.shape}")
    if not np.isin(s, (0.0, 1.0)).all():
        raise ValueError(f"{name} must be binary spike trains")
    return s


def ambiguous_pairs(
    p, *, low: float = 0.3, high: float = 0.7, buffers: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Pairs of neighbouring frames where ``low < p_t < high`` and ``low < p_{t+1} < high``.

    Args:
        p: ``(traces, frames)`` posterior spike probabilities.
        buffers: frames left out at both ends (both frames of a pair must be inside).

    Returns:
        ``(M, 2)`` int array of ``(trace, t)``.
    """
    x = to_numpy(p, "p").astype(float)
    if x.ndim != 2:
        raise ValueError(f"p must have shape (traces, frames); got {x.shape}")
    check_range(low, "low", 0.0, 1.0)
    check_range(high, "high", low, 1.0)
    inside = (x > low) & (x < high) & frame_mask(x.shape[1], buffers).numpy()[None]
    both = inside[:, :-1] & inside[:, 1:]
    return np.argwhere(both)


def lag1_correlation(samples, pairs) -> tuple[float, int]:
    """Mean over ``pairs`` of the Pearson correlation across samples of s_t and s_{t+1}.

    Args:
        samples: ``(traces, samples, frames)`` binary posterior samples.
        pairs: ``(M, 2)`` ``(trace, t)`` from :func:`ambiguous_pairs`.

    Returns:
        ``(mean correlation, pairs used)``: pairs where either frame is constant across the
        samples (correlation undefined) are left out; NaN if none is left.
    """
    s = _samples(samples)
    idx = np.asarray(pairs, dtype=int).reshape(-1, 2)
    if idx.size and (
        idx[:, 1].max() + 1 >= s.shape[2] or idx[:, 0].max() >= s.shape[0] or idx.min() < 0
    ):
        raise ValueError("pairs point outside the samples")
    x, y = s[idx[:, 0], :, idx[:, 1]], s[idx[:, 0], :, idx[:, 1] + 1]  # (M, samples)
    x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    denom = np.sqrt((x * x).sum(1) * (y * y).sum(1))
    ok = denom > 0
    if not ok.any():
        return float("nan"), 0
    return float(((x * y).sum(1)[ok] / denom[ok]).mean()), int(ok.sum())


def count_coverage(
    samples, spikes, *, window: int = 10, level: float = 0.9, buffers: tuple[int, int] = (0, 0)
) -> dict[int, tuple[float, int]]:
    """Coverage of the true spike count in windows of ``window`` frames, by true count.

    For every window inside the buffers, the central ``level`` interval of the sampled
    counts is [q_{(1−level)/2}, q_{(1+level)/2}] (quantiles of the empirical distribution);
    the window is covered if its true count lies in it.

    Args:
        samples: ``(traces, samples, frames)`` binary posterior samples.
        spikes: ``(traces, frames)`` true spikes.

    Returns:
        ``{true count: (fraction covered, number of windows)}``.
    """
    s = _samples(samples)
    truth = to_numpy(spikes, "spikes").astype(float)
    if truth.shape != (s.shape[0], s.shape[2]):
        raise ValueError(f"spikes must have shape {(s.shape[0], s.shape[2])}; got {truth.shape}")
    w = check_positive_int(window, "window")
    check_range(level, "level", 0.0, 1.0)
    m = frame_mask(s.shape[2], buffers).numpy()
    s, truth = s[..., m], truth[:, m]
    n = s.shape[-1] // w
    if n < 1:
        raise ValueError(f"no complete window of {w} frames inside the buffers")
    counts = s[..., : n * w].reshape(*s.shape[:2], n, w).sum(-1)  # (traces, samples, windows)
    true = truth[:, : n * w].reshape(truth.shape[0], n, w).sum(-1)  # (traces, windows)
    lo = np.quantile(counts, (1 - level) / 2, axis=1, method="inverted_cdf")
    hi = np.quantile(counts, (1 + level) / 2, axis=1, method="inverted_cdf")
    covered = (lo <= true) & (true <= hi)
    return {
        int(c): (float(covered[true == c].mean()), int((true == c).sum())) for c in np.unique(true)
    }
