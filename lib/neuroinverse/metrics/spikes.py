"""Spike-inference metrics: binned correlation, spike-count factor, SPIKE-synchronisation.

As in Speiser et al., NIPS 2017 and the Spikefinder challenge, accuracy is the Pearson
correlation between the inferred spike probability (or deconvolved signal) and the true
spike train after both are summed into bins of ``bin_frames`` frames, averaged over traces.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import as_tensor, check_finite, check_ndim, check_positive_int

__all__ = [
    "bin_frames",
    "binned_correlation",
    "spike_count_factor",
    "frame_mask",
    "spike_sync",
    "misassigned_fraction",
]


def frame_mask(n_frames: int, buffers: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Boolean mask of the frames ``[buffers[0], n_frames − buffers[1])``."""
    start, end = buffers
    if start < 0 or end < 0 or start + end >= n_frames:
        raise ValueError(f"buffers {buffers} leave no frames out of {n_frames}")
    m = torch.zeros(n_frames, dtype=torch.bool)
    m[start : n_frames - end] = True
    return m


def bin_frames(x: torch.Tensor, width: int) -> torch.Tensor:
    """Sum ``(N, T)`` into ``(N, T // width)`` bins (a trailing partial bin is dropped)."""
    check_positive_int(width, "bin width")
    n = x.shape[-1] // width
    if n < 2:
        raise ValueError(
            f"need at least 2 bins of {width} frames; traces have {x.shape[-1]} frames"
        )
    return x[..., : n * width].reshape(*x.shape[:-1], n, width).sum(-1)


def _pair(pred, truth, name="prediction"):
    pred = check_finite(as_tensor(pred, name, dtype=torch.float64), name)
    truth = check_finite(as_tensor(truth, "spikes", dtype=torch.float64), "spikes")
    if pred.dim() == 1:
        pred, truth = pred[None], truth[None] if truth.dim() == 1 else truth
    check_ndim(pred, name, 2, "(traces, frames)")
    if pred.shape != truth.shape:
        raise ValueError(
            f"{name} {tuple(pred.shape)} and spikes {tuple(truth.shape)} must have the same shape"
        )
    if (truth < 0).any():
        raise ValueError("spikes must be non-negative counts")
    return pred, truth


def binned_correlation(
    pred, spikes, *, bin_width: int = 1, buffers: tuple[int, int] = (0, 0), reduce: bool = True
):
    """Pearson correlation of binned ``pred`` and ``spikes`` per trace (mean if ``reduce``).

    Args:
        pred: ``(N, T)`` spike probabilities or deconvolved activity.
        spikes: ``(N, T)`` true spike counts.
        bin_width: frames per bin (1 = 16.7 ms and 2 = 33 ms at 60 Hz).
        buffers: frames left out at the start and end of each trace before binning.
    """
    pred, spikes = _pair(pred, spikes)
    m = frame_mask(pred.shape[1], buffers)
    a = bin_frames(pred[:, m], bin_width)
    b = bin_frames(spikes[:, m], bin_width)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denom = torch.sqrt((a * a).sum(1) * (b * b).sum(1))
    if (denom == 0).any():
        raise ValueError("a trace has constant prediction or no spikes; correlation undefined")
    r = (a * b).sum(1) / denom
    return float(r.mean()) if reduce else r.numpy()


def spike_count_factor(pred, spikes, *, buffers: tuple[int, int] = (0, 0)) -> float:
    """Σ pred / Σ spikes over all traces (1 means the right number of spikes)."""
    pred, spikes = _pair(pred, spikes)
    m = frame_mask(pred.shape[1], buffers)
    total = float(spikes[:, m].sum())
    if total == 0:
        raise ValueError("spikes has no spikes in the evaluated frames")
    return float(pred[:, m].sum()) / total


def _coincidences(a: np.ndarray, b: np.ndarray) -> int:
    """Number of spikes of ``a`` with a coincident spike in ``b`` (adaptive window)."""
    if len(a) == 0 or len(b) == 0:
        return 0
    inf = np.inf
    isi_a = np.diff(a)
    isi_b = np.diff(b)
    prev_a = np.concatenate([[inf], isi_a])
    next_a = np.concatenate([isi_a, [inf]])
    prev_b = np.concatenate([[inf], isi_b])
    next_b = np.concatenate([isi_b, [inf]])
    j = np.clip(np.searchsorted(b, a), 1, len(b) - 1) if len(b) > 1 else np.zeros(len(a), dtype=int)
    if len(b) > 1:
        left_closer = np.abs(a - b[j - 1]) <= np.abs(a - b[j])
        j = np.where(left_closer, j - 1, j)
    dist = np.abs(a - b[j])
    tau = 0.5 * np.minimum.reduce([prev_a, next_a, prev_b[j], next_b[j]])
    return int(np.sum((dist < tau) | (dist == 0)))  # exact matches always coincide


def spike_sync(pred_spikes, true_spikes) -> float:
    """SPIKE-synchronisation (Kreuz et al., J. Neurophysiol. 2015) averaged over trace pairs.

    A spike is coincident when the nearest spike of the other train lies closer than
    τ = ½ min(the four inter-spike intervals around both spikes); SPIKE-sync is the number of
    coincident spikes of both trains over their total. Two empty trains count as synchronous
    (1); one empty train gives 0. Frames are the time unit.

    Args:
        pred_spikes: ``(N, T)`` binary spike trains (e.g. posterior samples).
        true_spikes: ``(N, T)`` binary true spike trains.
    """
    pred, truth = _pair(pred_spikes, true_spikes, "pred_spikes")
    if not (((pred == 0) | (pred == 1)).all() and ((truth == 0) | (truth == 1)).all()):
        raise ValueError("spike_sync needs binary spike trains (0 or 1 per frame)")
    vals = []
    for x, y in zip(pred.numpy(), truth.numpy(), strict=True):
        a, b = np.flatnonzero(x).astype(float), np.flatnonzero(y).astype(float)
        n = len(a) + len(b)
        if n == 0:
            vals.append(1.0)
            continue
        c = _coincidences(a, b) + _coincidences(b, a)
        vals.append(c / n)
    return float(np.mean(vals))


def misassigned_fraction(
    prob,
    spikes,
    *,
    source: int = 0,
    window: int = 1,
    threshold: float = 0.5,
    buffers: tuple[int, int] = (0, 0),
) -> float:
    """Fraction of true events of channel ``source`` that another channel claims.

    For multi-channel inference (e.g. a bAP channel and one synaptic channel per spine):
    for every true event of ``source`` at frame t and every other channel m with *no* true
    event of its own within ±``window`` frames, the event counts as misassigned to m when
    ``max(prob[m, t−window : t+window+1]) > threshold``. Returns misassigned pairs / pairs.

    Args:
        prob: ``(N, C, T)`` spike probabilities.
        spikes: ``(N, C, T)`` true spike trains.
    """
    p = check_finite(as_tensor(prob, "prob", dtype=torch.float64), "prob")
    s = check_finite(as_tensor(spikes, "spikes", dtype=torch.float64), "spikes")
    check_ndim(p, "prob", 3, "(traces, channels, frames)")
    if p.shape != s.shape:
        raise ValueError(
            f"prob {tuple(p.shape)} and spikes {tuple(s.shape)} must have the same shape"
        )
    N, C, T = p.shape
    if not 0 <= source < C or C < 2:
        raise ValueError(f"source must index one of {C} channels (and C >= 2); got {source}")
    m = frame_mask(T, buffers)
    k = 2 * window + 1
    pool = lambda x: torch.nn.functional.max_pool1d(x, k, stride=1, padding=window)  # noqa: E731
    p_near = pool(p)  # max probability within ±window
    s_near = pool(s)  # any true event within ±window
    events = (s[:, source] > 0) & m  # (N, T)
    others = [c for c in range(C) if c != source]
    eligible = events[:, None, :] & (s_near[:, others] == 0)
    if eligible.sum() == 0:
        raise ValueError(f"no true events of channel {source} to assess")
    claimed = eligible & (p_near[:, others] > threshold)
    return float(claimed.sum()) / float(eligible.sum())
