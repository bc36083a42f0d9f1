"""Summary features of Hodgkin-Huxley voltage traces: spikes, moments and electrophysiology.

The features of Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible
statistical inference for mechanistic models of neural dynamics", NIPS 2017
(arXiv:1711.01861), section 4.3 and Fig. 3, for the neuron with Pospischil et al. (2008)
kinetics of :mod:`~neuroinverse.simulators.hodgkin_huxley`, following the paper's reference
code (``mackelab/delfi`` and ``mackelab/lfi-experiments``); the code is the book's own.

Summary features (:func:`hh_summary`): the 7-feature set of the delfi tutorial, the
20-feature "moments" set of the NIPS 2017 paper, and a hand-crafted electrophysiology set
whose spike-dependent features are NaN when undefined (too few spikes): the paper's
"missing features" case. Rows of failed runs (non-finite or exploding voltage, flagged in
:attr:`~neuroinverse.simulators.hodgkin_huxley.HHTraces.failed`) are NaN; nothing is
dropped silently.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._checks import check_choice, check_positive
from .hodgkin_huxley import HHTraces

__all__ = [
    "FEATURE_SETS",
    "hh_summary",
    "raw_trace_context",
    "spike_times",
    "feature_report",
]

#: Feature sets of :func:`hh_summary` and their feature names.
FEATURE_SETS = {
    "7": (
        "spike count",
        "resting mean (mV)",
        "resting std (mV)",
        "stimulus mean (mV)",
        "stimulus std (mV)",
        "skewness",
        "kurtosis",
    ),
    "moments": (
        ("spike count",)
        + tuple(f"autocorr {k / 10:.1f} ms" for k in range(1, 11))
        + ("resting mean (mV)", "stimulus mean (mV)")
        + tuple(f"central moment {k}" for k in range(2, 9))
    ),
    "handcrafted": (
        "firing rate (Hz)",
        "AP latency (ms)",
        "AP overshoot (mV)",
        "resting potential (mV)",
        "AHP depth (mV)",
        "accommodation index",
        "spike width (ms)",
    ),
}


# -- summary features --------------------------------------------------------------------------
def _peak_indices(V: torch.Tensor, dt: float, t_on: float, t_off: float):
    """Spike peaks (delfi's spike detection): rows and sample indices of the kept peaks."""
    v = V.clamp_min(-10.0)
    falling = torch.zeros_like(v, dtype=torch.bool)
    falling[:, :-1] = v[:, 1:] < v[:, :-1]
    v = torch.where(falling, torch.full_like(v, -10.0), v)
    # a sample above -10 mV followed by a -10 sample is the last point of a rise: the peak is next
    peak = torch.zeros_like(falling)
    peak[:, 1:] = v[:, 1:] < v[:, :-1]
    t = torch.arange(V.shape[1], device=V.device, dtype=torch.float64) * dt
    peak &= ((t > t_on) & (t < t_off))[None, :]
    rows, cols = torch.nonzero(peak, as_tuple=True)
    if rows.numel() == 0:
        return rows, cols
    same = torch.zeros_like(rows, dtype=torch.bool)
    same[1:] = rows[1:] == rows[:-1]
    close = torch.zeros_like(same)
    close[1:] = (cols[1:] - cols[:-1]).double() * dt <= 0.5
    keep = ~(same & close)  # merge peaks within 0.5 ms of the previous detected peak
    return rows[keep], cols[keep]


def spike_times(traces: HHTraces) -> list[np.ndarray]:
    """Spike peak times (ms) of every trace, inside the stimulus window."""
    rows, cols = _peak_indices(traces.voltage, traces.dt, traces.t_on, traces.t_off)
    rows, cols = rows.cpu().numpy(), cols.cpu().numpy()
    return [cols[rows == i] * traces.dt for i in range(traces.n)]


def _windows(traces: HHTraces):
    t = traces.t.to(traces.voltage.device)
    V = traces.voltage.double()
    rest = V[:, t < traces.t_on]
    rest_tail = V[:, (t >= 0.9 * traces.t_on) & (t < traces.t_on)]
    stim = V[:, (t > traces.t_on) & (t < traces.t_off)]
    return rest, rest_tail, stim


def _spike_counts(traces: HHTraces) -> torch.Tensor:
    rows, _ = _peak_indices(traces.voltage, traces.dt, traces.t_on, traces.t_off)
    return torch.bincount(rows, minlength=traces.n).double()


def _features_7(traces: HHTraces) -> torch.Tensor:
    rest, rest_tail, stim = _windows(traces)
    mean = stim.mean(1)
    c = stim - mean[:, None]
    std = c.pow(2).mean(1).sqrt()
    skew = c.pow(3).mean(1) / std**3
    kurt = c.pow(4).mean(1) / std**4
    return torch.stack(
        [_spike_counts(traces), rest.mean(1), rest_tail.std(1), mean, std, skew, kurt], 1
    )


def _features_moments(traces: HHTraces) -> torch.Tensor:
    rest, _, stim = _windows(traces)
    mean = stim.mean(1)
    c = stim - mean[:, None]
    var_sum = c.pow(2).sum(1)
    acs = []
    for k in range(1, 11):
        lag = max(1, int(round(0.1 * k / traces.dt)))
        acs.append((c[:, lag:] * c[:, :-lag]).sum(1) / var_sum)
    moments = [c.pow(k).mean(1) for k in range(2, 9)]
    return torch.stack([_spike_counts(traces), *acs, rest.mean(1), mean, *moments], 1)


def _features_handcrafted(traces: HHTraces) -> torch.Tensor:
    V = traces.voltage.double().cpu().numpy()
    dt, t_on, t_off = traces.dt, traces.t_on, traces.t_off
    times = spike_times(traces)
    n_rest = int(math.ceil(t_on / dt - 1e-9))
    out = np.full((traces.n, 7), np.nan)
    half_w = int(round(2.0 / dt))
    for i, st in enumerate(times):
        rest = V[i, :n_rest].mean()
        k = len(st)
        out[i, 0] = k / ((t_off - t_on) / 1000.0)
        out[i, 3] = rest
        if k >= 1:
            idx = np.round(st / dt).astype(int)
            peaks = V[i, idx]
            out[i, 1] = st[0] - t_on
            out[i, 2] = peaks.mean()
            widths = []
            for j, pk in zip(idx, peaks, strict=True):
                seg = V[i, max(0, j - half_w) : j + half_w + 1]
                widths.append((seg > 0.5 * (pk + rest)).sum() * dt)
            out[i, 6] = float(np.mean(widths))
        if k >= 2:
            idx = np.round(st / dt).astype(int)
            troughs = [V[i, a:b].min() for a, b in zip(idx[:-1], idx[1:], strict=True)]
            out[i, 4] = rest - float(np.mean(troughs))
        if k >= 3:
            isi = np.diff(st)
            out[i, 5] = float(np.mean((isi[1:] - isi[:-1]) / (isi[1:] + isi[:-1])))
    return torch.from_numpy(out).to(traces.voltage.device)


def hh_summary(traces: HHTraces, *, features: str = "7") -> torch.Tensor:
    """Summary features of every trace, ``(n, d)`` float32 on the traces' device.

    Args:
        traces: output of :func:`~neuroinverse.simulators.hodgkin_huxley.simulate_hh`.
        features: ``"7"`` — [spike count; resting mean V(t < t_on); resting std over the last
            10 % before t_on; stimulus-window mean, std, skewness, kurtosis] (delfi tutorial);
            ``"moments"`` — the 20 features of the NIPS 2017 paper [spike count; 10
            autocorrelation coefficients at lags 0.1 … 1.0 ms; resting mean; stimulus mean;
            central moments 2 … 8 of the stimulus-window voltage];
            ``"handcrafted"`` — [firing rate (Hz); latency of the first spike after t_on (ms);
            mean spike peak (mV); resting potential (mV); AHP depth = resting potential minus
            the mean trough between consecutive spikes (mV); accommodation index
            mean((ISI_{k+1} - ISI_k)/(ISI_{k+1} + ISI_k)); mean spike width at half height
            between rest and peak (ms)]. Latency, peak and width are NaN without spikes, AHP
            depth with fewer than 2, accommodation with fewer than 3 (missing features).

    Spikes (delfi): V below -10 mV and samples followed by a fall are set to -10 mV; the
    remaining falls mark peaks; peaks inside (t_on, t_off) are kept, merging peaks within
    0.5 ms. Rows of failed runs (:attr:`~neuroinverse.simulators.hodgkin_huxley.HHTraces.failed`)
    are all NaN.
    """
    if not isinstance(traces, HHTraces):
        raise ValueError(
            f"traces must be an HHTraces from simulate_hh; got {type(traces).__name__}"
        )
    check_choice(features, "features", tuple(FEATURE_SETS))
    if features == "7":
        x = _features_7(traces)
    elif features == "moments":
        x = _features_moments(traces)
    else:  # "handcrafted"
        x = _features_handcrafted(traces)
    x = torch.where(traces.failed[:, None].to(x.device), torch.full_like(x, math.nan), x)
    return x.float()


def raw_trace_context(traces: HHTraces, *, every: float = 0.2) -> torch.Tensor:
    """Raw traces for a learned summary network (paper Fig. 5), ``(n, T' * 2)`` float32.

    Voltage and injected current are sampled every ``every`` ms (×20 downsampling at
    dt = 0.01 ms) and interleaved time-major, i.e. the flattening of ``(n, T', 2)``.
    Rows of failed runs are NaN.
    """
    if not isinstance(traces, HHTraces):
        raise ValueError(
            f"traces must be an HHTraces from simulate_hh; got {type(traces).__name__}"
        )
    step = max(1, int(round(check_positive(every, "every") / traces.dt)))
    v = traces.voltage[:, ::step]
    cur = traces.current if traces.current.ndim == 2 else traces.current[None].expand(traces.n, -1)
    c = cur.to(v.device)[:, ::step]
    x = torch.stack([v, c], dim=2).reshape(traces.n, -1).float()
    return torch.where(traces.failed[:, None].to(x.device), torch.full_like(x, math.nan), x)


def feature_report(x: torch.Tensor, failed: torch.Tensor) -> dict[str, object]:
    """Counts of failed runs and undefined (NaN) features among the runs that did not fail.

    Returns:
        ``{"n": n, "n_failed": int, "n_with_undefined": int, "undefined_per_feature": list}``.
    """
    failed = failed.to(x.device)
    undefined = torch.isnan(x) & ~failed[:, None]
    return dict(
        n=int(x.shape[0]),
        n_failed=int(failed.sum()),
        n_with_undefined=int(undefined.any(1).sum()),
        undefined_per_feature=[int(v) for v in undefined.sum(0)],
    )
