"""Tests of the emulator ensemble, the acquisition functions and the active-learning loop."""

import math

import numpy as np
import pytest
import torch

from neuroinverse.inference import (
    EmulatorEnsemble,
    alpha_info_mc,
    alpha_info_moment_matched,
    generate_candidates,
    log_alpha_post,
    make_flow_ensemble,
    resample_with_jitter,
    run_active_learning,
    select_batch,
)
from neuroinverse.models import ConditionalDensity
from neuroinverse.samplers import (
    fraction_in_hpd,
    grid_kde,
    grid_posterior,
    hpd_threshold,
    sample_grid,
    slice_sample,
    split_rhat,
)
from neuroinverse.simulators import (
    GAUSSIAN_1D_X_O,
    BoxUniform,
    gaussian_1d,
    gaussian_1d_posterior_log_prob,
    gaussian_1d_prior,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class GaussianMember(ConditionalDensity):
    """q(x | θ) = N(x; a θ + b, s²) per dimension: a hand-built emulator with known moments."""

    def __init__(self, a: float, b: float, s: float, dim: int = 1):
        super().__init__(dim, dim)
        self.a, self.b, self.s = a, b, s
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # so that the ensemble has a device

    def _log_prob(self, value_z, context_z):
        mu = self.a * context_z + self.b
        return (-0.5 * ((value_z - mu) / self.s) ** 2 - math.log(self.s) - 0.5 * math.log(2 * math.pi)).sum(1)

    def _sample(self, n, context_z, generator):
        mu = self.a * context_z.expand(n, -1) + self.b
        return mu + self.s * self._base_noise(n, generator)


def _ens(*members, cap=None):
    return EmulatorEnsemble(list(members), log_density_cap=cap)


# -- acquisition functions -----------------------------------------------------------------------
def test_log_alpha_post_is_the_ensemble_variance_of_prior_times_likelihood():
    rng = np.random.default_rng(0)
    ll = rng.normal(-2.0, 1.5, size=(4, 7))
    lp = np.full(7, math.log(0.25))
    lp[3] = -math.inf
    got = log_alpha_post(torch.tensor(ll), torch.tensor(lp)).exp().numpy()
    want = np.var(np.exp(ll) * np.exp(lp)[None], axis=0)  # population variance over members
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert got[3] == 0.0
    # stable for likelihoods far beyond float range of exp
    big = log_alpha_post(torch.tensor([[800.0], [801.0]]), torch.tensor([0.0]))
    assert big.item() == pytest.approx(1600 + math.log(np.var([1.0, math.e])), rel=1e-12)


def test_alpha_info_moment_matched_equals_formula_for_two_gaussian_members():
    means = torch.tensor([[[0.0]], [[1.0]]])  # (M=2, n=1, d=1)
    covs = torch.tensor([[[[1.0]]], [[[2.0]]]])
    mixture_var = 0.5 * (1.0 + 2.0) + 0.25  # E[var] + var of the means
    want = 0.5 * math.log(mixture_var) - 0.25 * (math.log(1.0) + math.log(2.0))
    assert alpha_info_moment_matched(means, covs).item() == pytest.approx(want, rel=1e-12)
    # identical members carry no information about the weights
    same = alpha_info_moment_matched(means[:1].repeat(2, 1, 1), covs[:1].repeat(2, 1, 1, 1))
    assert same.item() == pytest.approx(0.0, abs=1e-12)


def test_alpha_info_mc_is_the_mean_log_ratio_to_the_mixture():
    rng = np.random.default_rng(1)
    lq = rng.normal(size=(3, 3, 5, 4))
    got = alpha_info_mc(torch.tensor(lq)).numpy()
    mix = np.log(np.exp(lq).mean(0))  # (M_m, n, S)
    own = np.stack([lq[m, m] for m in range(3)])
    np.testing.assert_allclose(got, (own - mix).mean((0, 2)), rtol=1e-10)
    assert alpha_info_mc(torch.zeros(2, 2, 3, 4)).abs().max().item() == 0.0


def test_ensemble_acquisitions_match_their_definitions_on_gaussian_members():
    ens = _ens(GaussianMember(1.0, 0.0, 0.5), GaussianMember(1.0, 1.0, 1.0))
    prior = BoxUniform([-2.0], [2.0])
    theta = torch.tensor([[-1.0], [0.3], [1.5]])
    x_o = torch.tensor([0.5])
    lik = np.stack(
        [
            np.exp(-0.5 * ((0.5 - (t + b)) / s) ** 2) / (s * math.sqrt(2 * math.pi))
            for b, s in ((0.0, 0.5), (1.0, 1.0))
            for t in [theta[:, 0].numpy()]
        ]
    )
    post = ens.acquisition("post", theta, x_o, prior).exp().numpy()
    np.testing.assert_allclose(post, np.var(lik / 4, axis=0), rtol=1e-5)
    # moment-matched information gain from 4000 draws per member vs the closed form
    info = ens.acquisition("info", theta, x_o, prior, n_samples=4000, generator=torch.Generator().manual_seed(0))
    want = 0.5 * math.log(0.5 * (0.25 + 1.0) + 0.25) - 0.25 * (math.log(0.25) + math.log(1.0))
    np.testing.assert_allclose(info.numpy(), want, atol=0.03)
    mc = ens.acquisition(
        "info", theta, x_o, prior, n_samples=4000, estimator="mc", generator=torch.Generator().manual_seed(0)
    )
    assert (mc > 0.05).all() and (mc < info + 0.05).all()  # JSD of the true mixture ≤ its Gaussian bound
    assert ens.log_likelihood_std(theta, x_o).shape == (3,)


def test_log_density_cap_bounds_the_standardised_density():
    ens = _ens(GaussianMember(1.0, 0.0, 1e-4), GaussianMember(1.0, 0.0, 1e-4), cap=2.0)
    ll = ens.member_log_likelihoods(torch.tensor([[0.5]]), torch.tensor([0.5]))
    assert torch.allclose(ll, torch.full_like(ll, 2.0))


# -- candidates and batches ----------------------------------------------------------------------
def test_select_batch_respects_the_exclusion_radius_and_returns_distinct_points():
    g = torch.Generator().manual_seed(0)
    cand = torch.rand(500, 2, generator=g)
    scores = -((cand - 0.5) ** 2).sum(1)  # one peak: without exclusion all picks crowd at 0.5
    idx = select_batch(cand, scores, 10, exclusion_radius=0.1)
    assert idx.shape == (10,) and len(set(idx.tolist())) == 10
    assert idx[0].item() == int(torch.argmax(scores))
    d = torch.cdist(cand[idx], cand[idx]) + torch.eye(10) * 10
    assert d.min().item() > 0.1
    # a radius in units of `scale`
    idx2 = select_batch(cand * torch.tensor([10.0, 1.0]), scores, 5, exclusion_radius=0.1, scale=[10.0, 1.0])
    assert torch.equal(idx2, idx[:5])
    with pytest.raises(ValueError, match="exclusion_radius"):
        select_batch(cand, scores, 10, exclusion_radius=1.5)
    with pytest.raises(ValueError, match="scores contains NaN"):
        select_batch(cand, torch.full((500,), math.nan), 3)


def test_generate_candidates_mixes_prior_and_posterior_draws():
    prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])
    cand = generate_candidates(
        prior,
        100,
        prior_fraction=0.25,
        posterior_sampler=lambda k, g: torch.full((k, 2), 0.3),
        generator=torch.Generator().manual_seed(0),
    )
    assert cand.shape == (100, 2)
    assert int((cand == 0.3).all(1).sum()) == 75
    with pytest.raises(ValueError, match="posterior_sampler"):
        generate_candidates(prior, 10, prior_fraction=0.5)


# -- grid posteriors -----------------------------------------------------------------------------
def test_grid_posterior_with_the_true_likelihood_is_the_exact_posterior():
    prior = gaussian_1d_prior()
    ens = _ens(GaussianMember(1.0, 0.0, math.sqrt(0.1)), GaussianMember(1.0, 0.0, math.sqrt(0.1)))
    x_o = torch.tensor([GAUSSIAN_1D_X_O])
    axes, dens = grid_posterior(lambda t: ens.log_posterior(t, x_o, prior), [-2.0], [2.0], points=800)
    h = axes[0][1] - axes[0][0]
    assert dens.sum() * h == pytest.approx(1.0, abs=1e-9)
    exact = gaussian_1d_posterior_log_prob(torch.as_tensor(axes[0])[:, None]).exp().numpy()
    np.testing.assert_allclose(dens, exact, atol=2e-3 * exact.max())


def test_sample_grid_and_hpd_fraction():
    axes = [np.array([0.25, 0.75]), np.array([0.25, 0.75])]
    dens = np.array([[3.0, 0.0], [0.0, 1.0]])
    s = sample_grid(axes, dens, 4000, generator=torch.Generator().manual_seed(0))
    assert ((s >= 0) & (s <= 1)).all()
    assert (s < 0.5).all(1).float().mean().item() == pytest.approx(0.75, abs=0.03)
    assert hpd_threshold(dens, level=0.7) == 3.0
    pts = torch.tensor([[0.1, 0.1], [0.9, 0.9], [2.0, 2.0]])
    assert fraction_in_hpd(pts, axes, dens, level=0.7) == pytest.approx(1 / 3)
    assert fraction_in_hpd(pts, axes, dens, level=0.99) == pytest.approx(2 / 3)


def test_grid_kde_is_the_density_of_resample_with_jitter_in_a_box():
    box = BoxUniform([-1.0, -1.0], [1.0, 1.0])
    g = torch.Generator().manual_seed(0)
    samples = 0.3 * torch.randn(40, 2, generator=g) + torch.tensor([0.6, -0.2])  # mass leaks out of the box
    axis = -1 + 0.01 * (np.arange(200) + 0.5)
    dens = grid_kde(samples, [axis, axis])
    assert dens.shape == (200, 200) and dens.sum() * 1e-4 == pytest.approx(1.0)
    draws = resample_with_jitter(samples, 200_000, prior=box, generator=g).numpy()
    hist, _, _ = np.histogram2d(draws[:, 0], draws[:, 1], bins=10, range=[[-1, 1], [-1, 1]], density=True)
    coarse = dens.reshape(10, 20, 10, 20).mean((1, 3))
    np.testing.assert_allclose(hist, coarse, atol=0.05 * coarse.max())
    with pytest.raises(ValueError, match="bandwidth"):
        grid_kde(samples, [axis, axis], bandwidth=0.0)


def test_slice_sampler_recovers_a_correlated_gaussian():
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    prec = torch.linalg.inv(cov)

    def logp(t):
        return -0.5 * ((t @ prec) * t).sum(1)

    s = slice_sample(logp, torch.zeros(32, 2), 150, n_warmup=30, width=2.0, generator=torch.Generator().manual_seed(0))
    flat = s.reshape(-1, 2)
    assert s.shape == (32, 150, 2)
    assert flat.mean(0).abs().max().item() < 0.15
    assert torch.cov(flat.T).sub(cov).abs().max().item() < 0.15
    assert split_rhat(s).max().item() < 1.1
    with pytest.raises(ValueError, match="init"):
        slice_sample(logp, torch.full((2, 2), math.nan), 5)


# -- training and the loop -----------------------------------------------------------------------
def test_active_learning_on_the_1d_toy_gives_the_exact_posterior():
    torch.manual_seed(0)
    prior, x_o = gaussian_1d_prior(), torch.tensor([GAUSSIAN_1D_X_O])
    ens = make_flow_ensemble(1, 1, n_members=2, transforms=1, hidden=(16, 16), seed=0)
    res = run_active_learning(
        prior,
        gaussian_1d,
        x_o,
        ensemble=ens,
        acquisition="post",
        n_initial=30,
        n_rounds=1,
        batch_size=10,
        n_candidates=300,
        exclusion_radius=0.02,
        train=dict(max_steps=100, lr=5e-3, batch_size=64, patience=40),
        generator=torch.Generator().manual_seed(0),
        progress=False,
        callback=lambda r, rr: int(rr.theta.shape[0]),
    )
    assert res.theta.shape == (40, 1) and res.x.shape == (40, 1)
    assert res.snapshots == [30, 40] and res.round.tolist() == [0] * 30 + [1] * 10
    # the candidate set of round 1 is kept, and the acquired points were chosen from it
    assert len(res.candidates) == 1 and res.candidates[0].shape == (300, 1)
    assert all(bool((res.candidates[0] == t).all(1).any()) for t in res.acquired(1))
    assert len(res.fits) == 2 and all(np.isfinite(f.best_val_nll).all() for f in res.fits)
    # α_post puts its points near the posterior (mean 0.5, sd 0.32), not across the prior box
    assert (res.acquired(1) - 0.5).abs().max().item() < 1.2
    axes, dens = grid_posterior(lambda t: res.ensemble.log_posterior(t, x_o, prior), [-2.0], [2.0], points=400)
    exact = gaussian_1d_posterior_log_prob(torch.as_tensor(axes[0])[:, None]).exp().numpy()
    tv = 0.5 * np.abs(dens - exact).sum() * (axes[0][1] - axes[0][0])
    assert tv < 0.15


def test_fit_keeps_standardisation_and_start_does_not_modify_its_source():
    prior = gaussian_1d_prior()
    ens = make_flow_ensemble(1, 1, n_members=2, transforms=1, hidden=(8,), seed=1)
    base = run_active_learning(
        prior,
        gaussian_1d,
        [0.5],
        ensemble=ens,
        n_initial=10,
        n_rounds=0,
        train=dict(max_steps=10, bootstrap=True),
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    shift = base.ensemble.members[0].context_shift.clone()
    state = {k: v.clone() for k, v in base.ensemble.state_dict().items()}
    cont = run_active_learning(
        prior,
        gaussian_1d,
        [0.5],
        start=base,
        acquisition="prior",
        n_rounds=2,
        batch_size=5,
        train=dict(max_steps=10),
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    assert cont.theta.shape == (20, 1) and cont.round.tolist() == [0] * 10 + [1] * 5 + [2] * 5
    assert [c.shape for c in cont.candidates] == [(0, 1), (0, 1)]  # random acquisition scores no candidates
    assert torch.equal(cont.ensemble.members[0].context_shift, shift)  # set once, from round 0
    assert all(torch.equal(v, state[k]) for k, v in base.ensemble.state_dict().items())
    assert base.theta.shape == (10, 1)


# -- the fused (batched) pass over the members ---------------------------------------------------
@pytest.mark.parametrize(
    "theta_dim,x_dim,transforms,hidden", [(2, 2, 2, (32, 32)), (1, 1, 1, (16, 16)), (2, 3, 3, (8,))]
)
def test_fused_members_give_the_members_own_densities_and_training(theta_dim, x_dim, transforms, hidden):
    g = torch.Generator().manual_seed(0)
    theta, x = torch.randn(40, theta_dim, generator=g), torch.randn(40, x_dim, generator=g) * 2 + 1
    kw = dict(n_members=3, transforms=transforms, hidden=hidden, seed=4)
    fused, loop = make_flow_ensemble(theta_dim, x_dim, **kw), make_flow_ensemble(theta_dim, x_dim, **kw)
    loop.fused = False
    assert fused._fused() is not None and loop._fused() is None
    logs = [
        e.fit(theta, x, max_steps=25, batch_size=16, lr=1e-2, patience=10, eval_every=5, seed=3) for e in (fused, loop)
    ]
    assert logs[0].steps == logs[1].steps and logs[0].best_step == logs[1].best_step
    np.testing.assert_allclose(logs[0].best_val_nll, logs[1].best_val_nll, rtol=1e-5, atol=1e-5)
    for a, b in zip(fused.parameters(), loop.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    x_o = x[0]
    per_member = torch.stack([fused._member_log_prob(m, x_o[None].expand(40, -1), theta) for m in range(3)])
    torch.testing.assert_close(fused.member_log_likelihoods(theta, x_o), per_member, rtol=1e-5, atol=1e-5)


def test_fused_adam_is_torch_adam():
    from neuroinverse.inference.fused_flows import ForeachAdam

    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(3, 4, generator=g).requires_grad_(True), torch.randn(5, generator=g).requires_grad_(True)]
    ref = [p.detach().clone().requires_grad_(True) for p in ours]
    opt_ours, opt_ref = ForeachAdam(ours, lr=0.01), torch.optim.Adam(ref, lr=0.01, foreach=True)
    for _ in range(20):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for p, q, gr in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = gr.clone(), gr.clone()
        opt_ours.step()
        opt_ref.step()
    for p, q in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_members_that_cannot_be_fused_fall_back_to_the_loop():
    nsf = make_flow_ensemble(1, 1, n_members=2, kind="nsf", transforms=1, hidden=(8,))
    assert nsf._fused() is None
    assert _ens(GaussianMember(1.0, 0.0, 0.5), GaussianMember(0.9, 0.1, 0.4))._fused() is None
    mixed = EmulatorEnsemble(
        [
            make_flow_ensemble(1, 1, n_members=1, hidden=(8,)).members[0],
            make_flow_ensemble(1, 1, n_members=1, hidden=(16,)).members[0],
        ]
    )
    assert mixed._fused() is None  # different architectures
    theta = torch.linspace(-1, 1, 12)[:, None]
    log = nsf.fit(theta, theta + 0.1, max_steps=5)
    assert log.steps == 5 and nsf.member_log_likelihoods(theta, [0.2]).shape == (2, 12)


# -- bad input -----------------------------------------------------------------------------------
def _loop(**kw):
    args = dict(
        ensemble=make_flow_ensemble(1, 1, n_members=2, transforms=1, hidden=(8,)),
        n_initial=5,
        n_rounds=0,
        train=dict(max_steps=1),
        progress=False,
    )
    args.update(kw)
    prior = args.pop("prior", gaussian_1d_prior())
    sim = args.pop("simulator", gaussian_1d)
    x_o = args.pop("x_o", [0.5])
    return run_active_learning(prior, sim, x_o, **args)


class _BadPrior(BoxUniform):
    def sample(self, n, *, generator=None):
        return torch.zeros(n, 2)


class _NaNPrior(BoxUniform):
    def sample(self, n, *, generator=None):
        return torch.full((n, 1), math.nan)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(prior=_BadPrior([-2.0], [2.0])), "prior.sample"),
        (dict(prior=_NaNPrior([-2.0], [2.0])), "NaN"),
        (dict(simulator=lambda t, generator=None: torch.zeros(t.shape[0] + 1, 1)), "simulator"),
        (dict(simulator=lambda t, generator=None: torch.full((t.shape[0], 1), math.nan)), "simulator returned NaN"),
        (dict(n_initial=0), "n_initial"),
        (dict(n_rounds=1, batch_size=0), "batch_size"),
        (dict(n_rounds=-1), "n_rounds"),
        (dict(x_o=[0.5, 0.1]), "x_o"),
        (dict(x_o=[math.nan]), "x_o"),
        (dict(acquisition="entropy"), "acquisition"),
        (dict(prior=BoxUniform([-1.0, -1.0], [1.0, 1.0])), "prior has dimension"),
    ],
)
def test_active_learning_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        _loop(**kw)


def test_ensemble_rejects_bad_input():
    ens = _ens(GaussianMember(1.0, 0.0, 1.0), GaussianMember(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="theta contains NaN"):
        ens.member_log_likelihoods(torch.tensor([[math.nan]]), [0.0])
    with pytest.raises(ValueError, match="theta must have shape"):
        ens.log_likelihood(torch.zeros(3, 2), [0.0])
    with pytest.raises(ValueError, match="x_o must have 1 entries"):
        ens.log_likelihood(torch.zeros(3, 1), [0.0, 1.0])
    with pytest.raises(ValueError, match="kind"):
        ens.acquisition("entropy", torch.zeros(3, 1), [0.0], gaussian_1d_prior())
    with pytest.raises(ValueError, match="at least 2 members"):
        _ens(GaussianMember(1.0, 0.0, 1.0)).acquisition("post", torch.zeros(3, 1), [0.0], gaussian_1d_prior())
    with pytest.raises(ValueError, match="same number of rows"):
        ens.fit(torch.zeros(5, 1), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="x contains NaN"):
        ens.fit(torch.zeros(5, 1), torch.full((5, 1), math.nan))
    with pytest.raises(ValueError, match="members"):
        EmulatorEnsemble([])
    with pytest.raises(ValueError, match="share"):
        EmulatorEnsemble([GaussianMember(1.0, 0.0, 1.0), GaussianMember(1.0, 0.0, 1.0, dim=2)])
