"""Tests of SNPE-B: proposals, importance weights, failure handling, and a conjugate posterior."""

import functools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from neuroinverse.inference import (
    SNPEB,
    FailureClassifier,
    SNPEProposal,
    StudentTMixture,
    calibration_kernel,
    effective_sample_size,
    importance_weights,
    weighted_and_unweighted,
)
from neuroinverse.models import MDN
from neuroinverse.simulators import (
    BoxUniform,
    GaussianPrior,
    gaussian_linear,
    gaussian_linear_posterior,
    gaussian_linear_prior,
)

pytestmark = pytest.mark.usefixtures("one_thread")


TOY_SIM = functools.partial(gaussian_linear, noise_var=1.0)


def test_student_t_mixture_log_prob_matches_scipy():
    w = torch.tensor([0.3, 0.7])
    m = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    S = torch.tensor([[[1.0, 0.3], [0.3, 0.5]], [[2.0, -0.4], [-0.4, 1.0]]])
    mix = StudentTMixture(w, m, S, dof=3)
    th = torch.tensor([[0.5, 0.5], [3.0, -2.0], [10.0, 10.0]])
    ref = np.log(
        sum(float(w[k]) * stats.multivariate_t(m[k].numpy(), S[k].numpy(), df=3).pdf(th.numpy()) for k in range(2))
    )
    assert np.allclose(mix.log_prob(th).numpy(), ref, atol=1e-6)
    gauss = StudentTMixture(w, m, S, dof=None)
    ref_g = np.log(
        sum(float(w[k]) * stats.multivariate_normal(m[k].numpy(), S[k].numpy()).pdf(th.numpy()) for k in range(2))
    )
    assert np.allclose(gauss.log_prob(th).numpy(), ref_g, atol=1e-6)


def test_student_t_sampling_has_the_right_spread():
    mix = StudentTMixture(torch.ones(1), torch.tensor([[1.0]]), torch.tensor([[[4.0]]]), dof=5)
    s = mix.sample(100000, generator=torch.Generator().manual_seed(0))
    # var of t_5 with scale² 4 = 4 · 5/3
    assert s.mean().item() == pytest.approx(1.0, abs=0.03)
    assert s.var().item() == pytest.approx(4 * 5 / 3, rel=0.05)


def test_importance_weights_equal_prior_over_proposal():
    prior = GaussianPrior([0.0], [2.0])
    mix = StudentTMixture(torch.ones(1), torch.tensor([[1.0]]), torch.tensor([[[0.25]]]), dof=3)
    theta = torch.tensor([[0.0], [1.0], [2.5], [-1.0]])
    prop = SNPEProposal(prior, mix)
    w, ess = importance_weights(theta, prior, prop)
    p = stats.norm(0, 2).pdf(theta.numpy()[:, 0])
    pt = stats.t(3, loc=1.0, scale=0.5).pdf(theta.numpy()[:, 0])
    expected = p / pt
    expected = expected / expected.mean()
    assert np.allclose(w.numpy(), expected, rtol=1e-5)
    assert ess == pytest.approx(expected.sum() ** 2 / (expected**2).sum(), rel=1e-5)
    # with a prior mix-in α: w = p / (α p + (1 − α) p̃)
    prop_a = SNPEProposal(prior, mix, prior_mixin=0.2)
    w_a, _ = importance_weights(theta, prior, prop_a)
    e_a = p / (0.2 * p + 0.8 * pt)
    assert np.allclose(w_a.numpy(), e_a / e_a.mean(), rtol=1e-5)
    # the prior as proposal: all weights 1
    w1, ess1 = importance_weights(theta, prior, SNPEProposal(prior))
    assert torch.equal(w1, torch.ones(4)) and ess1 == pytest.approx(4.0)


def test_proposal_samples_stay_in_the_prior_box_and_respect_the_classifier():
    prior = BoxUniform([0.0, 0.0], [1.0, 1.0])
    mix = StudentTMixture(torch.ones(1), torch.tensor([[0.9, 0.5]]), torch.eye(2)[None] * 0.1, dof=3)
    clf = FailureClassifier(shift=torch.zeros(2), scale=torch.ones(2))
    th = torch.rand(400, 2, generator=torch.Generator().manual_seed(0))
    clf.fit(th, th[:, 0] > 0.6)
    prop = SNPEProposal(prior, mix, classifier=clf)
    s = prop.sample(500, generator=torch.Generator().manual_seed(1))
    assert s.shape == (500, 2) and bool(prior.contains(s).all())
    assert (s[:, 0] < 0.7).all()  # predicted-bad region rejected
    assert prop.n_rejected_classifier > 0 and prop.n_rejected_support > 0


def test_calibration_kernel_and_ess():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 4.0], [math.nan, 0.5]])
    k = calibration_kernel(x, torch.zeros(2), kind="gaussian", bandwidth=1.0)
    assert np.allclose(k.numpy(), np.exp(-0.5 * np.array([0.0, 1.0, 25.0, 0.25])), atol=1e-6)
    ku = calibration_kernel(x, torch.zeros(2), kind="uniform", bandwidth=2.0)
    assert ku.tolist() == [1.0, 1.0, 0.0, 1.0]
    assert effective_sample_size(torch.tensor([1.0, 1.0, 1.0, 1.0])) == pytest.approx(4.0)
    assert effective_sample_size(torch.tensor([4.0, 0.0, 0.0, 0.0])) == pytest.approx(1.0)


def _toy(bayesian=False, **kw):
    torch.manual_seed(0)
    prior = gaussian_linear_prior(1, prior_var=4.0)
    q = MDN(1, 1, n_components=1, hidden=(16,), bayesian=bayesian)
    settings = dict(epochs=30, batch_size=100, lr=3e-3, progress=False)
    settings.update(kw)
    return prior, q, SNPEB(prior, TOY_SIM, torch.tensor([1.5]), q, **settings)


def test_snpe_b_recovers_the_conjugate_posterior():
    prior, q, run = _toy()
    run.run(2, 500, generator=torch.Generator().manual_seed(0))
    mean, cov = q.moments(torch.tensor([1.5]))
    m_true, c_true = gaussian_linear_posterior(torch.tensor([1.5]), prior_var=4.0, noise_var=1.0)
    sd = c_true[0, 0].sqrt().item()
    assert abs(mean.item() - m_true.item()) < 0.25 * sd
    assert 0.8 < math.sqrt(cov.item()) / sd < 1.25
    assert run.rounds[1].ess < 500  # round 2 was importance weighted
    assert run.rounds[0].ess == pytest.approx(500)
    s = run.posterior_samples(2000, generator=torch.Generator().manual_seed(1))
    assert s.shape == (2000, 1)


def test_weighted_and_unweighted_branch_from_one_round():
    prior = gaussian_linear_prior(1, prior_var=4.0)
    torch.manual_seed(0)
    w, u = weighted_and_unweighted(
        prior,
        TOY_SIM,
        torch.tensor([1.5]),
        MDN(1, 1, n_components=1, hidden=(8,), bayesian=True),
        n_simulations=200,
        generator=torch.Generator().manual_seed(0),
        epochs=2,
        batch_size=100,
        progress=False,
    )
    assert torch.equal(w.rounds[0].theta, u.rounds[0].theta)
    assert w.density is not u.density
    assert torch.equal(u.rounds[1].weights, torch.ones(200))
    assert not torch.allclose(w.rounds[1].weights, torch.ones(200))


def test_failures_are_resampled_counted_and_predicted():
    prior = BoxUniform([-1.0], [1.0])

    def sim(theta, generator=None):
        x = theta + 0.1 * torch.randn(theta.shape, generator=generator)
        x[theta[:, 0] > 0.5] = math.nan  # the simulator fails for θ > 0.5
        return x

    torch.manual_seed(0)
    run = SNPEB(
        prior,
        sim,
        torch.tensor([0.0]),
        MDN(1, 1, n_components=1, hidden=(8,), bayesian=False),
        failures="classifier",
        epochs=3,
        batch_size=50,
        progress=False,
    )
    rec = run.run_round(200, generator=torch.Generator().manual_seed(0))
    assert rec.theta.shape == (200, 1) and torch.isfinite(rec.x).all()
    assert rec.n_simulated == 200 + rec.n_bad and rec.n_bad > 20
    assert 0.1 < rec.frac_bad < 0.4
    assert (rec.bad_theta > 0.5).all()
    assert run.classifier is not None and run.classifier.fitted
    p_bad = run.classifier.prob_bad(torch.tensor([[-0.5], [0.9]]))
    assert p_bad[0] < 0.5 < p_bad[1]


def test_missing_features_allowed_only_with_imputation():
    prior = BoxUniform([-1.0], [1.0])

    def sim(theta, generator=None):
        x = torch.cat([theta, theta**2], 1)
        x[theta[:, 0] < 0, 1] = math.nan
        return x, torch.zeros(theta.shape[0], dtype=torch.bool)

    torch.manual_seed(0)
    q = MDN(1, 2, n_components=1, hidden=(8,), impute=True)
    run = SNPEB(prior, sim, torch.tensor([0.3, 0.09]), q, epochs=2, progress=False)
    rec = run.run_round(100, generator=torch.Generator().manual_seed(0))
    assert torch.isnan(rec.x).any() and rec.n_bad == 0
    q2 = MDN(1, 2, n_components=1, hidden=(8,), impute=False)
    run2 = SNPEB(prior, sim, torch.tensor([0.3, 0.09]), q2, epochs=2, progress=False, max_attempts=20)
    rec2 = run2.run_round(20, generator=torch.Generator().manual_seed(0))
    assert not torch.isnan(rec2.x).any() and rec2.n_bad > 0  # NaN rows are failures without imputation


# -- bad input ---------------------------------------------------------------------------------
def _q():
    return MDN(1, 1, n_components=1, hidden=(4,), bayesian=False)


def test_mismatched_observation_raises():
    with pytest.raises(ValueError, match="x_o"):
        SNPEB(gaussian_linear_prior(1), TOY_SIM, torch.zeros(3), _q())
    with pytest.raises(ValueError, match="x_o"):
        SNPEB(gaussian_linear_prior(1), TOY_SIM, torch.tensor([math.nan]), _q())
    with pytest.raises(ValueError, match="parameters"):
        SNPEB(gaussian_linear_prior(2), TOY_SIM, torch.zeros(1), _q())


def test_empty_budget_raises():
    run = SNPEB(gaussian_linear_prior(1), TOY_SIM, torch.zeros(1), _q(), progress=False)
    with pytest.raises(ValueError, match="empty budget"):
        run.run_round(0)
    with pytest.raises(ValueError, match="n_rounds"):
        run.run(0, 10)


def test_simulator_returning_wrong_shape_raises():
    run = SNPEB(
        gaussian_linear_prior(1),
        lambda th, generator=None: torch.zeros(th.shape[0], 2),
        torch.zeros(1),
        _q(),
        progress=False,
    )
    with pytest.raises(ValueError, match="simulator"):
        run.run_round(10)
    run = SNPEB(
        gaussian_linear_prior(1), lambda th, generator=None: torch.zeros(3, 1), torch.zeros(1), _q(), progress=False
    )
    with pytest.raises(ValueError, match="simulator"):
        run.run_round(10)


def test_prior_returning_wrong_shape_or_nan_raises():
    class BadShape(BoxUniform):
        def sample(self, n, *, generator=None):
            return torch.zeros(n)

    class NaNPrior(BoxUniform):
        def sample(self, n, *, generator=None):
            return torch.full((n, 1), math.nan)

    for prior, match in ((BadShape([0.0], [1.0]), "prior.sample"), (NaNPrior([0.0], [1.0]), "NaN")):
        run = SNPEB(prior, TOY_SIM, torch.zeros(1), _q(), progress=False)
        with pytest.raises(ValueError, match=match):
            run.run_round(10)


def test_nan_parameters_in_weights_raise():
    prior = gaussian_linear_prior(1)
    with pytest.raises(ValueError, match="NaN"):
        importance_weights(torch.tensor([[math.nan]]), prior, SNPEProposal(prior))


def test_bad_settings_raise():
    prior = gaussian_linear_prior(1)
    for kw, match in (
        (dict(failures="ignore"), "failures"),
        (dict(kernel="box"), "kernel"),
        (dict(prior_mixin=1.5), "prior_mixin"),
        (dict(epochs=0), "epochs"),
    ):
        with pytest.raises(ValueError, match=match):
            SNPEB(prior, TOY_SIM, torch.zeros(1), _q(), **kw)
    with pytest.raises(ValueError, match="dof"):
        StudentTMixture(torch.ones(1), torch.zeros(1, 1), torch.ones(1, 1, 1), dof=2.5)
    with pytest.raises(ValueError, match="positive definite"):
        StudentTMixture(torch.ones(1), torch.zeros(1, 2), -torch.eye(2)[None])


def _grid_density(log_p, grid):
    p = torch.exp(log_p - log_p.max())
    return p / (p.sum() * (grid[1, 0] - grid[0, 0]))


@pytest.mark.parametrize("gaussian_prior", [True, False])
def test_snpe_a_correction_equals_q_times_prior_over_proposal_on_a_grid(gaussian_prior):
    """Closed form against the pointwise product q·p/p̃, normalised numerically (1-D, K = 2)."""
    from neuroinverse.inference import StudentTMixture, snpe_a_correction

    q = StudentTMixture(
        torch.tensor([0.3, 0.7]), torch.tensor([[-1.0], [0.8]]), torch.tensor([[[0.30]], [[0.20]]]), dof=None
    )
    m0, S0 = torch.tensor([0.2]), torch.tensor([[1.5]])
    prior = dict(prior_mean=torch.tensor([0.5]), prior_cov=torch.tensor([[4.0]])) if gaussian_prior else {}
    post = snpe_a_correction(q, m0, S0, **prior)
    grid = torch.linspace(-6, 6, 6001, dtype=torch.float64)[:, None]
    log_target = q.log_prob(grid) - StudentTMixture(torch.ones(1), m0[None], S0[None], dof=None).log_prob(grid)
    if gaussian_prior:
        log_target = log_target + StudentTMixture(
            torch.ones(1), prior["prior_mean"][None], prior["prior_cov"][None], dof=None
        ).log_prob(grid)
    expected = _grid_density(log_target, grid)
    got = post.log_prob(grid).exp()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    assert abs(float(got.sum() * (grid[1, 0] - grid[0, 0])) - 1.0) < 1e-6


def test_snpe_a_correction_recovers_the_conjugate_posterior_in_2d():
    """q = p(θ|x) p̃/p exactly for Gaussians: the correction gives back p(θ|x)."""
    from neuroinverse.inference import StudentTMixture, snpe_a_correction

    Sp, mp = torch.diag(torch.tensor([4.0, 2.0])).double(), torch.tensor([0.0, 1.0]).double()
    Spost = torch.tensor([[0.5, 0.2], [0.2, 0.4]]).double()
    mpost = torch.tensor([1.0, -0.5]).double()
    S0, m0 = torch.tensor([[1.0, 0.3], [0.3, 1.2]]).double(), torch.tensor([0.8, 0.0]).double()
    Pq = torch.linalg.inv(Spost) + torch.linalg.inv(S0) - torch.linalg.inv(Sp)
    Sq = torch.linalg.inv(Pq)
    mq = Sq @ (torch.linalg.solve(Spost, mpost) + torch.linalg.solve(S0, m0) - torch.linalg.solve(Sp, mp))
    q = StudentTMixture(torch.ones(1), mq[None], Sq[None], dof=None)
    post = snpe_a_correction(q, m0, S0, prior_mean=mp, prior_cov=Sp)
    torch.testing.assert_close(post.means[0], mpost)
    torch.testing.assert_close(post.scales[0], Spost)


def test_snpe_a_correction_fails_clearly():
    from neuroinverse.inference import StudentTMixture, snpe_a_correction

    q = StudentTMixture(torch.ones(1), torch.zeros(1, 1), torch.tensor([[[1.0]]]), dof=None)
    with pytest.raises(ValueError, match="not positive definite"):
        snpe_a_correction(q, torch.zeros(1), torch.tensor([[0.5]]))  # proposal narrower than q
    with pytest.raises(ValueError, match="Gaussian mixture"):
        snpe_a_correction(
            StudentTMixture(torch.ones(1), torch.zeros(1, 1), torch.tensor([[[1.0]]])), torch.zeros(1), torch.eye(1)
        )
    with pytest.raises(ValueError, match="proposal_mean"):
        snpe_a_correction(q, torch.zeros(2), torch.eye(1))
    with pytest.raises(ValueError, match="both prior_mean and prior_cov"):
        snpe_a_correction(q, torch.zeros(1), torch.eye(1), prior_mean=torch.zeros(1))


@pytest.mark.parametrize("alpha", [0.1, 0.3])
def test_defensive_mixture_bounds_the_weights_by_one_over_alpha(alpha):
    # a proposal far narrower than the prior box: without the mix-in a few tail draws carry the round
    prior = BoxUniform([0.0, 0.0], [10.0, 10.0])
    mix = StudentTMixture(torch.ones(1), torch.tensor([[5.0, 5.0]]), torch.eye(2)[None] * 0.01, dof=3)
    gen = torch.Generator().manual_seed(0)
    bare = SNPEProposal(prior, mix, prior_mixin=0.0)
    th0 = bare.sample(2000, generator=gen)
    _, ess0 = importance_weights(th0, prior, bare)
    defensive = SNPEProposal(prior, mix, prior_mixin=alpha)
    th = defensive.sample(2000, generator=gen)
    raw, _ = importance_weights(th, prior, defensive, normalize=False)
    assert float(raw.max()) <= 1 / alpha + 1e-5
    w, ess = importance_weights(th, prior, defensive)
    assert w.mean().item() == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(w, raw / raw.mean(), rtol=1e-4)
    # every draw weighs at most 1/α times the mean raw weight, so ESS ≥ n·α·mean(raw)/max(raw) ≥ n·α·mean(raw)
    assert ess >= 2000 * alpha * float(raw.mean()) - 1e-3
    assert ess > 5 * ess0


def test_continual_learning_keeps_round_two_closer_to_round_one():
    prior = gaussian_linear_prior(1, prior_var=4.0)
    torch.manual_seed(0)
    first = SNPEB(
        prior,
        TOY_SIM,
        torch.tensor([1.5]),
        MDN(1, 1, n_components=1, hidden=(8,), bayesian=True),
        prior_mixin=0.1,
        epochs=20,
        batch_size=100,
        lr=3e-3,
        progress=False,
    )
    gen = torch.Generator().manual_seed(0)
    first.run_round(300, generator=gen)
    before = first.density.posterior_snapshot()["mean"]
    moves = {}
    for cl in (True, False):
        run = first.clone(continual_learning=cl, importance_weighting=False)
        run.run_round(300, generator=torch.Generator().manual_seed(1))
        moves[cl] = float((run.density.posterior_snapshot()["mean"] - before).norm())
        assert run.rounds[1].history.metrics["kl_per_n"][-1] >= 0
    assert moves[True] < moves[False]
