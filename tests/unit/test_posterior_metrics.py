"""Tests of the C2ST metric."""

import numpy as np
import pytest
import torch

from neuroinverse.metrics import c2st, c2st_async


def test_c2st_is_near_half_on_identical_distributions():
    g = np.random.default_rng(0)
    a, b = g.normal(size=(400, 2)), g.normal(size=(400, 2))
    assert abs(c2st(a, b, folds=3, max_iter=300) - 0.5) < 0.06


def test_c2st_is_near_one_on_disjoint_distributions():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(400, 3, generator=g)
    b = torch.randn(400, 3, generator=g) + 10.0
    assert c2st(a, b, folds=3, max_iter=300) > 0.98


def test_c2st_grows_with_the_shift_and_is_deterministic():
    g = np.random.default_rng(2)
    a, b = g.normal(size=(300, 2)), g.normal(size=(300, 2))
    small, large = c2st(a, b + 0.5, folds=3, max_iter=300), c2st(a, b + 2.0, folds=3, max_iter=300)
    assert 0.55 < small < large
    assert c2st(a, b + 0.5, folds=3, max_iter=300) == small


def test_c2st_is_invariant_to_a_common_affine_rescaling():
    g = np.random.default_rng(3)
    a, b = g.normal(size=(300, 2)), g.normal(size=(300, 2)) + 0.7
    # z-scoring by the first sample's moments makes units irrelevant
    assert c2st(a, b, folds=3, max_iter=300) == pytest.approx(
        c2st(100 * a + 5, 100 * b + 5, folds=3, max_iter=300), abs=1e-9
    )


def test_c2st_bad_inputs():
    a = np.zeros((50, 2))
    with pytest.raises(ValueError, match="dimension"):
        c2st(a, np.zeros((50, 3)))
    with pytest.raises(ValueError, match="q_samples"):
        c2st(a, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="p_samples"):
        c2st(np.full((50, 2), np.nan), a)
    with pytest.raises(ValueError, match="folds"):
        c2st(a, a, folds=1)


def test_c2st_does_not_depend_on_parallel_folds():
    g = np.random.default_rng(4)
    a, b = g.normal(size=(60, 2)), g.normal(size=(60, 2)) + 0.4
    assert c2st(a, b, folds=2, n_jobs=2) == c2st(a, b, folds=2, n_jobs=1)
    with pytest.raises(ValueError, match="n_jobs"):
        c2st(a, b, n_jobs=0)


def test_c2st_async_gives_the_foreground_number():
    rng = np.random.default_rng(3)
    p, q = rng.normal(size=(60, 2)), rng.normal(0.7, 1.0, size=(60, 2))
    job = c2st_async(p, torch.as_tensor(q), folds=3, seed=4)
    assert job.result(timeout=120) == c2st(p, q, folds=3, seed=4)
    with pytest.raises(ValueError, match="q_samples"):
        c2st_async(p, q[:, :1] * np.nan, folds=3)
    with pytest.raises(ValueError, match="workers"):
        c2st_async(p, q, workers=0)


def _gauss_grid(mu=0.0, sd=1.0, n=401, lim=8.0):
    from neuroinverse.metrics.posterior import GridDensity

    a = np.linspace(-lim, lim, n)
    t1, t2 = np.meshgrid(a, a, indexing="ij")
    return GridDensity((a, a), np.exp(-0.5 * (((t1 - mu) / sd) ** 2 + ((t2 - mu) / sd) ** 2)))


def test_grid_kl_matches_the_gaussian_closed_form():
    p, q = _gauss_grid(0.0, 1.0), _gauss_grid(0.5, 1.5)
    # KL(N(0,1) ‖ N(0.5, 1.5²)) per dimension: log(1.5) + (1 + 0.25) / (2 · 2.25) − 1/2
    exact = 2 * (np.log(1.5) + 1.25 / 4.5 - 0.5)
    assert p.kl_to(q) == pytest.approx(exact, rel=2e-3)
    assert p.kl_to(p) == 0.0
    assert p.density.sum() * p.cell_volume == pytest.approx(1.0)


def test_kl_from_samples_and_hpd_mass_on_gaussians():
    from neuroinverse.metrics.posterior import hpd_mass, kl_from_samples

    p = _gauss_grid(0.0, 1.0)
    x = np.random.default_rng(0).normal(size=(20000, 2))
    log_q = -0.5 * (((x - 0.5) / 1.5) ** 2).sum(1) - 2 * np.log(1.5) - np.log(2 * np.pi)
    kl, se = kl_from_samples(p.log_prob(x), log_q)
    assert kl == pytest.approx(2 * (np.log(1.5) + 1.25 / 4.5 - 0.5), abs=4 * se + 0.01)
    assert hpd_mass(x, p) == pytest.approx(0.95, abs=0.01)  # the reference's own samples
    assert hpd_mass(x * 2.0, p) < 0.6  # a widened posterior falls outside
    # an HPD region of mass 0.95 of a 2-D standard normal is the disc of radius sqrt(-2 log 0.05)
    level = p.hpd_level(0.95)
    assert level == pytest.approx(np.exp(-0.5 * (-2 * np.log(0.05))) / (2 * np.pi), rel=0.03)
    assert kl_from_samples([0.0, 0.0], [-np.inf, 0.0])[0] == np.inf


def test_grid_density_rejects_bad_input():
    from neuroinverse.metrics.posterior import GridDensity, kl_from_samples

    a = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="does not match"):
        GridDensity((a, a), np.ones((5, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        GridDensity((a, a), -np.ones((5, 5)))
    with pytest.raises(ValueError, match="equally spaced"):
        GridDensity((np.array([0, 1, 3.0]),), np.ones(3))
    with pytest.raises(ValueError, match="mass"):
        GridDensity((a,), np.ones(5)).hpd_level(1.0)
    with pytest.raises(ValueError, match="same length"):
        kl_from_samples([0.0, 1.0], [0.0])


def test_calibrated_c2st_sees_a_shift_and_reports_blindness():
    from neuroinverse.metrics.posterior import c2st_calibrated

    rng = np.random.default_rng(1)
    ref, ref2 = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    cal = c2st_calibrated(ref, ref2, ref2 + 2.0, jitter=0.01, folds=3, generator=torch.Generator().manual_seed(0))
    assert cal.value > 0.9 and abs(cal.floor - 0.5) < 0.1
    assert cal.blind  # 0.01 jitter on unit-scale samples is invisible
    assert "BLIND" in str(cal) and "floor" in str(cal)
    cal2 = c2st_calibrated(ref, ref2, ref2, jitter=1.0, folds=3, generator=torch.Generator().manual_seed(0))
    assert not cal2.blind and cal2.positive > cal2.floor + 0.05
    with pytest.raises(ValueError, match="same shape"):
        c2st_calibrated(ref, ref2[:10], ref2)
