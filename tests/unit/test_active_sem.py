"""Learning-guided SEM (active-sem chapter): rescan policies, greedy DPP, time and speed-up, scores."""

import numpy as np
import pytest
import torch

from neuroinverse.inference import (
    average_dwell,
    equal_quality_dwell,
    error_batches,
    error_target,
    fit_pixel_classifier,
    fuse_rescan,
    greedy_kdpp,
    grid_rescan,
    pixel_auroc,
    predict_maps,
    random_rescan,
    rescan_budget,
    segmentation_vi,
    slow_equivalent_speedup,
    speedup_at_equal_quality,
    topk_rescan,
    wdpp_rescan,
    window_budgets,
)
from neuroinverse.models import ErrorPredictor
from neuroinverse.segmentation import segment_membrane_map

RNG = np.random.default_rng(0)
P = RNG.random((40, 56))


# ---------------------------------------------------------------- budgets and policies
@pytest.mark.parametrize("rho", [0.01, 0.05, 1 / 16, 0.2, 1.0])
def test_every_policy_spends_exactly_the_budget(rho):
    k = rescan_budget(P.size, rho)
    masks = {
        "random": random_rescan(P.shape, rho, seed=1),
        "grid": grid_rescan(P.shape, rho),
        "topk": topk_rescan(P, rho),
        "wdpp": wdpp_rescan(P, rho, window=16),
    }
    for name, m in masks.items():
        assert m.shape == P.shape and m.dtype == bool, name
        assert int(m.sum()) == k, name


def test_topk_takes_the_largest_scores_and_the_oracle_takes_the_errors():
    m = topk_rescan(P, 0.1)
    assert P[m].min() >= P[~m].max()
    e = np.zeros(P.shape, bool)
    e[5:9, 10:20] = True  # 40 error pixels, budget 224: every error pixel is taken
    assert topk_rescan(e, 0.1)[e].all()


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_rescan_fraction_outside_the_unit_interval_is_refused(bad):
    for call in (
        lambda: rescan_budget(100, bad),
        lambda: random_rescan((10, 10), bad),
        lambda: topk_rescan(P, bad),
        lambda: wdpp_rescan(P, bad),
        lambda: average_dwell(50, 800, bad),
    ):
        with pytest.raises(ValueError, match="rho"):
            call()


@pytest.mark.parametrize("bad", [0.0, -50.0])
def test_non_positive_dwell_is_refused(bad):
    with pytest.raises(ValueError, match="t_lo"):
        average_dwell(bad, 800, 0.1)
    with pytest.raises(ValueError, match="t_hi"):
        average_dwell(50, bad, 0.1)
    with pytest.raises(ValueError, match="time_smart"):
        speedup_at_equal_quality([50, 100], [1.0, 0.5], 0.7, bad)
    with pytest.raises(ValueError, match="dwells"):
        equal_quality_dwell([bad, 100], [1.0, 0.5], 0.7)


def test_window_budgets_share_k_in_proportion_to_the_mass():
    p = np.zeros((32, 32))
    p[:16, :16] = 3.0
    p[:16, 16:] = 1.0
    b = window_budgets(p, 40, 16)
    assert b.sum() == 40
    assert b.tolist() == [[30, 10], [0, 0]]
    # a full tile passes its excess on
    assert window_budgets(p, 360, 16).tolist() == [[256, 104], [0, 0]]


# ---------------------------------------------------------------- greedy DPP
def test_greedy_kdpp_matches_the_hand_computed_choice():
    # three items on a line at 0, 0.1, 1 (sigma 0.1): K01 = e^-1, K02 ≈ 0, K12 ≈ 0
    # q = (1, 0.95, 0.9). Step 1: argmax q² → item 0. Step 2 gains d² = q_j² (1 − K_0j²):
    # item 1: 0.9025·(1 − e^-2) = 0.7804, item 2: 0.81 → item 2, although q_1 > q_2.
    q = np.array([1.0, 0.95, 0.9])
    x = np.array([[0.0], [0.1], [1.0]])
    assert greedy_kdpp(q, x, 2, sigma=0.1).tolist() == [0, 2]
    # without the repulsion (a huge distance) the order is the quality order
    x_far = np.array([[0.0], [10.0], [20.0]])
    assert greedy_kdpp(q, x_far, 3, sigma=0.1).tolist() == [0, 1, 2]


def test_greedy_kdpp_gains_are_the_log_det_increments():
    rng = np.random.default_rng(3)
    q, x = rng.random(12) + 0.1, rng.random((12, 2))
    sel = greedy_kdpp(q, x, 5, sigma=0.5)
    L = q[:, None] * np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 0.25) * q[None]
    for t in range(1, 5):  # each choice maximises det L_{Y ∪ j} over j, by brute force
        prev = list(sel[:t])
        dets = [np.linalg.det(L[np.ix_(prev + [j], prev + [j])]) if j not in prev else -1 for j in range(12)]
        assert int(np.argmax(dets)) == sel[t]


def test_greedy_kdpp_fills_a_rank_deficient_kernel_by_quality():
    q = np.array([1.0, 0.5, 0.2])
    x = np.zeros((3, 1))  # identical positions: L has rank 1
    assert greedy_kdpp(q, x, 3, sigma=1.0).tolist() == [0, 1, 2]


def test_wdpp_spreads_more_than_topk_on_one_blob():
    yy, xx = np.mgrid[:64, :64]
    p = np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 50.0) + 0.3 * np.exp(-((yy - 48) ** 2 + (xx - 48) ** 2) / 50.0)
    mt, md = topk_rescan(p, 0.02), wdpp_rescan(p, 0.02, window=64)
    far = (yy - 20) ** 2 + (xx - 20) ** 2 > 15**2
    assert md[far].sum() > mt[far].sum()


def test_bad_policy_arguments_are_refused():
    with pytest.raises(ValueError, match="lam"):
        wdpp_rescan(P, 0.1, lam=0)
    with pytest.raises(ValueError, match="score"):
        topk_rescan(np.ones(5), 0.1)
    with pytest.raises(ValueError, match="k must be at most"):
        greedy_kdpp(np.ones(3), np.zeros((3, 1)), 4, sigma=1)


# ---------------------------------------------------------------- time and speed-up
def test_average_dwell_counts_the_fast_pass():
    assert average_dwell(50, 800, 1 / 16) == pytest.approx(100.0)
    assert average_dwell(50, 800, 0.1, t_jump=100) == pytest.approx(140.0)


def test_speedup_on_an_analytic_dwell_curve():
    # VI_u(t) = 3 − log t is linear in log t, so the interpolation is exact
    t = np.array([50, 75, 100, 150, 200, 300, 400, 600, 800], float)
    vi = 3 - np.log(t)
    s = speedup_at_equal_quality(t, vi, 3 - np.log(250.0), average_dwell(50, 800, 0.05))
    assert s.t_star == pytest.approx(250.0)
    assert s.speedup == pytest.approx(250.0 / 90.0)
    assert s.censored == ""
    assert speedup_at_equal_quality(t, vi, -10, 90).censored == "above"
    assert speedup_at_equal_quality(t, vi, 10, 90).t_star == 50.0
    sp, rho_min = slow_equivalent_speedup([0.02, 0.05, 0.1, 0.2], [1.0, 0.54, 0.5, 0.45], 0.5, t_lo=50, t_hi=800)
    assert rho_min == 0.05 and sp == pytest.approx(800 / 90)
    assert np.isnan(slow_equivalent_speedup([0.1], [2.0], 0.5, t_lo=50, t_hi=800)[0])


# ---------------------------------------------------------------- targets, fusion, scores
def test_error_target_is_the_dilated_disagreement():
    a = np.zeros((2, 9, 9))
    b = a.copy()
    b[0, 4, 4] = 0.9
    e = error_target(a, b, dilate=1)
    assert e.shape == (2, 9, 9) and e[0].sum() == 5 and e[1].sum() == 0
    assert error_target(a[0], b[0], dilate=0).sum() == 1


def test_fusion_replaces_or_weighs_the_rescanned_pixels():
    xf, xs = np.zeros((3, 3)), np.ones((3, 3))
    m = np.eye(3, dtype=bool)
    assert fuse_rescan(xf, xs, m).sum() == 3
    w = fuse_rescan(xf, xs, m, mode="weighted", t_lo=50, t_hi=800)
    assert w[0, 0] == pytest.approx(800 / 850) and w[0, 1] == 0
    with pytest.raises(ValueError, match="mode"):
        fuse_rescan(xf, xs, m, mode="max")


def test_segmentation_of_a_membrane_map_and_its_vi():
    lab = np.ones((20, 20), int)
    lab[:, 10:] = 2
    prob = np.zeros((20, 20))
    prob[:, 9:11] = 1.0  # a membrane between the two cells
    seg = segment_membrane_map(prob, min_size=5, expand=3)
    assert len(np.unique(seg)) == 2 and (seg > 0).all()
    assert segmentation_vi(lab, seg) == pytest.approx(0.0, abs=0.2)
    merged = segment_membrane_map(np.zeros((20, 20)))
    assert segmentation_vi(lab, merged) == pytest.approx(1.0)  # one bit lost


def test_vi_matches_scikit_image():
    from skimage.metrics import variation_of_information as sk_voi

    a, b = RNG.integers(1, 4, (16, 16)), RNG.integers(1, 5, (16, 16))
    assert segmentation_vi(a, b) == pytest.approx(float(np.sum(sk_voi(a, b))), abs=1e-9)


def test_pixel_auroc():
    y = np.array([0, 0, 1, 1])
    assert pixel_auroc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert pixel_auroc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    with pytest.raises(ValueError, match="both classes"):
        pixel_auroc(np.ones(3), np.ones(3))


# ---------------------------------------------------------------- the network
def test_error_predictor_shapes_and_a_short_fit():
    torch.manual_seed(0)
    net = ErrorPredictor(base_channels=4, depth=2)
    x = torch.rand(2, 1, 16, 16)
    assert net(x, x).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="membranes"):
        net(x)
    fast = RNG.random((4, 16, 16)).astype(np.float32)
    err = (fast > 0.7).astype(np.float32)  # learnable: error where the image is bright
    hist = fit_pixel_classifier(
        net,
        error_batches(fast, fast, err, crop=8, batch_size=4),
        n_steps=60,
        lr=1e-2,
        pos_weight=2.0,
        progress=False,
    )
    assert hist.loss[-1] < hist.loss[0]
    p = predict_maps(net, fast, fast)
    assert p.shape == (4, 16, 16) and pixel_auroc(p, err) > 0.9


def test_segment_error_target_marks_missing_and_extra_walls_not_shifted_ones():
    from neuroinverse.inference import segment_error_target

    slow = np.ones((10, 12), int)
    slow[:, 6:] = 2
    shifted = np.ones((10, 12), int)
    shifted[:, 7:] = 2
    assert not segment_error_target(shifted, slow).any()  # a wall moved by one pixel
    merged = np.ones((10, 12), int)
    e = segment_error_target(merged, slow, dilate=0)
    assert e[:, 5:7].all() and e.sum() == 20  # the missing wall, both sides
    split = slow.copy()
    split[5:, :6] = 3
    e = segment_error_target(split, slow, dilate=0)
    assert e[4:6, :6].all() and e.sum() == 12  # the extra wall


def test_rescan_masks_stack_and_bad_policy():
    from neuroinverse.inference import rescan_masks

    stack = RNG.random((3, 32, 32))
    for policy in ("random", "grid", "topk", "wdpp"):
        m = rescan_masks(policy, stack, 0.05)
        assert m.shape == stack.shape and (m.sum(axis=(1, 2)) == rescan_budget(32 * 32, 0.05)).all()
    with pytest.raises(ValueError, match="policy"):
        rescan_masks("best", stack, 0.05)


def test_components_hit_counts_error_blobs_with_a_chosen_pixel():
    from neuroinverse.inference import components_hit

    e = np.zeros((10, 10), bool)
    e[1:3, 1:3] = e[6:8, 6:8] = True
    m = np.zeros_like(e)
    m[1, 1] = True
    assert components_hit(e, m) == 0.5
    assert np.isnan(components_hit(np.zeros_like(e), m))


def test_dwell_scans_have_poisson_variance():
    from neuroinverse.inference import dwell_scans

    flat = np.full((1, 256, 256), 0.65)
    v = {t: dwell_scans(flat, t, photons_per_ns=0.3).var() for t in (50.0, 800.0)}
    assert v[50.0] == pytest.approx(0.65 / (0.3 * 50), rel=0.03)
    assert v[50.0] * 50 == pytest.approx(v[800.0] * 800, rel=0.03)
    with pytest.raises(ValueError, match="dwell_ns"):
        dwell_scans(flat, 0.0, photons_per_ns=0.3)


def test_segment_and_score_runs_the_detector():
    from neuroinverse.inference import segment_and_score
    from neuroinverse.models import UNet

    torch.manual_seed(0)
    net = UNet(1, 1, base_channels=4, depth=2)
    lab = np.ones((2, 16, 16), int)
    lab[:, :, 8:] = 2
    vi, arand, segs = segment_and_score(net, RNG.random((2, 16, 16)), lab)
    assert vi.shape == arand.shape == (2,) and segs.shape == (2, 16, 16)
    assert (vi >= 0).all() and ((arand >= 0) & (arand <= 1)).all()
