"""Tests of the 2-D EM membrane-image generator."""

import numpy as np
import pytest
import torch

from neuroinverse.labels import affinities_from_labels
from neuroinverse.simulators import em_test_set, simulate_em_image, simulate_em_images


def test_shapes_dtypes_and_determinism():
    a = simulate_em_images(3, (48, 40), seed=[7, 2])
    assert a.raw.shape == (3, 48, 40) and a.raw.dtype == np.float32
    assert a.labels.shape == (3, 48, 40) and a.labels.dtype == np.int64
    assert a.affinities.shape == (3, 2, 48, 40) and a.affinities.dtype == np.float32
    assert a.gaps.dtype == bool and len(a) == 3
    b = simulate_em_images(3, (48, 40), seed=[7, 2])
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = simulate_em_images(3, (48, 40), seed=[7, 3])
    assert not np.array_equal(a.labels, c.labels)
    assert a.raw_tensor().shape == (3, 1, 48, 40) and a.affinities_tensor().dtype == torch.float32
    # z-scored images
    np.testing.assert_allclose(a.raw.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(a.raw.std(axis=(1, 2)), 1.0, atol=1e-4)


def test_labels_membrane_and_affinities_consistent():
    im = simulate_em_image((64, 64), seed=3)
    labels, cells = im.labels[0], im.cells[0]
    membrane = labels == 0
    # membrane = pixels with a 4-neighbour in another cell
    diff = np.zeros_like(membrane)
    diff[:, 1:] |= cells[:, 1:] != cells[:, :-1]
    diff[:, :-1] |= cells[:, 1:] != cells[:, :-1]
    diff[1:] |= cells[1:] != cells[:-1]
    diff[:-1] |= cells[1:] != cells[:-1]
    np.testing.assert_array_equal(membrane, diff)
    np.testing.assert_array_equal(labels[~membrane], cells[~membrane])
    np.testing.assert_array_equal(im.affinities[0], affinities_from_labels(labels))
    # no two different labels touch: the membrane separates every pair of cells
    assert np.all((labels[:, 1:] == labels[:, :-1]) | (labels[:, 1:] == 0) | (labels[:, :-1] == 0))


def test_cell_density_matches_the_design():
    ims = simulate_em_images(4, (128, 128), seed=0, density=1 / 150)
    n_cells = [np.unique(c).size for c in ims.cells]
    expected = 128 * 128 / 150
    assert abs(np.mean(n_cells) - expected) < 0.15 * expected


def test_gaps_erase_membrane_contrast():
    kw = dict(noise_std=0.0, psf_sigma=0.0, p_mito=0.0)
    im = simulate_em_image((96, 96), seed=4, p_gap=1.0, **kw)
    gaps, labels, raw = im.gaps[0], im.labels[0], im.raw[0]
    assert gaps.any() and np.all(labels[gaps] == 0)  # GT unchanged: gaps stay boundary
    cyto = raw[labels > 0].max()
    np.testing.assert_allclose(raw[gaps], cyto, rtol=1e-5)  # painted back to cytoplasm
    assert raw[(labels == 0) & ~gaps].max() < cyto
    none = simulate_em_image((96, 96), seed=4, p_gap=0.0, **kw)
    assert not none.gaps.any()


def test_distractors_are_dark_and_inside_cells():
    im = simulate_em_image((96, 96), seed=5, p_mito=1.0, p_gap=0.0, noise_std=0.0, psf_sigma=0.0)
    raw, labels = im.raw[0], im.labels[0]
    levels = np.unique(np.round(raw[labels > 0], 4))
    assert levels.size == 2  # cytoplasm and the distractor intensity
    dark = labels > 0
    dark &= np.isclose(raw, levels[0], atol=1e-4)
    assert dark.sum() > 20


def test_test_set_is_fixed():
    a, b = em_test_set(2, (64, 64)), em_test_set(2, (64, 64))
    np.testing.assert_array_equal(a.raw, b.raw)
    assert a.raw.shape == (2, 64, 64)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        simulate_em_image((4, 48))
    with pytest.raises(ValueError, match="p_gap"):
        simulate_em_image(p_gap=1.5)
    with pytest.raises(ValueError, match="density"):
        simulate_em_image(density=0)
    with pytest.raises(ValueError, match="noise_std"):
        simulate_em_image(noise_std=-0.1)
    with pytest.raises(ValueError, match="n_images"):
        simulate_em_images(0)
    with pytest.raises(ValueError, match="seed"):
        simulate_em_images(2, seed=-1)
