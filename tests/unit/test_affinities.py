"""Tests of the affinity graph, GT affinities, connected components and relabelling."""

import numpy as np
import pytest
import torch

from neuroinverse.labels import (
    NEIGHBOURHOOD_2D,
    NEIGHBOURHOOD_3D,
    affinities_from_labels,
    affinity_graph,
    check_affinities,
    connected_components,
    neighbourhood,
    relabel_connected,
)


def test_neighbourhood_convention():
    assert neighbourhood(2) == NEIGHBOURHOOD_2D == ((0, -1), (-1, 0))
    assert neighbourhood(3) == NEIGHBOURHOOD_3D == ((-1, 0, 0), (0, -1, 0), (0, 0, -1))
    with pytest.raises(ValueError, match="dims"):
        neighbourhood(1)


def test_affinities_from_hand_built_2d_labels():
    labels = np.array([[1, 1, 0], [1, 2, 2], [3, 2, 2]])
    aff = affinities_from_labels(labels)
    assert aff.shape == (2, 3, 3) and aff.dtype == np.float32
    # channel 0: link to the left neighbour (0, -1); column 0 has none
    left = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 1]])
    # channel 1: link to the upper neighbour (-1, 0); row 0 has none
    up = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(aff[0], left)
    np.testing.assert_array_equal(aff[1], up)


def test_affinities_from_hand_built_3d_labels():
    labels = np.zeros((2, 2, 2), dtype=np.int64)
    labels[0] = [[1, 1], [2, 0]]
    labels[1] = [[1, 3], [2, 2]]
    aff = affinities_from_labels(torch.as_tensor(labels))
    assert aff.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(aff[0, 0], 0)  # no z-1 neighbour
    np.testing.assert_array_equal(aff[0, 1], [[1, 0], [1, 0]])
    np.testing.assert_array_equal(aff[1, :, 0], 0)
    np.testing.assert_array_equal(aff[1, 1, 1], [0, 0])  # (1,1,0)=2 vs (1,0,0)=1; (1,1,1)=2 vs 3
    np.testing.assert_array_equal(aff[1, 0, 1], [0, 0])  # 2 vs 1, 0 vs 1
    np.testing.assert_array_equal(aff[2, :, :, 0], 0)
    np.testing.assert_array_equal(aff[2, 0], [[0, 1], [0, 0]])
    np.testing.assert_array_equal(aff[2, 1], [[0, 0], [0, 1]])


def test_affinity_graph_edges_match_offsets():
    u, v, valid = affinity_graph((3, 4))
    assert u.shape == v.shape == valid.shape == (2 * 12,)
    assert valid.sum() == 3 * 3 + 2 * 4  # horizontal + vertical edges
    # channel 0 at (1, 2) (flat 6) links to (1, 1) (flat 5); channel 1 at (1, 2) links to (0, 2)
    assert (u[6], v[6]) == (6, 5)
    assert (u[12 + 6], v[12 + 6]) == (6, 2)
    u3, v3, valid3 = affinity_graph((2, 3, 4))
    assert valid3.sum() == 1 * 3 * 4 + 2 * 2 * 4 + 2 * 3 * 3


def test_connected_components_threshold_and_singletons():
    aff = np.zeros((2, 3, 4))
    aff[0, 0, 1:] = 0.9  # row 0 fully connected left-right
    aff[1, 1, 0] = 0.6  # (1,0) joins (0,0)
    aff[0, 2, 3] = 0.5  # exactly at the threshold: not kept
    seg = connected_components(aff, threshold=0.5)
    expected = np.array([[1, 1, 1, 1], [1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(seg, expected)
    seg2 = connected_components(aff, threshold=0.5, min_size=2)
    np.testing.assert_array_equal(seg2, np.where(expected == 1, 1, 0))
    seg_low = connected_components(aff, threshold=0.4)
    assert seg_low[2, 2] == seg_low[2, 3] != seg_low[1, 3]


def test_components_of_gt_affinities_recover_connected_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 4, size=(6, 5, 7))
    seg = connected_components(affinities_from_labels(labels), threshold=0.5)
    # same component => same label; and relabel_connected is a bijection to seg on labelled voxels
    for s in np.unique(seg):
        assert np.unique(labels[seg == s]).size == 1
    rel = relabel_connected(labels)
    pairs = np.unique(np.stack([rel.ravel(), seg.ravel()]), axis=1)
    assert pairs.shape[1] == np.unique(seg).size == np.unique(rel).size


def test_relabel_connected_splits_pieces_and_drops_singletons():
    labels = np.array([[1, 1, 0, 1], [0, 0, 0, 1], [2, 0, 3, 3]])
    rel = relabel_connected(labels)
    np.testing.assert_array_equal(rel, [[1, 1, 0, 2], [0, 0, 0, 2], [3, 0, 4, 4]])
    rel2 = relabel_connected(labels, min_size=2)
    np.testing.assert_array_equal(rel2, [[1, 1, 0, 2], [0, 0, 0, 2], [0, 0, 3, 3]])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="labels"):
        affinities_from_labels(np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="integer"):
        affinities_from_labels(np.full((3, 3), 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        affinities_from_labels(-np.ones((3, 3), dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        connected_components(np.full((2, 3, 3), 1.5))
    with pytest.raises(ValueError, match="NaN"):
        connected_components(np.full((2, 3, 3), np.nan))
    with pytest.raises(ValueError, match="shape"):
        connected_components(np.zeros((3, 4, 4)))  # 3 channels for a 2-D image
    with pytest.raises(ValueError, match="do not match"):
        check_affinities(np.zeros((2, 4, 4)), spatial_shape=(4, 5))
    with pytest.raises(ValueError, match="min_size"):
        connected_components(np.zeros((2, 3, 3)), min_size=0)
