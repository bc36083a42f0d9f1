"""Fragments, region graph, quantile agglomeration and the connected-components baseline."""

import numpy as np
import pytest

from neuroinverse.labels import affinities_from_labels
from neuroinverse.segmentation import (
    RegionGraph,
    agglomerate,
    agglomerate_graph,
    boundary_map,
    pair_histograms,
    predict_volume_affinities,
    quantise,
    region_graph,
    seeded_threshold_components,
    threshold_components,
    watershed_fragments,
)

BOUNDARY = [0.1, 0.2, 0.6, 0.8, 0.9]  # the 5 x-edges between the two fragments below


def two_regions():
    """Fragment 1 = column 0, fragment 2 = column 1 of a (1, 5, 2) volume."""
    frag = np.array([[[1, 2]] * 5])
    aff = np.full((3, 1, 5, 2), 0.95)
    aff[2, 0, :, 1] = BOUNDARY  # aff[2][y, 1] links (y, 1) with (y, 0)
    return frag, aff


def test_region_graph_collects_the_boundary_affinities():
    frag, aff = two_regions()
    g = region_graph(frag, aff)
    assert g.n_fragments == 2 and g.pairs.tolist() == [[1, 2]]
    assert g.edge_values(0).tolist() == BOUNDARY


def test_region_graph_histograms_count_every_boundary_edge():
    frag, aff = two_regions()
    aff[2, 0, :, 1] = [0.1, 0.2, 0.2, 0.8, 0.2]
    g = region_graph(frag, aff)
    assert g.values.tolist() == [0.1, 0.2, 0.8] and g.counts.tolist() == [1, 3, 1]
    assert g.edge_values(0).tolist() == [0.1, 0.2, 0.2, 0.2, 0.8]
    q = region_graph(frag, aff, bins=3)  # levels 0, 0.5, 1: 0.1 and 0.2 round to 0, 0.8 to 1
    assert q.values.tolist() == [0, 2] and q.values.dtype == np.uint16 and q.counts.tolist() == [4, 1]
    assert q.edge_values(0).tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert (
        q.counts.dtype == np.uint32
        and q.bins == 3
        and q.nbytes == sum(a.nbytes for a in (q.pairs, q.offsets, q.values, q.counts))
    )


def test_quantise_keeps_uint8_levels_and_bounds_each_histogram():
    levels = np.arange(256) / 255
    assert np.array_equal(quantise(levels, 256), levels)
    assert np.array_equal(quantise(levels, None), levels)
    assert quantise([0.24, 0.26, 0.74, 0.76], 3).tolist() == [0.0, 0.5, 0.5, 1.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantise([0.5, 1.2], 256)
    rng = np.random.default_rng(0)
    aff = rng.uniform(0, 1, size=(3, 4, 24, 24))
    frag = watershed_fragments(aff)
    exact, coarse = region_graph(frag, aff), region_graph(frag, aff, bins=8)
    assert np.array_equal(exact.pairs, coarse.pairs)
    edges = [np.add.reduceat(g.counts, g.offsets[:-1]) for g in (exact, coarse)]
    assert np.array_equal(*edges)  # the same boundary edges per pair
    assert np.diff(coarse.offsets).max() <= 8 < np.diff(exact.offsets).max()
    for k in range(0, len(exact.pairs), 7):  # the quantised list is the exact one, rounded
        assert np.array_equal(coarse.edge_values(k), np.sort(quantise(exact.edge_values(k), 8)))


def test_uint8_affinities_agglomerate_the_same_with_256_bins():
    rng = np.random.default_rng(2)
    aff = np.round(rng.uniform(0, 1, size=(3, 4, 24, 24)) * 255) / 255
    frag = watershed_fragments(aff)
    thr = np.linspace(0.1, 0.9, 5)
    for q in ("median", "p25", "mean"):
        a = agglomerate(aff, frag, thresholds=thr, quantile=q)
        b = agglomerate(aff, frag, thresholds=thr, quantile=q, bins=256)
        assert np.array_equal(a.maps, b.maps)
    # few levels do change the result (the check above could fail)
    c = agglomerate(aff, frag, thresholds=thr, quantile="median", bins=3)
    assert not np.array_equal(c.maps, agglomerate(aff, frag, thresholds=thr, quantile="median").maps)


@pytest.mark.parametrize("quantile", ["median", "p10", "p90", "min", "max", "mean"])
def test_histogram_score_is_the_order_statistic_of_the_repeated_list(quantile):
    rng = np.random.default_rng(5)
    for _ in range(20):  # one pair with a random histogram: its merge score is 1 - Q(list)
        vals = np.sort(rng.choice(np.arange(64) / 63, size=rng.integers(1, 6), replace=False))
        cnt = rng.integers(1, 5, size=vals.size)
        g = RegionGraph(2, np.array([[1, 2]]), np.array([0, vals.size]), vals, cnt)
        _, _, scores = agglomerate_graph(g, thresholds=[2.0], quantile=quantile)
        full = np.repeat(vals, cnt)
        q = {"median": 0.5, "p10": 0.1, "p90": 0.9, "min": 0.0, "max": 1.0}.get(quantile)
        want = 1 - (full.mean() if q is None else full[int(np.floor(q * (full.size - 1)))])
        assert scores[0] == pytest.approx(want, abs=1e-12)


def test_pair_histograms_sum_counts_of_equal_entries():
    u, v, val, cnt = pair_histograms([3, 1, 1, 3, 1], [4, 2, 2, 4, 2], [0.5, 0.2, 0.2, 0.5, 0.1], [1, 2, 3, 4, 5])
    assert u.tolist() == [1, 1, 3] and v.tolist() == [2, 2, 4]
    assert val.tolist() == [0.1, 0.2, 0.5] and cnt.tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="same length"):
        pair_histograms([1], [2, 3], [0.5])


@pytest.mark.parametrize(
    "quantile,score", [("median", 0.4), ("p75", 0.2), ("p25", 0.8), ("mean", 0.48), ("min", 0.9), ("max", 0.1)]
)
def test_two_regions_merge_exactly_below_their_score(quantile, score):
    frag, aff = two_regions()
    ag = agglomerate(aff, frag, thresholds=[score - 0.01, score + 0.01], quantile=quantile)
    assert ag.n_segments().tolist() == [2, 1]
    assert ag.merge_scores == pytest.approx([score])
    assert np.unique(ag.segmentation(1)).size == 1


def test_median_and_p75_differ_where_they_should():
    frag, aff = two_regions()
    at = dict(thresholds=[0.3])
    assert agglomerate(aff, frag, quantile="median", **at).n_segments().tolist() == [2]
    assert agglomerate(aff, frag, quantile="p75", **at).n_segments().tolist() == [1]


def test_parallel_edges_are_pooled_after_a_merge():
    # three fragments in a row 1 | 2 | 3; 1-2 merge first; then 1 and 2 both touch 3
    frag = np.array([[[1, 2, 3], [1, 2, 3], [1, 1, 3]]])
    aff = np.full((3, 1, 3, 3), 0.99)
    aff[2, 0, :, 1] = 0.99  # 1-2 edges: score 0.01
    aff[1, 0, 2, 1] = 0.99  # (2,1)-(1,1): 1-2 as well
    aff[2, 0, :2, 2] = [0.2, 0.3]  # 2-3 edges
    aff[2, 0, 2, 2] = 0.9  # 1-3 edge
    # before pooling: 1-3 score 0.1; after: median of {0.2, 0.3, 0.9} = 0.3 -> score 0.7
    ag = agglomerate(aff, frag, thresholds=[0.5, 0.75], quantile="median")
    assert ag.n_segments().tolist() == [2, 1]
    assert ag.merge_scores == pytest.approx([0.01, 0.7])


def test_sweep_is_monotone_and_ends_in_one_segment():
    rng = np.random.default_rng(1)
    aff = rng.uniform(0, 1, size=(3, 4, 24, 24))
    frag = watershed_fragments(aff)
    assert frag.min() == 1 and frag.max() > 10
    ag = agglomerate(aff, frag, thresholds=np.linspace(0.0, 1.01, 12)[::-1], quantile="median")
    n = ag.n_segments()
    assert np.all(np.diff(n) <= 0) and n[0] == frag.max() and n[-1] == 1
    assert np.all(np.diff(ag.thresholds) > 0)


def test_fragments_follow_cells_and_boundary_map_range():
    lab = np.zeros((2, 20, 21), int)
    lab[:, :, :10], lab[:, :, 11:] = 1, 2  # column 10 is membrane (label 0)
    aff = affinities_from_labels(lab)
    b = boundary_map(aff)
    assert b.min() >= 0 and b.max() <= 1
    assert b[0, 5, 10] == 1.0 and b[0, 5, 11] == pytest.approx(0.25)  # 1 of its 4 xy edges is cut
    frag = watershed_fragments(aff)
    # one fragment per cell and section; none crosses the membrane
    assert not np.intersect1d(frag[:, :, :10], frag[:, :, 11:]).size
    assert np.unique(frag).size == 4


def test_threshold_components_hand_example():
    aff = np.zeros((3, 1, 1, 4))
    aff[2, 0, 0, 1:] = [0.9, 0.4, 0.7]  # edges (0,1), (1,2), (2,3)
    segs = threshold_components(aff, thresholds=[0.3, 0.5, 0.95])
    assert [np.unique(s).size for s in segs] == [1, 2, 4]
    assert segs[1][0, 0, 0] == segs[1][0, 0, 1] != segs[1][0, 0, 2]


def test_threshold_components_match_scipy_first_appearance():
    # the union-find components equal scipy's graph components, numbered by first appearance
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as sp_cc

    from neuroinverse.labels import affinity_graph

    rng = np.random.default_rng(5)
    aff = rng.random((3, 4, 7, 6))
    u, v, valid = affinity_graph(aff.shape[1:])
    for t, seg in zip((0.3, 0.6, 0.9), threshold_components(aff, thresholds=[0.3, 0.6, 0.9]), strict=True):
        keep = valid & (aff.ravel() > t)
        n = seg.size
        _, comp = sp_cc(coo_matrix((np.ones(keep.sum()), (u[keep], v[keep])), shape=(n, n)), directed=False)
        _, first, inv = np.unique(comp, return_index=True, return_inverse=True)
        rank = np.empty(first.size, np.int64)
        rank[np.argsort(first)] = np.arange(1, first.size + 1)
        np.testing.assert_array_equal(seg.ravel(), rank[inv])


def test_predict_affinities_pads_and_tiles():
    import torch

    from neuroinverse.models import UNet

    torch.manual_seed(0)
    net = UNet(
        1,
        3,
        dims=3,
        base_channels=2,
        depth=2,
        channel_multiplier=2,
        downsample=(1, 2, 2),
        kernel_size=[(1, 3, 3), (3, 3, 3)],
        padding="valid",
        final_activation="sigmoid",
    )
    raw = np.random.default_rng(0).normal(size=(6, 20, 20)).astype(np.float32)
    whole = predict_volume_affinities(net, raw)
    tiled = predict_volume_affinities(net, raw, block=(4, 12, 12))
    assert whole.shape == (3, 6, 20, 20) and whole.dtype == np.float32
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    assert net.training  # the mode is restored


def test_bad_input():
    frag, aff = two_regions()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        agglomerate(aff * 1.5, frag, thresholds=[0.5])
    bad = aff.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        watershed_fragments(bad)
    with pytest.raises(ValueError, match="quantile"):
        agglomerate(aff, frag, thresholds=[0.5], quantile="p60")
    with pytest.raises(ValueError, match="do not match"):
        agglomerate(aff, frag[:, :4], thresholds=[0.5])
    with pytest.raises(ValueError, match=r"\(3, Z, Y, X\)"):
        threshold_components(aff[:2], thresholds=[0.5])
    with pytest.raises(ValueError, match="thresholds"):
        agglomerate(aff, frag, thresholds=[])
    for bins in (1, 2.5, True, 70000):
        with pytest.raises(ValueError, match="bins"):
            agglomerate(aff, frag, thresholds=[0.5], bins=bins)


def test_seeded_components_leave_no_boundary_singletons():
    labels = np.zeros((2, 8, 8), dtype=np.int64)
    labels[:, :, :4], labels[:, :, 4:] = 1, 2
    aff = affinities_from_labels(labels).astype(float)
    aff[:, :, :, 3:5] = 0.0  # a two-voxel-wide boundary band with no kept edge
    plain = threshold_components(aff, thresholds=[0.5])[0]
    assert (np.bincount(plain.ravel())[1:] == 1).sum() > 0
    seg = seeded_threshold_components(aff, thresholds=[0.5])[0]
    assert np.unique(seg).tolist() == [1, 2]
    assert (np.bincount(seg.ravel())[1:] > 1).all()
    # the band is split between its two neighbours: no voxel changes side
    assert np.all(seg[:, :, :4] == seg[0, 0, 0]) and np.all(seg[:, :, 4:] == seg[0, 0, 7])


def test_seeded_components_without_seeds_fall_back_to_singletons():
    aff = np.zeros((3, 1, 2, 2))
    seg = seeded_threshold_components(aff, thresholds=[0.5])[0]
    assert np.unique(seg).size == 4
    with pytest.raises(ValueError):
        seeded_threshold_components(aff, thresholds=[])
