"""Tests of the Hodgkin-Huxley simulator and its summary features."""

import math

import numpy as np
import pytest
import torch

from neuroinverse.simulators import (
    FEATURE_SETS,
    I_STEP,
    HHSimulator,
    HHTraces,
    feature_report,
    hh_model,
    hh_resting_potential,
    hh_summary,
    pilot_zscore,
    simulate_hh,
    spike_times,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def star_trace():
    m = hh_model("2param")
    return simulate_hh(m.theta_star, generator=torch.Generator().manual_seed(0))


def test_theta_star_spikes_regularly_and_rests_near_minus_70(star_trace):
    tr = star_trace
    assert tr.voltage.shape == (1, 4801)
    assert not tr.failed.any()
    st = spike_times(tr)[0]
    assert 4 <= len(st) <= 15
    assert np.all((st > tr.t_on) & (st < tr.t_off))
    isi = np.diff(st)
    assert isi.min() > 5.0  # a regular train, no double counts
    rest = tr.voltage[0, tr.t < tr.t_on].mean().item()
    assert rest == pytest.approx(-70.0, abs=1.5)
    assert 30.0 < tr.voltage.max().item() < 60.0  # spike peaks around +40-50 mV


def test_rest_equals_analytic_steady_state_without_stimulus_and_noise():
    m = hh_model("2param")
    theta = torch.tensor([[50.0, 5.0], [10.0, 1.0], [80.0, 15.0]])
    # exponential Euler's fixed point is the exact steady state, so a coarse step suffices
    tr = simulate_hh(theta, amplitude=0.0, dt=0.25, duration=800.0, noise=torch.zeros(3, 3200), dtype=torch.float64)
    v_end = tr.voltage[:, -1]
    v_ss = hh_resting_potential(theta, model=m)
    assert torch.allclose(v_end, v_ss, atol=2e-3)
    # the 12-parameter model (log-space θ, other reversal potentials) too
    m12 = hh_model("12param")
    tr12 = simulate_hh(
        m12.theta_star,
        model=m12,
        amplitude=0.0,
        dt=0.25,
        duration=800.0,
        noise=torch.zeros(1, 3200),
        dtype=torch.float64,
    )
    assert tr12.voltage[0, -1].item() == pytest.approx(hh_resting_potential(m12.theta_star, model=m12).item(), abs=2e-3)


def test_batch_equals_one_by_one():
    m = hh_model("2param")
    theta = m.prior.sample(3, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(3, 1200, generator=torch.Generator().manual_seed(2))
    batch = simulate_hh(theta, duration=30.0, t_off=25.0, noise=noise).voltage
    for i in range(3):
        one = simulate_hh(theta[i : i + 1], duration=30.0, t_off=25.0, noise=noise[i : i + 1]).voltage
        assert torch.allclose(batch[i], one[0], atol=1e-4)
    # the same generator seed gives the same traces
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(
        simulate_hh(theta, duration=30.0, generator=g()).voltage,
        simulate_hh(theta, duration=30.0, generator=g()).voltage,
    )


def test_noise_enters_scaled_by_sigma():
    m = hh_model("8param")
    theta = m.theta_star.repeat(3, 1)
    theta[1, 6] = 0.0001  # σ tiny
    noise = torch.randn(1, 1200, generator=torch.Generator().manual_seed(0)).repeat(3, 1)
    noise[2] = 0.0  # noiseless reference
    v = simulate_hh(theta, model=m, amplitude=0.0, duration=30.0, noise=noise, dtype=torch.float64).voltage
    dev_big, dev_small = (v[0] - v[2]).abs().max().item(), (v[1] - v[2]).abs().max().item()
    assert dev_big > 0.05
    # linear response near rest: the deviation scales with σ (0.1 / 0.0001 = 1000)
    assert dev_big / dev_small == pytest.approx(1000.0, rel=0.05)


def test_features_nan_exactly_when_undefined_and_report_counts():
    theta = torch.tensor([[50.0, 5.0], [0.6, 14.0], [2.0, 10.0]])  # spiking, silent, silent
    tr = simulate_hh(theta, generator=torch.Generator().manual_seed(0))
    n_spikes = torch.tensor([len(s) for s in spike_times(tr)])
    assert n_spikes[0] >= 3 and (n_spikes[1:] == 0).all()
    for kind in ("7", "moments"):
        x = hh_summary(tr, features=kind)
        assert x.shape == (3, len(FEATURE_SETS[kind]))
        assert torch.isfinite(x).all()
        assert torch.equal(x[:, 0], n_spikes.float())
    xh = hh_summary(tr, features="handcrafted")
    names = FEATURE_SETS["handcrafted"]
    need_one = [names.index(n) for n in ("AP latency (ms)", "AP overshoot (mV)", "spike width (ms)")]
    assert torch.isfinite(xh[0]).all()
    assert torch.isnan(xh[1:, need_one]).all()
    always = [names.index("firing rate (Hz)"), names.index("resting potential (mV)")]
    assert torch.isfinite(xh[:, always]).all()
    assert xh[1, 0].item() == 0.0
    rep = feature_report(xh, tr.failed)
    assert rep["n_failed"] == 0 and rep["n_with_undefined"] == 2
    assert rep["undefined_per_feature"][need_one[0]] == 2


def test_failed_runs_are_flagged_and_their_features_nan():
    m = hh_model("2param")
    tr = simulate_hh(m.theta_star.repeat(2, 1), duration=30.0, generator=torch.Generator().manual_seed(0))
    v = tr.voltage.clone()
    v[1, 100] = math.nan
    bad = HHTraces(v, tr.current, tr.dt, tr.t_on, tr.t_off, ~torch.isfinite(v).all(1))
    x = hh_summary(bad, features="7")
    assert torch.isfinite(x[0]).all() and torch.isnan(x[1]).all()
    assert feature_report(x, bad.failed)["n_failed"] == 1


def test_spike_count_agrees_between_dt_0025_and_001():
    theta = torch.tensor([[50.0, 5.0], [30.0, 3.0], [70.0, 10.0]])
    kw = dict(duration=60.0, t_off=55.0)
    c1 = [len(s) for s in spike_times(simulate_hh(theta, dt=0.025, generator=torch.Generator().manual_seed(0), **kw))]
    c2 = [len(s) for s in spike_times(simulate_hh(theta, dt=0.01, generator=torch.Generator().manual_seed(0), **kw))]
    assert min(c1) >= 2
    assert np.all(np.abs(np.array(c1) - np.array(c2)) <= 1)


def test_models_priors_and_theta_star():
    for name, d in (("2param", 2), ("8param", 8), ("12param", 12), ("12param-extended", 12)):
        m = hh_model(name)
        assert m.dim == d and m.theta_star.shape == (d,)
        assert bool(m.prior.contains(m.theta_star[None]))
        phys = m.physical(m.theta_star[None])
        assert phys.shape == (1, 12)
    m12 = hh_model("12param")
    phys = m12.physical(m12.theta_star[None])[0]
    assert phys[4].item() == pytest.approx(-90.0, rel=1e-5)  # E_K sign restored
    assert phys[10].item() == pytest.approx(-60.0, rel=1e-5)  # V_T
    assert torch.allclose(m12.prior.high - m12.prior.low, torch.full((12,), math.log(3.0)), atol=1e-5)
    assert I_STEP == pytest.approx(3.248, abs=1e-3)


def test_ou_stimulus_is_gated_and_random():
    m = hh_model("2param")
    tr = simulate_hh(
        m.theta_star.repeat(40, 1), stimulus="ou", duration=60.0, generator=torch.Generator().manual_seed(0)
    )
    assert tr.current.shape == tr.voltage.shape
    t = tr.t
    assert (tr.current[:, t < tr.t_on] == 0).all() and (tr.current[:, t >= tr.t_off] == 0).all()
    assert not torch.equal(tr.current[0], tr.current[1])
    inside = tr.current[:, (t >= tr.t_on) & (t < tr.t_off)]
    assert inside.mean().item() == pytest.approx(0.2 * I_STEP, abs=0.5)
    assert inside.std().item() == pytest.approx(math.sqrt(2) * I_STEP, rel=0.2)  # stationary sd √2·A


def test_pilot_zscore_redraws_failures_and_uses_ddof_1():
    calls = {"n": 0}

    class Prior:
        dim = 1

        def sample(self, n, generator=None):
            return torch.arange(n, dtype=torch.float32)[:, None] + 10.0 * calls["n"]

    def sim(theta, generator=None):
        calls["n"] += 1
        x = theta.clone()
        bad = torch.zeros(theta.shape[0], dtype=torch.bool)
        if calls["n"] == 1:
            bad[:2] = True  # two failures in the first batch: redrawn
        return x, bad

    mean, std = pilot_zscore(sim, Prior(), 5)
    vals = torch.tensor([2.0, 3.0, 4.0, 10.0, 11.0])
    assert calls["n"] == 2
    assert mean.item() == pytest.approx(vals.mean().item())
    assert std.item() == pytest.approx(vals.std(unbiased=True).item(), rel=1e-5)


def test_simulator_callable_zscores_and_flags_bad():
    m = hh_model("2param")
    sim = HHSimulator(m, features="7", duration=60.0)
    theta = m.prior.sample(4, generator=torch.Generator().manual_seed(0))
    x, bad = sim(theta, generator=torch.Generator().manual_seed(1))
    assert x.shape == (4, 7) and bad.shape == (4,) and not bad.any()
    sim_z = HHSimulator(m, features="7", duration=60.0, zscore=(x.mean(0), x.std(0) + 1e-3))
    xz, _ = sim_z(theta, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(xz, (x - x.mean(0)) / (x.std(0) + 1e-3), atol=1e-4)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(3, 3), "theta"),
        (torch.tensor([[math.nan, 5.0]]), "theta"),
    ],
)
def test_bad_theta_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        simulate_hh(bad)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="model"):
        hh_model("3param")
    with pytest.raises(ValueError, match="dt"):
        simulate_hh(torch.tensor([50.0, 5.0]), dt=0.0)
    with pytest.raises(ValueError, match="stimulus"):
        simulate_hh(torch.tensor([50.0, 5.0]), stimulus="ramp")
    with pytest.raises(ValueError, match="noise"):
        simulate_hh(torch.tensor([50.0, 5.0]), noise=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="features"):
        hh_summary(simulate_hh(torch.tensor([50.0, 5.0]), duration=30.0), features="8")
    with pytest.raises(ValueError, match="traces"):
        hh_summary(torch.zeros(2, 100))


def test_compiled_cpu_loop_equals_torch_loop():
    """The CPU path (numba, float64) integrates the same equations as the torch path (CUDA)."""
    from neuroinverse.simulators.hodgkin_huxley import (
        _integrate_numba,
        _integrate_torch,
        _step_current,
    )

    m = hh_model("12param")
    theta = m.prior.sample(4, generator=torch.Generator().manual_seed(5))
    par = m.physical(theta.double())
    noise = torch.randn(4, 1600, generator=torch.Generator().manual_seed(6))
    cur = _step_current(1601, 0.025, 5.0, 35.0, I_STEP)
    a = _integrate_numba(par, par[:, 5], cur, noise, 0.025)
    b = _integrate_torch(par, par[:, 5], cur, noise, 0.025, device=torch.device("cpu"), dtype=torch.float64)
    assert torch.isfinite(a).all() and a.max() > 0.0  # spikes happen
    assert torch.allclose(a, b, atol=1e-8, rtol=0)
    # per-trace currents (OU stimulus) index the right row
    cur2 = torch.stack([cur, 0.5 * cur, cur, 2 * cur])
    a2 = _integrate_numba(par, par[:, 5], cur2, noise, 0.025)
    b2 = _integrate_torch(par, par[:, 5], cur2, noise, 0.025, device=torch.device("cpu"), dtype=torch.float64)
    assert torch.allclose(a2, b2, atol=1e-8, rtol=0)
    assert torch.equal(a2[0], a[0]) and not torch.allclose(a2[1], a[1])
