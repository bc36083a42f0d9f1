"""Tests of the autapse rate model (simulator failures, Lueckmann et al. 2017 Fig. 4)."""

import math

import pytest
import torch

from neuroinverse.simulators import (
    AUTAPSE_FEATURES,
    AUTAPSE_PRIOR,
    AUTAPSE_THETA_STAR,
    AutapseSimulator,
    autapse_summary,
    simulate_autapse,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_stable_parameters_are_good_and_reach_the_steady_state():
    theta = torch.tensor([[0.5, 0.5]]).repeat(20, 1)
    tr = simulate_autapse(theta, dt=0.05, noise_scale=1.0, generator=torch.Generator().manual_seed(0))
    assert not tr.bad.any()
    t = tr.t
    # steady state I / (1 - J) = 2 during the input (mean over traces and the late window)
    late = tr.rate[:, (t > 60) & (t < 110)].mean().item()
    assert late == pytest.approx(2.0, abs=0.15)


def test_divergent_parameters_are_bad():
    theta = torch.tensor([[0.5, -0.5], [1.8, 0.5], [0.95, 1.0]])
    tr = simulate_autapse(theta, generator=torch.Generator().manual_seed(0))
    assert tr.bad.tolist() == [True, True, False]
    x = autapse_summary(tr)
    assert x.shape == (3, len(AUTAPSE_FEATURES))
    assert torch.isnan(x[:2]).all() and torch.isfinite(x[2]).all()


def test_bad_rule_is_abs_final_value_over_1000():
    theta = torch.tensor([[0.95, 1.0]])
    tr = simulate_autapse(theta, generator=torch.Generator().manual_seed(0), bad_threshold=1e-6)
    assert tr.bad.item() == (tr.rate[0, -1].abs().item() > 1e-6)


def test_prior_failure_rate_and_simulator_callable():
    theta = AUTAPSE_PRIOR.sample(400, generator=torch.Generator().manual_seed(0))
    sim = AutapseSimulator(dt=0.05)
    x, bad = sim(theta, generator=torch.Generator().manual_seed(1))
    assert x.shape == (400, 6)
    # the unit diverges where (J - 1)/τ > 0: J < 1 with τ < 0 always fails within 120 ms
    assert 0.35 < bad.float().mean().item() < 0.7
    assert bool(bad[(theta[:, 1] < 0) & (theta[:, 0] < 0.9)].all())
    assert not bool(bad[(theta[:, 1] > 0.5) & (theta[:, 0] < 0.9)].any())
    assert torch.isfinite(x[~bad]).all()
    assert bool(AUTAPSE_PRIOR.contains(AUTAPSE_THETA_STAR[None]))


def test_same_generator_same_run():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = simulate_autapse(AUTAPSE_THETA_STAR, dt=0.05, generator=g()).observed
    b = simulate_autapse(AUTAPSE_THETA_STAR, dt=0.05, generator=g()).observed
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "theta, match",
    [
        (torch.zeros(3, 3), "theta"),
        (torch.tensor([[math.nan, 1.0]]), "NaN"),
    ],
)
def test_bad_input_raises(theta, match):
    with pytest.raises(ValueError, match=match):
        simulate_autapse(theta)


def test_bad_window_raises():
    with pytest.raises(ValueError, match="t_on"):
        simulate_autapse(AUTAPSE_THETA_STAR, t_on=50.0, t_off=40.0)
