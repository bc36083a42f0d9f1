"""Segmentation metrics on hand-computed tiny cases, and against scikit-image / scikit-learn."""

import math

import numpy as np
import pytest
from skimage.metrics import adapted_rand_error as sk_arand
from skimage.metrics import variation_of_information as sk_voi
from sklearn.metrics import rand_score

from neuroinverse.metrics import (
    adapted_rand_error,
    boundary_ignore_mask,
    contingency,
    cremi_score,
    mask_boundaries,
    rand_error,
    rand_pair_counts,
    segmentation_scores,
    variation_of_information,
)

ONE = np.array([[1, 1], [1, 1]])
HALVES = np.array([[1, 1], [2, 2]])


def test_identical_segmentations_score_zero():
    gt = np.array([[1, 1, 2], [3, 3, 2]])
    seg = gt * 7 + 1  # other ids, same partition
    s = segmentation_scores(gt, seg)
    assert (s.rand_error, s.voi_split, s.voi_merge, s.arand, s.cremi) == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_pure_split_hand_computed():
    # one GT object of 4 voxels cut in two halves: 6 pairs, 4 of them split
    assert rand_pair_counts(ONE, HALVES) == {"pairs": 6, "split": 4, "merge": 0}
    assert rand_error(ONE, HALVES) == pytest.approx(4 / 6, rel=1e-12)
    split, merge = variation_of_information(ONE, HALVES)
    assert split == pytest.approx(1.0) and merge == 0.0
    # Σn_ab² = 8, Σ n_a² = 16, Σ n_b² = 8: 1 − 2·8/24
    assert adapted_rand_error(ONE, HALVES) == pytest.approx(1 / 3)
    assert cremi_score(ONE, HALVES) == pytest.approx(math.sqrt(1 / 3))


def test_pure_merge_is_the_mirror_case():
    assert rand_pair_counts(HALVES, ONE) == {"pairs": 6, "split": 0, "merge": 4}
    split, merge = variation_of_information(HALVES, ONE)
    assert split == 0.0 and merge == pytest.approx(1.0)
    assert rand_error(HALVES, ONE) == pytest.approx(4 / 6, rel=1e-12)


def test_gt_background_is_ignored_and_seg_zero_is_a_segment():
    gt = np.array([0, 0, 1, 1])
    assert segmentation_scores(gt, np.array([5, 6, 7, 7])).voi == 0.0
    # seg label 0 is an ordinary segment: two GT objects both labelled 0 are a merge
    assert rand_pair_counts(np.array([1, 2]), np.array([0, 0]))["merge"] == 1
    t = contingency(gt, np.array([5, 6, 7, 7]))
    assert t.total == 2 and t.n_ab.tolist() == [2]


def test_against_scikit_image_and_sklearn():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, size=(6, 7, 8))
    seg = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 9, size=gt.shape))
    split, merge = variation_of_information(gt, seg)
    assert np.allclose([split, merge], sk_voi(gt, seg, ignore_labels=[0]), atol=1e-12)
    assert adapted_rand_error(gt, seg, self_pairs=False) == pytest.approx(sk_arand(gt, seg)[0], abs=1e-12)
    # with self-pairs the CREMI value is a bit smaller on a small volume
    assert adapted_rand_error(gt, seg) < adapted_rand_error(gt, seg, self_pairs=False)
    keep = gt.ravel() != 0
    assert rand_error(gt, seg) == pytest.approx(1 - rand_score(gt.ravel()[keep], seg.ravel()[keep]), abs=1e-12)
    s = segmentation_scores(gt, seg)
    assert s.cremi == pytest.approx(math.sqrt((split + merge) * s.arand))


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        rand_error(np.ones((3, 3), int), np.ones((3, 4), int))
    with pytest.raises(ValueError, match="integer"):
        variation_of_information(np.ones(4), np.ones(4, int))
    with pytest.raises(ValueError, match="no labelled voxel"):
        adapted_rand_error(np.zeros(4, int), np.ones(4, int))
    with pytest.raises(ValueError, match="at least 2"):
        rand_error(np.array([0, 1]), np.array([1, 1]))


def test_score_sweep_stacks_the_scores():
    from neuroinverse.metrics.segmentation import score_sweep

    out = score_sweep(ONE, [ONE, HALVES])
    assert out["voi_split"].tolist() == [0.0, pytest.approx(1.0)]
    assert out["voi"] == pytest.approx(out["voi_split"] + out["voi_merge"])
    with pytest.raises(ValueError, match="at least one"):
        score_sweep(ONE, [])


@pytest.mark.parametrize("scale", [1, 10**12])
def test_contingency_matches_unique_construction(scale):
    # the lookup-table / counting-sort table equals the np.unique construction, entry for entry
    rng = np.random.default_rng(scale % 97)
    gt = rng.integers(0, 6, (9, 13))
    seg = rng.integers(0, 40, (9, 13)) * scale
    t = contingency(gt, seg)
    g, s = gt.ravel()[gt.ravel() != 0], seg.ravel()[gt.ravel() != 0]
    _, gi = np.unique(g, return_inverse=True)
    _, si = np.unique(s, return_inverse=True)
    nb = si.max() + 1
    keys, n_ab = np.unique(gi * nb + si, return_counts=True)
    np.testing.assert_array_equal(t.n_ab, n_ab)
    np.testing.assert_array_equal(t.a_index, keys // nb)
    np.testing.assert_array_equal(t.b_index, keys % nb)
    np.testing.assert_array_equal(t.n_a, np.bincount(gi))
    np.testing.assert_array_equal(t.n_b, np.bincount(si))
    assert t.total == g.size


def test_boundary_mask_one_voxel_each_side_of_an_interface():
    gt = np.array([[1, 1, 1, 2, 2, 2]] * 3)
    mask = boundary_ignore_mask(gt, distance=1)
    assert mask.tolist() == [[False, False, True, True, False, False]] * 3
    assert mask_boundaries(gt).tolist() == [[1, 1, 0, 0, 2, 2]] * 3
    assert not boundary_ignore_mask(np.ones((4, 4), dtype=int)).any()
    assert not boundary_ignore_mask(gt, distance=0).any()


def test_boundary_mask_is_xy_only_by_default_and_ignores_z_changes():
    gt = np.stack([np.ones((3, 3), dtype=int), 2 * np.ones((3, 3), dtype=int)])
    assert not boundary_ignore_mask(gt).any()
    assert boundary_ignore_mask(gt, only_xy=False).all()


def test_boundary_mask_distance_two_reaches_two_voxels():
    gt = np.array([[1] * 5 + [2] * 5])
    assert np.flatnonzero(boundary_ignore_mask(gt, distance=2)[0]).tolist() == [3, 4, 5, 6]


def test_masked_scores_forgive_a_one_voxel_boundary_shift():
    gt = np.array([[1, 1, 1, 2, 2, 2]] * 4)
    shifted = np.array([[1, 1, 2, 2, 2, 2]] * 4)
    assert variation_of_information(gt, shifted) != (0.0, 0.0)
    assert variation_of_information(mask_boundaries(gt), shifted) == (0.0, 0.0)


def test_boundary_mask_rejects_bad_input():
    with pytest.raises(ValueError):
        boundary_ignore_mask(np.ones(4, dtype=int))
    with pytest.raises(ValueError):
        boundary_ignore_mask(np.ones((3, 3), dtype=int), distance=-1)
