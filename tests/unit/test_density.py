"""Tests of the conditional density interface and the zuko flow wrapper."""

import numpy as np
import pytest
import torch

from neuroinverse.models import ConditionalDensity, ConditionalFlow


def _flow(d_v, d_c, kind="maf", seed=0):
    torch.manual_seed(seed)
    return ConditionalFlow(d_v, d_c, kind=kind, transforms=2, hidden=(16, 16))


@pytest.mark.parametrize("kind", ["maf", "nsf"])
def test_log_prob_integrates_to_one_1d_with_standardisation(kind):
    q = _flow(1, 2, kind)
    g = torch.Generator().manual_seed(1)
    q.set_standardization(3.0 + 0.5 * torch.randn(500, 1, generator=g), torch.randn(500, 2, generator=g))
    assert q.value_scale.item() == pytest.approx(0.5, rel=0.15)
    grid = torch.linspace(-10, 16, 8001).unsqueeze(1)
    with torch.no_grad():
        p = q.log_prob(grid, torch.tensor([0.3, -0.2])).exp()
    mass = torch.trapezoid(p, grid[:, 0]).item()
    assert mass == pytest.approx(1.0, abs=5e-3)


def test_log_prob_integrates_to_one_2d_with_standardisation():
    q = _flow(2, 1, "maf")
    g = torch.Generator().manual_seed(2)
    v = torch.randn(300, 2, generator=g) * torch.tensor([0.2, 2.0]) + torch.tensor([1.0, -1.0])
    q.set_standardization(v, torch.randn(300, 1, generator=g))
    a = torch.linspace(-1.5, 3.5, 301)
    b = torch.linspace(-14.0, 12.0, 301)
    A, B = torch.meshgrid(a, b, indexing="ij")
    with torch.no_grad():
        p = q.log_prob(torch.stack([A.ravel(), B.ravel()], 1), torch.tensor([0.5])).exp().reshape(301, 301)
    mass = torch.trapezoid(torch.trapezoid(p, b, dim=1), a).item()
    assert mass == pytest.approx(1.0, abs=2e-2)


def test_without_standardisation_jacobian_is_zero_and_scale_changes_density():
    q = _flow(2, 2)
    v, c = torch.randn(5, 2), torch.randn(5, 2)
    lp0 = q.log_prob(v, c)
    assert torch.allclose(lp0, q._log_prob(v, c))
    q.value_scale.fill_(2.0)
    # z = v / 2: log q(v) = log q_z(v / 2) - 2 log 2
    assert torch.allclose(q.log_prob(v, c), q._log_prob(v / 2, c) - 2 * np.log(2.0), atol=1e-5)


def test_sample_histogram_matches_density():
    q = _flow(1, 1, "nsf", seed=3)
    q.set_standardization(torch.randn(100, 1) * 2, torch.randn(100, 1))
    with torch.no_grad():
        s = q.sample(20000, torch.tensor([0.1]), generator=torch.Generator().manual_seed(0))[:, 0]
        hist = torch.histc(s, bins=24, min=-6, max=6) / len(s)
        fine = torch.linspace(-6, 6, 24 * 50 + 1)
        p = q.log_prob(fine.unsqueeze(1), torch.tensor([0.1])).exp()
        mass = torch.stack(
            [torch.trapezoid(p[i * 50 : (i + 1) * 50 + 1], fine[i * 50 : (i + 1) * 50 + 1]) for i in range(24)]
        )
    assert (hist - mass).abs().max().item() < 0.01


def test_sample_shapes_generator_and_context_forms():
    q = _flow(3, 2)
    a = q.sample(7, torch.tensor([0.0, 1.0]), generator=torch.Generator().manual_seed(5))
    b = q.sample(7, torch.tensor([[0.0, 1.0]]), generator=torch.Generator().manual_seed(5))
    assert a.shape == (7, 3)
    assert torch.equal(a, b)
    c = q.sample(7, torch.tensor([0.0, 1.0]), generator=torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)


def test_broadcast_context_equals_repeated_context():
    q = _flow(2, 3)
    v = torch.randn(6, 2)
    c = torch.randn(3)
    assert torch.allclose(q.log_prob(v, c), q.log_prob(v, c.expand(6, 3)))


def test_gradients_flow_to_parameters():
    q = _flow(2, 2)
    loss = -q.log_prob(torch.randn(8, 2), torch.randn(8, 2)).mean()
    loss.backward()
    grads = [p.grad for p in q.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_standardisation_is_stored_in_state_dict():
    q = _flow(2, 2)
    q.set_standardization(torch.randn(50, 2) + 4, torch.randn(50, 2) * 3)
    q2 = _flow(2, 2)
    q2.load_state_dict(q.state_dict())
    assert bool(q2.standardized)
    assert torch.equal(q2.value_shift, q.value_shift)
    assert torch.equal(q2.context_scale, q.context_scale)


def test_bad_inputs_name_the_argument():
    q = _flow(2, 3)
    with pytest.raises(ValueError, match="value"):
        q.log_prob(torch.zeros(4, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="context"):
        q.log_prob(torch.zeros(4, 2), torch.zeros(2))
    with pytest.raises(ValueError, match="context"):
        q.log_prob(torch.zeros(4, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="value"):
        q.log_prob(torch.full((4, 2), float("nan")), torch.zeros(3))
    with pytest.raises(ValueError, match="context"):
        q.sample(3, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n"):
        q.sample(0, torch.zeros(3))
    with pytest.raises(ValueError, match="kind"):
        ConditionalFlow(2, 3, kind="realnvp")
    with pytest.raises(ValueError, match="value_dim"):
        ConditionalFlow(0, 3)
    with pytest.raises(ValueError, match="value"):
        q.set_standardization(torch.zeros(1, 2), torch.zeros(1, 3))


def test_base_class_requires_implementation():
    d = ConditionalDensity(1, 1)
    with pytest.raises(NotImplementedError):
        d.log_prob(torch.zeros(2, 1), torch.zeros(1))
