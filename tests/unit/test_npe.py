"""Tests of the APT atomic loss, the restricted posterior and the multi-round NPE loop."""

import math
import warnings

import pytest
import torch

from neuroinverse.inference import (
    APT,
    METHODS,
    NaiveSNPE,
    NPEMethod,
    PooledSNPEB,
    RestrictedPosterior,
    apt_atomic_loss,
    npe_method,
    run_npe,
    sample_atom_indices,
    self_normalized_weights,
)
from neuroinverse.inference.npe_methods import log_mixture_proposal
from neuroinverse.models import ConditionalDensity, ConditionalFlow
from neuroinverse.simulators import (
    BoxUniform,
    GaussianPrior,
    gaussian_linear,
    gaussian_linear_posterior,
)


class FixedGaussian(ConditionalDensity):
    """q(θ | x) = N(θ; a·x, s² I): a fixed density with one trainable scalar ``a``."""

    def __init__(self, d=1, a=0.5, s=0.7, shift=0.0):
        super().__init__(d, d)
        self.a = torch.nn.Parameter(torch.tensor(float(a)))
        self.s = s
        self.shift = shift

    def _log_prob(self, v, c):
        mu = self.a * c + self.shift
        return (-0.5 * ((v - mu) / self.s) ** 2 - math.log(self.s * math.sqrt(2 * math.pi))).sum(1)

    def _sample(self, n, c, generator):
        return self.a * c + self.shift + self.s * self._base_noise(n, generator)


def gen(s=0):
    return torch.Generator().manual_seed(s)


def test_atom_indices_never_duplicate_the_true_theta_and_are_uniform():
    idx = sample_atom_indices(6, 4, generator=gen())
    assert idx.shape == (6, 3)
    for i, row in enumerate(idx.tolist()):
        assert i not in row and len(set(row)) == 3
    counts = torch.zeros(5, 5)
    for s in range(400):
        idx = sample_atom_indices(5, 3, generator=gen(s))
        for i in range(5):
            counts[i, idx[i]] += 1
    assert torch.all(counts.diagonal() == 0)
    off = counts[~torch.eye(5, dtype=torch.bool)]
    # each of the 4 other rows is chosen with probability 2/4 per draw
    assert torch.allclose(off / 400, torch.full_like(off, 0.5), atol=0.1)


def test_atomic_loss_equals_its_definition_on_a_hand_computed_case():
    q = FixedGaussian(d=1)
    prior = GaussianPrior([0.0], [1.5])
    theta = torch.tensor([[0.2], [-0.4], [1.0]])
    x = torch.tensor([[0.5], [-1.0], [1.5]])
    loss = apt_atomic_loss(q, theta, x, prior_log_prob=prior.log_prob, num_atoms=2, generator=gen(3), reduce=False)
    other = sample_atom_indices(3, 2, generator=gen(3))[:, 0].tolist()

    def logq(t, xx):  # N(t; 0.5 x, 0.7²)
        return -0.5 * ((t - 0.5 * xx) / 0.7) ** 2 - math.log(0.7 * math.sqrt(2 * math.pi))

    def logp(t):
        return -0.5 * (t / 1.5) ** 2 - math.log(1.5 * math.sqrt(2 * math.pi))

    for i in range(3):
        ti, xi, tj = theta[i, 0].item(), x[i, 0].item(), theta[other[i], 0].item()
        li, lj = logq(ti, xi) - logp(ti), logq(tj, xi) - logp(tj)
        expected = -li + math.log(math.exp(li) + math.exp(lj))
        assert loss[i].item() == pytest.approx(expected, rel=1e-5)


def test_atomic_loss_with_all_atoms_and_uniform_prior_is_a_softmax_over_the_batch():
    q = FixedGaussian(d=2)
    prior = BoxUniform([-3.0, -3.0], [3.0, 3.0])
    theta = torch.randn(4, 2, generator=gen(1))
    x = torch.randn(4, 2, generator=gen(2))
    loss = apt_atomic_loss(q, theta, x, prior_log_prob=prior.log_prob, num_atoms=4, generator=gen(0))
    # M = B: every row's atoms are the whole batch (order irrelevant); the constant prior cancels
    L = torch.stack([q.log_prob(theta, x[i]) for i in range(4)])  # L[i, j] = log q(θ_j | x_i)
    expected = (torch.logsumexp(L, 1) - L.diagonal()).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_atomic_loss_gradient_flows_and_a_constant_prior_term_cancels():
    q = FixedGaussian(d=1)
    prior = BoxUniform([-3.0], [3.0])
    theta, x = torch.randn(8, 1, generator=gen(4)), torch.randn(8, 1, generator=gen(5))
    loss = apt_atomic_loss(q, theta, x, prior_log_prob=prior.log_prob, num_atoms=5, generator=gen(6))
    shifted = apt_atomic_loss(
        q, theta, x, prior_log_prob=lambda t: prior.log_prob(t) + 7.0, num_atoms=5, generator=gen(6)
    )
    assert shifted.item() == pytest.approx(loss.item(), rel=1e-6)
    loss.backward()
    assert q.a.grad is not None and q.a.grad.abs().item() > 0
    assert loss.item() >= 0  # a cross-entropy over atoms


def test_atomic_loss_bad_inputs():
    q = FixedGaussian(d=1)
    prior = BoxUniform([-3.0], [3.0])
    with pytest.raises(ValueError, match="num_atoms"):
        apt_atomic_loss(q, torch.zeros(3, 1), torch.zeros(3, 1), prior_log_prob=prior.log_prob, num_atoms=4)
    with pytest.raises(ValueError, match="rows"):
        apt_atomic_loss(q, torch.zeros(3, 1), torch.zeros(2, 1), prior_log_prob=prior.log_prob, num_atoms=2)


def test_restricted_posterior_rejects_outside_the_box_and_warns_on_leakage():
    q = FixedGaussian(d=1, a=0.0, s=1.0, shift=1.0)
    post = RestrictedPosterior(q, BoxUniform([-1.0], [1.0]), torch.zeros(1))
    s = post.sample(4000, generator=gen(7))
    assert s.shape == (4000, 1) and (s.abs() <= 1).all()
    expected = 0.5 * (math.erf(0 / math.sqrt(2)) - math.erf(-2 / math.sqrt(2)))  # P(-1 < N(1, 1) < 1)
    assert post.acceptance_rate == pytest.approx(expected, abs=0.02)
    far = RestrictedPosterior(FixedGaussian(d=1, a=0.0, s=1.0, shift=2.5), BoxUniform([-1.0], [1.0]), torch.zeros(1))
    with pytest.warns(RuntimeWarning, match="leakage"):
        far.sample(200, generator=gen(8))
    assert far.log_prob(torch.tensor([[2.0]])).item() == -math.inf
    stuck = RestrictedPosterior(
        FixedGaussian(d=1, a=0.0, s=0.1, shift=10.0), BoxUniform([-1.0], [1.0]), torch.zeros(1), max_draws=5000
    )
    with pytest.raises(RuntimeError, match="leaked"):
        stuck.sample(10, generator=gen(9))


def test_mixture_proposal_of_the_prior_alone_is_the_prior():
    prior = GaussianPrior([0.0, 0.0], 1.0)
    theta = torch.randn(5, 2)
    assert torch.allclose(log_mixture_proposal(theta, prior, [None, None], [3, 7]), prior.log_prob(theta))
    q = FixedGaussian(d=2, a=0.0, s=0.5)
    mix = log_mixture_proposal(theta, prior, [None, (q, torch.zeros(2), 1.0)], [1, 1])
    expected = torch.logaddexp(prior.log_prob(theta), q.log_prob(theta, torch.zeros(2))) - math.log(2)
    assert torch.allclose(mix, expected, atol=1e-6)


def _gl_task(d=1):
    prior = GaussianPrior(torch.zeros(d), math.sqrt(0.1))
    sim = lambda t, generator: gaussian_linear(t, noise_var=0.1, generator=generator)  # noqa: E731
    return prior, sim


@pytest.mark.parametrize("method", ["apt", "snpe-b", "naive"])
def test_run_npe_on_gaussian_linear_runs_all_methods(method):
    prior, sim = _gl_task()
    x_o = torch.tensor([0.2])
    torch.manual_seed(0)
    q = ConditionalFlow(1, 1, kind="maf", transforms=1, hidden=(16,))
    res = run_npe(
        prior,
        sim,
        x_o,
        density=q,
        n_rounds=2,
        simulations_per_round=[100, 60],
        method=method,
        max_steps=20,
        generator=gen(10),
        progress=False,
        record_samples=300,
    )
    assert res.theta.shape == (160, 1) and res.x.shape == (160, 1)
    assert res.round_index.tolist() == [0] * 100 + [1] * 60
    assert len(res.rounds) == 2 and len(res.round_samples) == 2
    assert res.round_samples[1].shape == (300, 1)
    assert res.rounds[0].proposal_acceptance == 1.0
    assert all(r.steps <= 20 for r in res.rounds)


def test_methods_are_objects_that_differ_in_rows_or_loss_only():
    assert npe_method("apt") == APT() and isinstance(npe_method("naive"), NaiveSNPE)
    assert npe_method(APT(num_atoms=3)).num_atoms == 3 and str(npe_method("snpe-b")) == "snpe-b"
    assert set(METHODS) == {"apt", "naive", "snpe-b"}
    ri = torch.tensor([0, 0, 1, 1, 2])
    assert NPEMethod().trains_on(ri, 2).all() and APT().trains_on(ri, 2).all()
    assert NaiveSNPE().trains_on(ri, 2).tolist() == [False, False, False, False, True]
    for bad in ("snpe-a", 3, None):
        with pytest.raises(ValueError, match="method"):
            npe_method(bad)
    for atoms in (1, 2.5, True):
        with pytest.raises(ValueError, match="num_atoms"):
            APT(num_atoms=atoms)


def test_every_method_is_maximum_likelihood_in_round_one():
    from neuroinverse.inference import RoundData

    q, prior = FixedGaussian(), GaussianPrior([0.0], 1.0)
    theta, x = torch.randn(8, 1, generator=gen(0)), torch.randn(8, 1, generator=gen(1))
    data = RoundData(theta, x, torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.bool), (None,))
    idx = torch.arange(8)
    ml = -q.log_prob(theta, x).mean()
    for m in (APT(), NaiveSNPE(), PooledSNPEB(), APT(combined_loss=True)):
        assert torch.equal(m.round_loss(0, q, prior, data)(idx, gen(2)), ml)


def test_pooled_snpe_b_weights_prior_over_the_mixture_of_proposals():
    """Round 2 with round 1 from the prior and round 2 from a frozen q: w ∝ p / (½ p + ½ q)."""
    from neuroinverse.inference import RoundData

    q, prior = FixedGaussian(a=1.0, s=0.3), GaussianPrior([0.0], 1.0)
    x_o = torch.tensor([0.5])
    theta, x = torch.randn(6, 1, generator=gen(3)), torch.randn(6, 1, generator=gen(4))
    ri, train = torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([True] * 5 + [False])
    data = RoundData(theta, x, ri, train, (None, (q, x_o, 1.0)))
    loss = PooledSNPEB().round_loss(1, q, prior, data)
    lp_prior = prior.log_prob(theta)
    mix = torch.logaddexp(lp_prior + math.log(0.5), q.log_prob(theta, x_o.expand(6, 1)) + math.log(0.5))
    w = torch.exp(lp_prior - mix)
    w = w / w[train].mean()
    idx = torch.arange(6)
    expected = -(w * q.log_prob(theta, x)).mean()
    torch.testing.assert_close(loss(idx, None), expected)


def test_self_normalized_weights_have_mean_one_and_do_not_overflow():
    log_w = torch.tensor([1000.0, 1001.0, 999.0, -5.0], dtype=torch.float64)
    w = self_normalized_weights(log_w)
    assert torch.isfinite(w).all() and float(w.mean()) == pytest.approx(1.0)
    torch.testing.assert_close(w, self_normalized_weights(log_w - 1000.0))  # a constant cancels
    over = torch.tensor([True, False, True, False])
    assert float(self_normalized_weights(log_w, over=over)[over].mean()) == pytest.approx(1.0)
    assert self_normalized_weights(log_w.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="over"):
        self_normalized_weights(log_w, over=torch.zeros(4, dtype=torch.bool))


def test_apt_recovers_the_analytic_gaussian_posterior():
    prior, sim = _gl_task()
    x_o = torch.tensor([0.3])
    torch.manual_seed(1)
    q = ConditionalFlow(1, 1, kind="maf", transforms=1, hidden=(16,))
    res = run_npe(
        prior,
        sim,
        x_o,
        density=q,
        n_rounds=2,
        simulations_per_round=300,
        method="apt",
        max_steps=100,
        lr=3e-3,
        generator=gen(11),
        progress=False,
        record_samples=2000,
    )
    mean, cov = gaussian_linear_posterior(x_o, prior_var=0.1, noise_var=0.1)
    s = res.round_samples[-1][:, 0].double()
    assert float(s.mean()) == pytest.approx(float(mean[0]), abs=0.3 * math.sqrt(0.05))
    assert 0.75 < float(s.std()) / math.sqrt(0.05) < 1.3


def test_standardisation_comes_from_round_one_only():
    prior, sim = _gl_task()
    torch.manual_seed(2)
    q = ConditionalFlow(1, 1, kind="maf", transforms=1, hidden=(8,))
    res = run_npe(
        prior,
        sim,
        torch.tensor([0.5]),
        density=q,
        n_rounds=2,
        simulations_per_round=100,
        max_steps=5,
        generator=gen(12),
        progress=False,
    )
    first = res.theta[res.round_index == 0]
    assert q.value_shift.item() != pytest.approx(res.theta.mean().item(), abs=1e-6)
    # the 90 training rows of round 1 set the z-scoring
    assert first.mean().item() == pytest.approx(q.value_shift.item(), abs=0.05)


def test_run_npe_bad_inputs_name_the_argument():
    prior, sim = _gl_task(2)
    x_o = torch.zeros(2)

    def make():
        return ConditionalFlow(2, 2, kind="maf", transforms=1, hidden=(8,))

    kw = dict(n_rounds=1, simulations_per_round=50, max_steps=2, progress=False, generator=gen())
    with pytest.raises(ValueError, match="simulations_per_round"):
        run_npe(prior, sim, x_o, density=make(), **{**kw, "simulations_per_round": 0})
    with pytest.raises(ValueError, match="x_o"):
        run_npe(prior, sim, torch.zeros(3), density=ConditionalFlow(2, 3, transforms=1, hidden=(8,)), **kw)
    with pytest.raises(ValueError, match="x_o"):
        run_npe(prior, sim, torch.tensor([0.0, float("nan")]), density=make(), **kw)
    with pytest.raises(ValueError, match="simulator"):
        run_npe(prior, lambda t, generator: t[:, :1], x_o, density=make(), **kw)
    with pytest.raises(ValueError, match="simulator"):
        run_npe(prior, lambda t, generator: t[:10], x_o, density=make(), **kw)
    with pytest.raises(ValueError, match="simulator"):
        run_npe(prior, lambda t, generator: t * float("nan"), x_o, density=make(), **kw)
    with pytest.raises(ValueError, match="method"):
        run_npe(prior, sim, x_o, density=make(), method="snpe-a", **kw)

    class WrongShapePrior(GaussianPrior):
        def sample(self, n, *, generator=None):
            return torch.zeros(n)

    class NaNPrior(GaussianPrior):
        def sample(self, n, *, generator=None):
            return torch.full((n, 2), float("nan"))

    with pytest.raises(ValueError, match="prior"):
        run_npe(WrongShapePrior([0.0, 0.0], 1.0), sim, x_o, density=make(), **kw)
    with pytest.raises(ValueError, match="prior"):
        run_npe(NaNPrior([0.0, 0.0], 1.0), sim, x_o, density=make(), **kw)
    with pytest.raises(ValueError, match="prior"):
        run_npe(GaussianPrior([0.0], 1.0), sim, x_o, density=make(), **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_npe(prior, sim, x_o, density=make(), **kw)  # the good case raises nothing
