"""The synthetic anisotropic neuropil generator and its training targets."""

import numpy as np
import pytest
import torch

from neuroinverse.simulators import (
    grow_boundary,
    membrane_mask,
    random_training_crop,
    simulate_neuropil,
    training_ground_truth,
)

SMALL = dict(shape=(8, 48, 48), anisotropy=2, n_tubes=12)


@pytest.fixture(scope="module")
def vol():
    return simulate_neuropil(seed=3, **SMALL)


def test_shapes_types_and_dense_labels(vol):
    assert vol.raw.shape == vol.labels.shape == vol.membrane.shape == (8, 48, 48)
    assert vol.raw.dtype == np.float32 and vol.labels.dtype == np.uint64 and vol.membrane.dtype == bool
    assert vol.raw.min() >= -1 and vol.raw.max() <= 1
    assert vol.labels.min() >= 1  # dense: every voxel in a neurite
    assert np.unique(vol.labels).size == vol.meta["n_objects"] > 3


def test_membranes_sit_between_labels(vol):
    # every in-plane label change is membrane, and membrane is a thin fraction of the volume
    assert np.all(vol.membrane[membrane_mask(vol.labels.astype(np.int64), only_xy=True)])
    assert 0.03 < vol.membrane.mean() < 0.4
    assert np.all(vol.membrane[vol.gaps])  # gaps are cut out of membranes
    inside = ~vol.membrane & ~vol.organelles
    visible = vol.membrane & ~vol.gaps
    assert vol.raw[visible].mean() < vol.raw[inside].mean() - 0.3  # dark membranes


def test_anisotropy_shows_in_the_labels(vol):
    lab = vol.labels
    z_change = np.mean(lab[1:] != lab[:-1])
    xy_change = np.mean(lab[:, 1:] != lab[:, :-1])
    assert z_change > 1.5 * xy_change  # sections are a = 2 voxels apart


def test_same_seed_same_volume_and_other_seed_differs():
    a = simulate_neuropil(seed=5, **SMALL)
    b = simulate_neuropil(seed=5, **SMALL)
    c = simulate_neuropil(seed=6, **SMALL)
    assert np.array_equal(a.raw, b.raw) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_missing_sections_and_gap_probability():
    v = simulate_neuropil(seed=1, p_missing_section=1.0, p_gap=0.0, **SMALL)
    assert np.all(v.raw == -1.0) and v.missing_sections.tolist() == list(range(8))
    assert v.meta["n_gapped_pairs"] == 0 and not v.gaps.any()


def test_training_ground_truth(vol):
    gt, aff = training_ground_truth(vol.labels)
    assert np.all(gt[membrane_mask(vol.labels.astype(np.int64), only_xy=True)] == 0)
    assert aff.shape == (3, *gt.shape)
    same = (gt[:, 1:] == gt[:, :-1]) & (gt[:, 1:] > 0)
    assert np.array_equal(aff[1][:, 1:] > 0.5, same)
    g = grow_boundary(np.array([[[1, 1, 2, 2]]]), steps=1)
    assert g.tolist() == [[[1, 0, 0, 2]]]


def test_random_training_crop(vol):
    gt, _ = training_ground_truth(vol.labels)
    gen = torch.Generator().manual_seed(0)
    x, lab, aff, mask = random_training_crop(
        vol.raw,
        grow_boundary(vol.labels.astype(np.int64)),
        input_shape=(6, 30, 30),
        output_shape=(4, 20, 20),
        generator=gen,
    )
    assert x.shape == (6, 30, 30) and lab.shape == (4, 20, 20) and aff.shape == mask.shape == (3, 4, 20, 20)
    assert mask[2, :, :, 0].sum() == 0 and mask[2, :, :, 1:].min() == 1
    # relabelled: ids 1..K, each one connected piece
    from scipy import ndimage

    for i in np.unique(lab[lab > 0]):
        assert ndimage.label(lab == i)[1] == 1


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        simulate_neuropil(shape=(8, 48))
    with pytest.raises(ValueError, match="p_gap"):
        simulate_neuropil(p_gap=1.5, **{k: v for k, v in SMALL.items()})
    with pytest.raises(ValueError, match="anisotropy"):
        simulate_neuropil(shape=(8, 48, 48), anisotropy=0)
    with pytest.raises(ValueError, match="seed"):
        simulate_neuropil(seed=-1, **SMALL)
    with pytest.raises(ValueError, match="one shape"):
        random_training_crop(
            np.zeros((4, 8, 8)),
            np.zeros((4, 8, 9), int),
            input_shape=(2, 4, 4),
            output_shape=(2, 4, 4),
            generator=torch.Generator(),
        )
