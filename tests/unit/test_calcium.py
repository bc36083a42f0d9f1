"""Calcium simulators: shapes, the recursions they define, parameter ranges, bad input."""

import math

import pytest
import torch

from neuroinverse.simulators import (
    M1_RANGES,
    decay_time,
    sample_linear_params,
    sample_saturating_params,
    simulate_linear,
    simulate_saturating,
    simulate_spikes,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_linear_shapes_and_recursion():
    d = simulate_linear(3, 500, rate_hz=2.0, generator=gen())
    assert d.fluorescence.shape == d.spikes.shape == d.calcium.shape == (3, 500)
    s, c, g = d.spikes.double(), d.calcium.double(), d.params["gamma"]
    # c_t = γ c_{t-1} + s_t
    assert torch.allclose(c[:, 1:], g[:, None] * c[:, :-1] + s[:, 1:], atol=1e-5)
    resid = d.fluorescence.double() - d.params["alpha"][:, None] * c - d.params["beta"][:, None]
    # the residual is the Gaussian noise with SD σ
    assert torch.allclose(resid.std(1), d.params["sigma"], rtol=0.15)


def test_spike_rate_matches():
    s = simulate_spikes(20, 6000, rate_hz=1.0, frame_rate=60.0, generator=gen(1))
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert s.mean().item() == pytest.approx(1 / 60, rel=0.05)


def test_parameter_ranges():
    p = sample_linear_params(500, generator=gen())
    g_lo, g_hi = M1_RANGES["g"]
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert p["gamma"].min() >= sig(g_lo) and p["gamma"].max() <= sig(g_hi)
    tau = decay_time(p["gamma"])
    assert 0.26 <= tau.min() and tau.max() <= 1.67  # reference code's range: τ ∈ [0.27, 1.66] s, rounded


def test_same_generator_seed_same_data():
    a = simulate_linear(2, 100, generator=gen(5))
    b = simulate_linear(2, 100, generator=gen(5))
    assert torch.equal(a.fluorescence, b.fluorescence)


def test_saturating_model_follows_its_recursion():
    p = sample_saturating_params(2, generator=gen())
    p["sigma"] = torch.zeros(2, dtype=torch.float64)  # noiseless, so d_t can be read off f_t
    d = simulate_saturating(2, 3000, rate_hz=5.0, generator=gen(), params=p)
    dye = (d.fluorescence.double() - p["beta"][:, None]) / p["alpha"][:, None]
    c = d.calcium.double()
    prev = torch.minimum(dye[:, :-1], p["d_max"][:, None])
    expect = (
        p["eta"][:, None] * c[:, 1:] ** (1 + p["zeta"][:, None]) * (p["d_max"][:, None] - prev)
        + p["kappa"][:, None] * prev
    )
    # the exponent 1 + ζ (ζ > 0: supralinear in calcium) is checked by the recursion above
    assert torch.allclose(dye[:, 1:], expect, atol=1e-4)
    assert torch.isfinite(d.fluorescence).all()


def test_decay_time_value():
    assert decay_time(torch.tensor(math.exp(-1 / 60))).item() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n_cells=0, n_frames=10), "n_cells"),
        (dict(n_cells=2, n_frames=-1), "n_frames"),
        (dict(n_cells=2, n_frames=10, rate_hz=-1.0), "rate_hz"),
        (dict(n_cells=2, n_frames=10, rate_hz=float("nan")), "rate_hz"),
        (dict(n_cells=2, n_frames=10, rate_hz=100.0), "rate_hz"),
    ],
)
def test_bad_input_names_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        simulate_linear(generator=gen(), **kw)


def test_bad_params_shape():
    p = sample_linear_params(3, generator=gen())
    with pytest.raises(ValueError, match="params"):
        simulate_linear(2, 10, generator=gen(), params=p)
    p["gamma"] = torch.tensor([0.5, 1.5, 0.9], dtype=torch.float64)
    with pytest.raises(ValueError, match="gamma"):
        simulate_linear(3, 10, generator=gen(), params=p)
