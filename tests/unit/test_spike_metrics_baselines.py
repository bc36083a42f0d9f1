"""Spike metrics and the OASIS / Gibbs baselines."""

import numpy as np
import pytest
import torch

from neuroinverse.inference import gibbs_spikes, oasis_deconvolve
from neuroinverse.metrics import bin_frames, binned_correlation, spike_count_factor
from neuroinverse.simulators import simulate_linear


def test_binned_correlation_perfect_and_binning():
    s = torch.zeros(2, 100)
    s[0, ::7] = 1
    s[1, ::11] = 1
    assert binned_correlation(s, s) == pytest.approx(1.0)
    # a one-frame shift destroys the 16.7 ms correlation but not the 33 ms one when aligned to bins
    shifted = torch.roll(s, 1, 1)
    assert binned_correlation(shifted, s) < 0.2
    assert bin_frames(torch.arange(6.0)[None], 2).tolist() == [[1.0, 5.0, 9.0]]


def test_spike_count_factor():
    s = torch.tensor([[0.0, 1.0, 0.0, 1.0]])
    assert spike_count_factor(0.5 * s, s) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((1, 10), float("nan")), "NaN"),
        (torch.zeros(1, 9), "same shape"),
    ],
)
def test_metrics_bad_input(bad, match):
    s = torch.zeros(1, 10)
    s[0, 3] = 1
    with pytest.raises(ValueError, match=match):
        binned_correlation(bad, s)


def test_metrics_reject_negative_spikes_and_empty_buffers():
    s = torch.zeros(1, 10)
    with pytest.raises(ValueError, match="non-negative"):
        spike_count_factor(s, s - 1)
    with pytest.raises(ValueError, match="buffers"):
        binned_correlation(s, s, buffers=(6, 5))


def _easy_data():
    d = simulate_linear(2, 1500, rate_hz=1.5, generator=torch.Generator().manual_seed(3))
    d.params["sigma"][:] = 0.05
    return simulate_linear(2, 1500, rate_hz=1.5, generator=torch.Generator().manual_seed(3), params=d.params)


def test_gibbs_recovers_spikes_with_true_parameters():
    d = _easy_data()
    kw = {k: d.params[k].numpy() for k in ("gamma", "alpha", "beta", "sigma")}
    p = gibbs_spikes(d.fluorescence, **kw, n_sweeps=20, generator=0)
    assert p.shape == (2, 1500) and (0 <= p).all() and (p <= 1).all()
    assert binned_correlation(p, d.spikes, bin_width=2) > 0.8


def test_gibbs_shift_moves_matter():
    d = _easy_data()
    kw = {k: d.params[k].numpy() for k in ("gamma", "alpha", "beta", "sigma")}
    with_moves = binned_correlation(gibbs_spikes(d.fluorescence, **kw, n_sweeps=6), d.spikes)
    without = binned_correlation(gibbs_spikes(d.fluorescence, **kw, n_sweeps=6, max_shift=0), d.spikes)
    assert with_moves > without


def test_gibbs_bad_input():
    f = torch.zeros(1, 50)
    kw = dict(gamma=0.9, alpha=0.5, beta=0.0, sigma=0.1)
    with pytest.raises(ValueError, match="gamma"):
        gibbs_spikes(f, **{**kw, "gamma": 1.2})
    with pytest.raises(ValueError, match="sigma"):
        gibbs_spikes(f, **{**kw, "sigma": np.nan})
    with pytest.raises(ValueError, match="n_sweeps"):
        gibbs_spikes(f, **kw, n_sweeps=0)
    with pytest.raises(ValueError, match="traces"):
        gibbs_spikes(torch.zeros(50), **kw)


def test_oasis_finds_spikes_and_checks_gamma():
    d = _easy_data()
    s, g = oasis_deconvolve(d.fluorescence, gamma=d.params["gamma"].numpy())
    assert s.shape == (2, 1500) and (s >= 0).all()
    assert np.allclose(g, d.params["gamma"].numpy())
    assert binned_correlation(s, d.spikes, bin_width=2) > 0.5
    with pytest.raises(ValueError, match="gamma"):
        oasis_deconvolve(d.fluorescence, gamma=[0.9])


def _train(T, times):
    x = torch.zeros(1, T)
    x[0, list(times)] = 1
    return x


def test_spike_sync_known_cases():
    from neuroinverse.metrics.spikes import spike_sync

    a = _train(100, [10, 40, 70])
    assert spike_sync(a, a) == 1.0
    # small jitter (2 frames, windows ~15 frames) keeps every spike coincident
    assert spike_sync(_train(100, [12, 38, 71]), a) == 1.0
    # one extra spike far from everything: 6 of 7 spikes are coincident
    assert spike_sync(_train(100, [10, 40, 70, 95]), a) == pytest.approx(6 / 7)
    # a train shifted by half the ISI has no coincidences
    assert spike_sync(_train(100, [25, 55, 85]), a) == 0.0
    assert spike_sync(torch.zeros(1, 100), torch.zeros(1, 100)) == 1.0
    assert spike_sync(torch.zeros(1, 100), a) == 0.0
    with pytest.raises(ValueError, match="binary"):
        spike_sync(0.5 * a, a)


def test_misassigned_fraction_counts_claimed_bap_events():
    from neuroinverse.metrics.spikes import misassigned_fraction

    s = torch.zeros(1, 3, 50)
    s[0, 0, [10, 30]] = 1  # two bAPs
    s[0, 2, 31] = 1  # a true synaptic event next to the second bAP on channel 2
    p = torch.zeros(1, 3, 50)
    assert misassigned_fraction(p, s) == 0.0
    p[0, 1, 11] = 0.9  # channel 1 claims the first bAP (within ±1 frame)
    # eligible pairs: (bAP 10, ch 1), (bAP 10, ch 2), (bAP 30, ch 1); (30, ch 2) has its own event
    assert misassigned_fraction(p, s) == pytest.approx(1 / 3)
    p[0, 1, 11] = 0.4  # below threshold
    assert misassigned_fraction(p, s) == 0.0
    with pytest.raises(ValueError, match="source"):
        misassigned_fraction(p, s, source=5)
