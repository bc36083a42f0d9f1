"""Tests of the C2ST metric."""

import numpy as np
import pytest
import torch

from neuroinverse.metrics.posterior import c2st, c2st_async


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
    assert c2st(a, b, folds=3, max_iter=300) == pytest.approx(c2st(100 * a + 5, 100 * b + 5, folds=3, max_iter=300), abs=1e-9)


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
