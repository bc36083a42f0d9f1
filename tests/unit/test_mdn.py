"""Tests of the mixture density network (full-covariance components, SVI, imputation)."""

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from neuroinverse.models import MDN, BayesianLinear, ConditionalDensity, GRUEmbedding, gaussian_kl

pytestmark = pytest.mark.usefixtures("one_thread")


def _mdn(d=2, c=3, **kw):
    torch.manual_seed(0)
    return MDN(d, c, n_components=2, hidden=(8,), **kw)


def test_is_a_conditional_density():
    assert isinstance(_mdn(), ConditionalDensity)


def test_mixture_log_prob_equals_the_mdn_formula_by_hand():
    # one 2-D component with U = [[2, 1], [0, 0.5]], μ = (1, -1), and a second with weight 0
    U = torch.tensor([[[[2.0, 1.0], [0.0, 0.5]], [[1.0, 0.0], [0.0, 1.0]]]])
    mu = torch.tensor([[[1.0, -1.0], [5.0, 5.0]]])
    log_a = torch.log(torch.tensor([[1.0 - 1e-12, 1e-12]]))
    theta = torch.tensor([[0.0, 0.0]])
    # U(θ - μ) = (2·(-1) + 1·1, 0.5·1) = (-1, 0.5); ‖·‖² = 1.25; log det U = log 1
    expected = -0.5 * 1.25 + math.log(1.0) - math.log(2 * math.pi)
    got = MDN.mixture_log_prob(theta, log_a, mu, U)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_log_prob_matches_torch_mixture_of_multivariate_normals():
    q = _mdn(3, 4).eval()
    g = torch.Generator().manual_seed(1)
    v, c = torch.randn(6, 3, generator=g), torch.randn(6, 4, generator=g)
    q.set_standardization(torch.randn(50, 3, generator=g) * 2 + 1, torch.randn(50, 4, generator=g) * 3)
    log_a, mu, U = q.mixture_z(q.standardize_context(c))
    P = U.transpose(-1, -2) @ U
    ref = MixtureSameFamily(Categorical(logits=log_a), MultivariateNormal(mu, precision_matrix=P))
    expected = ref.log_prob(q.standardize_value(v)) - torch.log(q.value_scale).sum()
    assert torch.allclose(q.log_prob(v, c), expected, atol=1e-5)
    # the original-units mixture gives the same density
    w, m, S = q.mixture(c[0])
    orig = MixtureSameFamily(Categorical(probs=w), MultivariateNormal(m, covariance_matrix=S))
    assert torch.allclose(q.log_prob(v, c[0]), orig.log_prob(v), atol=1e-4)


def test_integrates_to_one_on_a_grid():
    q = _mdn(2, 1).eval()
    q.set_standardization(torch.randn(40, 2) * torch.tensor([0.5, 2.0]), torch.randn(40, 1))
    a = torch.linspace(-8, 8, 321)
    b = torch.linspace(-30, 30, 321)
    A, B = torch.meshgrid(a, b, indexing="ij")
    with torch.no_grad():
        p = q.log_prob(torch.stack([A.ravel(), B.ravel()], 1), torch.tensor([0.3])).exp().reshape(321, 321)
    mass = torch.trapezoid(torch.trapezoid(p, b, dim=1), a).item()
    assert mass == pytest.approx(1.0, abs=1e-2)


def test_samples_match_moments():
    q = _mdn(2, 2).eval()
    c = torch.tensor([0.2, -0.4])
    s = q.sample(40000, c, generator=torch.Generator().manual_seed(0))
    mean, cov = q.moments(c)
    assert torch.allclose(s.mean(0), mean, atol=0.05 * cov.diagonal().sqrt().max().item() + 1e-3)
    assert torch.allclose(torch.cov(s.T), cov, rtol=0.08, atol=0.02)


def test_gradients_flow_to_all_parameters():
    q = _mdn(2, 3, bayesian=True, impute=True)
    q.train()
    c = torch.randn(8, 3)
    c[0, 1] = math.nan
    loss = -q.log_prob(torch.randn(8, 2), c, generator=torch.Generator().manual_seed(0)).mean() + q.kl() / 8
    loss.backward()
    for name, p in q.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bayesian_forward_is_stochastic_in_training_and_deterministic_in_eval():
    q = _mdn(bayesian=True, init_log_std=-1.0)
    v, c = torch.randn(4, 2), torch.randn(4, 3)
    q.train()
    a = q.log_prob(v, c, generator=torch.Generator().manual_seed(0))
    b = q.log_prob(v, c, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a, b)
    q.eval()
    assert torch.equal(q.log_prob(v, c), q.log_prob(v, c))


def test_local_reparameterisation_variance():
    lay = BayesianLinear(3, 1, init_log_std=-1.0)
    x = torch.tensor([[1.0, -2.0, 0.5]])
    out = torch.cat([lay(x.expand(20000, 3), stochastic=True, generator=torch.Generator().manual_seed(0))])
    var = (x**2 * torch.exp(2 * lay.weight_log_std)).sum() + torch.exp(2 * lay.bias_log_std).sum()
    assert out.mean().item() == pytest.approx(lay(x).item(), abs=0.02)
    assert out.var().item() == pytest.approx(var.item(), rel=0.05)


def test_kl_positive_zero_for_identical_and_matches_closed_form():
    q = _mdn(bayesian=True)
    assert q.kl(q.posterior_snapshot()).item() == pytest.approx(0.0, abs=1e-6)
    assert q.kl().item() > 0
    ref = q.posterior_snapshot()
    with torch.no_grad():
        q.head.weight_mean.add_(0.1)
    assert q.kl(ref).item() > 0
    # closed form against torch.distributions
    m1, s1, m2, s2 = torch.tensor([0.3]), torch.tensor([-1.0]), torch.tensor([-0.2]), torch.tensor([0.5])
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, s1.exp()), torch.distributions.Normal(m2, s2.exp())
    )
    assert gaussian_kl(m1, s1, m2, s2).item() == pytest.approx(expected.item(), rel=1e-6)
    # the isotropic prior with precision λ
    n = sum(p.numel() for name, p in q.named_parameters() if "mean" in name)
    m, s = q._flat_variational()
    lam = q.prior_precision
    by_hand = gaussian_kl(m, s, torch.zeros(n), torch.full((n,), -0.5 * math.log(lam)))
    assert q.kl().item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_non_bayesian_has_zero_kl_and_no_snapshot():
    q = _mdn(bayesian=False)
    assert q.kl().item() == 0.0
    with pytest.raises(ValueError, match="Bayesian"):
        q.posterior_snapshot()


def test_imputation_replaces_nan_by_learned_values():
    q = _mdn(2, 3, impute=True).eval()
    c = torch.tensor([[0.5, math.nan, -1.0]])
    filled = c.clone()
    filled[0, 1] = (q.impute_values[1] * q.context_scale[1] + q.context_shift[1]).item()
    v = torch.randn(1, 2)
    assert torch.allclose(q.log_prob(v, c), q.log_prob(v, filled), atol=1e-6)
    # NaN-aware standardisation: ignores missing entries
    ctx = torch.tensor([[1.0, math.nan, 0.0], [3.0, 2.0, 1.0], [5.0, 4.0, 2.0]])
    q.set_standardization(torch.randn(3, 2), ctx)
    assert q.context_shift[1].item() == pytest.approx(3.0)
    assert q.context_scale[1].item() == pytest.approx(math.sqrt(2.0))


def test_without_imputation_nan_context_raises():
    q = _mdn(impute=False)
    with pytest.raises(ValueError, match="NaN"):
        q.log_prob(torch.zeros(1, 2), torch.tensor([[0.0, math.nan, 0.0]]))


def test_gru_embedding_shapes_and_use():
    emb = GRUEmbedding(2, 5)
    x = torch.randn(3, 40)
    assert emb(x).shape == (3, 5)
    q = MDN(2, 40, hidden=(6,), embedding=emb, embedding_dim=5)
    assert q.log_prob(torch.zeros(3, 2), x).shape == (3,)
    with pytest.raises(ValueError, match="multiple"):
        emb(torch.randn(3, 41))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n_components=0), "n_components"),
        (dict(hidden=(0,)), "hidden"),
        (dict(prior_precision=0.0), "prior_precision"),
        (dict(embedding=GRUEmbedding(2, 4)), "embedding"),
    ],
)
def test_bad_constructor_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        MDN(2, 4, **kw)


def test_bad_shapes_raise():
    q = _mdn(2, 3)
    with pytest.raises(ValueError, match="value"):
        q.log_prob(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="context"):
        q.log_prob(torch.zeros(4, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="context"):
        q.sample(5, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="n must"):
        q.sample(0, torch.zeros(3))


@pytest.mark.parametrize("with_reference", [False, True])
def test_kl_gradient_equals_autograd_of_the_closed_form(with_reference):
    q = _mdn(bayesian=True)
    with torch.no_grad():
        for name, p in q.named_parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    ref = q.posterior_snapshot() if with_reference else None
    with torch.no_grad():
        q.head.weight_mean.add_(0.2)
        q.layers[0].weight_log_std.add_(0.5)
    q.zero_grad()
    q.kl(ref).mul(0.7).backward()
    got = {n: p.grad.clone() for n, p in q.named_parameters() if "_log_std" in n or "_mean" in n}
    q.zero_grad()
    m, s = q._flat_variational()
    if ref is None:
        n = m.numel()
        mp, sp = torch.zeros(n), torch.full((n,), -0.5 * math.log(q.prior_precision))
    else:
        mp, sp = ref["mean"], ref["log_std"]
    expected_value = gaussian_kl(m, s, mp, sp)
    assert q.kl(ref).item() == pytest.approx(expected_value.item(), rel=1e-6)
    expected_value.mul(0.7).backward()
    for n, p in q.named_parameters():
        if n in got:
            assert torch.allclose(got[n], p.grad, rtol=1e-5, atol=1e-6), n
