"""Tests of the synthetic EM tissue generator and the fluorescence tubule movies."""

import numpy as np
import pytest

from neuroinverse.simulators import em_tissue, em_tissue_batch, tubule_movie, tubule_movies


def test_shapes_ranges_and_types():
    t = em_tissue((64, 96), seed=1)
    assert t.image.shape == (64, 96) and t.image.dtype == np.float32
    assert 0.0 <= t.image.min() and t.image.max() <= 1.0
    assert t.labels.shape == (64, 96) and t.labels.dtype == np.int64
    for m in (t.mitochondria, t.vesicles, t.psd, t.membrane, t.organelles):
        assert m.shape == (64, 96) and m.dtype == bool
    assert t.pixel_nm == 2.0


def test_determinism_per_seed_and_generator():
    a, b = em_tissue((64, 64), seed=5), em_tissue((64, 64), seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, em_tissue((64, 64), seed=6).image)
    g = em_tissue((64, 64), generator=np.random.default_rng(5))
    np.testing.assert_array_equal(g.image, a.image)
    with pytest.raises(ValueError, match="seed or generator"):
        em_tissue((64, 64), seed=1, generator=np.random.default_rng(1))


def test_membranes_separate_cells_and_are_dark():
    t = em_tissue((128, 128), seed=2)
    lab = t.labels
    assert np.all((lab[:, 1:] == lab[:, :-1]) | (lab[:, 1:] == 0) | (lab[:, :-1] == 0))
    assert np.all((lab[1:] == lab[:-1]) | (lab[1:] == 0) | (lab[:-1] == 0))
    assert lab.max() >= 2
    plain = ~t.membrane & ~t.organelles
    assert t.image[t.membrane].mean() < t.image[plain].mean() - 0.2
    # organelles live inside cells
    assert np.all(t.labels[t.vesicles] > 0)


def test_structures_present_at_the_reference_scale():
    ts = [em_tissue((256, 256), seed=s) for s in range(4)]
    assert all(t.mitochondria.any() for t in ts)
    assert sum(t.vesicles.any() for t in ts) >= 3
    n_cells = np.mean([t.labels.max() for t in ts])
    assert 5 <= n_cells <= 25  # about 12 per 256² px at 2 nm/px


def test_pixel_size_and_supersampling():
    fine = em_tissue((256, 256), pixel_nm=2.0, seed=3)
    coarse = em_tissue((64, 64), pixel_nm=8.0, seed=3, supersample=4)
    # the same rng path: the coarse image is the block mean of the fine one
    np.testing.assert_allclose(coarse.image, fine.image.reshape(64, 4, 64, 4).mean(axis=(1, 3)), atol=1e-6)
    lab = coarse.labels
    assert np.all((lab[:, 1:] == lab[:, :-1]) | (lab[:, 1:] == 0) | (lab[:, :-1] == 0))
    thin = em_tissue((128, 128), pixel_nm=8.0, seed=0)  # 1-px membranes still separate cells
    assert thin.membrane.mean() > 0.03


def test_batch_helper():
    imgs, labs = em_tissue_batch(3, (48, 48), seed=4)
    assert imgs.shape == labs.shape == (3, 48, 48) and imgs.dtype == np.float32
    np.testing.assert_array_equal(imgs[1], em_tissue((48, 48), seed=[4, 1]).image)
    with pytest.raises(ValueError, match="n must"):
        em_tissue_batch(0, (48, 48))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape=(8, 64)), "shape"),
        (dict(shape="big"), "shape"),
        (dict(pixel_nm=0.0), "pixel_nm"),
        (dict(membrane_nm=(5.0, 3.0)), "membrane_nm"),
        (dict(supersample=0), "supersample"),
        (dict(grain_std=-1.0), "grain_std"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        em_tissue(**{"shape": (32, 32), **kwargs})


def test_tubule_movies():
    m = tubule_movie(5, (64, 64), seed=0)
    assert m.frames.shape == m.masks.shape == (5, 64, 64) and m.frames.dtype == np.float32
    assert 0.0 <= m.frames.min() and m.frames.max() <= 1.0
    assert m.frames[m.masks].mean() > m.frames[~m.masks].mean() + 0.2
    d1 = np.abs(m.frames[1] - m.frames[0]).mean()
    assert 0 < d1 < 0.1  # objects move a little per frame
    movies = tubule_movies(2, 5, (64, 64), seed=0)
    assert movies.shape == (2, 5, 64, 64)
    np.testing.assert_array_equal(movies[0], tubule_movie(5, (64, 64), seed=[0, 0]).frames)
    with pytest.raises(ValueError, match="n_frames"):
        tubule_movie(0)
    with pytest.raises(ValueError, match="psf_sigma"):
        tubule_movie(3, psf_sigma=0)
