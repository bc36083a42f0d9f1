"""Tests of maximin edges, MALIS counts and the (constrained) MALIS loss."""

import math

import numpy as np
import pytest
import torch

from neuroinverse import segmentation as M
from neuroinverse.labels import (
    affinities_from_labels,
    affinity_graph,
    connected_components,
    relabel_connected,
)
from neuroinverse.metrics import rand_error
from neuroinverse.segmentation import MALISLoss, PerEdgeBCE, fit_affinity_net, malis_gradient_scale


def _random_case(rng, shape, n_labels=4, p_zero=0.2):
    labels = rng.integers(1, n_labels + 1, size=shape)
    labels[rng.random(shape) < p_zero] = 0
    aff = rng.random((len(shape), *shape))
    return aff, labels


def _generic_constrained(aff, labels):
    """Label-map Kruskal on min(a, g) / max(a, g) (constraint wins ties), then zeroing."""
    g = affinities_from_labels(labels).ravel() > 0.5
    u, v, valid = affinity_graph(labels.shape)
    nl, k = M.compact_labels(labels)
    a = aff.ravel()
    n_pos, _, _, _ = M.kruskal_label_counts(M.edge_order(np.where(g, a, -1.0), valid), u, v, nl, k)
    _, n_neg, _, _ = M.kruskal_label_counts(M.edge_order(np.where(g, 2.0, a), valid), u, v, nl, k)
    return np.where(g, n_pos, 0).reshape(aff.shape), np.where(g, 0, n_neg).reshape(aff.shape)


@pytest.mark.parametrize("shape", [(5, 6), (8, 8), (3, 3, 4)])
def test_maximin_kruskal_equals_floyd_warshall(shape):
    rng = np.random.default_rng(len(shape) * 10 + shape[0])
    for trial in range(3):
        aff = rng.random((len(shape), *shape))
        if trial == 2:
            aff = np.round(aff * 4) / 4  # many ties: maximin values are still unique
        np.testing.assert_array_equal(M.maximin_affinity(aff), M.maximin_affinity_bruteforce(aff))


def test_maximin_edges_lie_on_tree_and_carry_the_value():
    rng = np.random.default_rng(3)
    aff = rng.random((2, 4, 5))
    mm = M.maximin_edges(aff)
    tree = M.maximum_spanning_tree(aff).ravel()
    n = 20
    off = ~np.eye(n, dtype=bool)
    assert tree.sum() == n - 1
    assert tree[mm[off]].all()
    np.testing.assert_array_equal(mm, mm.T)


@pytest.mark.parametrize("shape", [(6, 7), (3, 4, 5)])
def test_counts_equal_all_pairs_bruteforce(shape):
    rng = np.random.default_rng(sum(shape))
    aff, labels = _random_case(rng, shape)
    n_pos, n_neg = M.malis_counts(aff, labels)
    b_pos, b_neg = M.malis_counts_bruteforce(aff, labels)
    np.testing.assert_array_equal(n_pos, b_pos)
    np.testing.assert_array_equal(n_neg, b_neg)
    assert n_pos.sum() > 0 and n_neg.sum() > 0


@pytest.mark.parametrize("shape", [(16, 16), (4, 9, 10)])
def test_count_identities_and_tree_sparsity(shape):
    rng = np.random.default_rng(7)
    aff, labels = _random_case(rng, shape, n_labels=6)
    n_pos, n_neg = M.malis_counts(aff, labels)
    sizes = np.bincount(labels[labels > 0])
    n_l = int(sizes.sum())
    assert n_pos.sum() == sum(math.comb(int(s), 2) for s in sizes)
    assert (n_pos + n_neg).sum() == math.comb(n_l, 2)
    counted = (n_pos + n_neg) > 0
    assert counted.sum() <= labels.size - 1
    assert M.maximum_spanning_tree(aff)[counted].all()


def test_zero_one_count_equals_rand_error():
    rng = np.random.default_rng(11)
    labels = np.repeat(np.repeat(rng.integers(0, 5, size=(4, 4)), 3, axis=0), 3, axis=1)
    aff = np.clip(affinities_from_labels(labels) * 0.6 + rng.random((2, 12, 12)) * 0.4, 0, 1)
    n_l = int((labels > 0).sum())
    counts = M.misclassified_pairs(aff, labels, thresholds=(0.3, 0.5, 0.7))
    for theta, count in zip((0.3, 0.5, 0.7), counts, strict=True):
        seg = connected_components(aff, threshold=theta)
        re = rand_error(labels, seg)
        assert count == pytest.approx(re * math.comb(n_l, 2), rel=1e-12, abs=1e-9)
        assert 0 < count < math.comb(n_l, 2)


def test_loss_equals_all_pairs_definition():
    """Σ_{i<j labelled} l(δ_ij, A*_ij) / C(N_L, 2) with the square-square loss (total norm.)."""
    rng = np.random.default_rng(5)
    aff, labels = _random_case(rng, (5, 6), n_labels=3)
    a_star = M.maximin_affinity(aff)
    lab = labels.ravel()
    idx = np.flatnonzero(lab > 0)
    m = 0.3
    total, n_pairs = 0.0, 0
    for k, i in enumerate(idx):
        for j in idx[k + 1 :]:
            a = a_star[i, j]
            total += max(0.0, 1 - m - a) ** 2 if lab[i] == lab[j] else max(0.0, a - m) ** 2
            n_pairs += 1
    loss = M.malis_loss(torch.tensor(aff), labels, pair_loss="square_square", margin=m, normalisation="total")
    assert float(loss) == pytest.approx(total / n_pairs, rel=1e-12)


@pytest.mark.parametrize("constrained", [False, True])
def test_gradient_sparse_and_matches_finite_differences(constrained):
    rng = np.random.default_rng(2)
    labels = relabel_connected(np.repeat(rng.integers(0, 3, size=(4, 4)), 2, axis=0))
    aff = torch.tensor(rng.uniform(0.05, 0.95, size=(2, 8, 4)), requires_grad=True)
    loss = M.malis_loss(aff, labels, constrained=constrained, pair_loss="square_square", margin=0.1)
    loss.backward()
    w_pos, w_neg = M.malis_weights(aff.detach().numpy(), labels, constrained=constrained)
    counted = (w_pos + w_neg) > 0
    grad = aff.grad.numpy()
    assert np.all(grad[~counted] == 0)
    assert np.count_nonzero(grad) > 0
    h = 1e-6
    base = aff.detach().clone()
    for e in np.flatnonzero(counted)[:12]:
        plus, minus = base.clone().ravel(), base.clone().ravel()
        plus[e] += h
        minus[e] -= h
        lp = M.weighted_pair_loss(plus.view_as(base), w_pos, w_neg, pair_loss="square_square", margin=0.1)
        lm = M.weighted_pair_loss(minus.view_as(base), w_pos, w_neg, pair_loss="square_square", margin=0.1)
        assert grad.ravel()[e] == pytest.approx(float(lp - lm) / (2 * h), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("shape", [(24, 24), (6, 12, 12)])
def test_constrained_counts_respect_gt_and_match_generic(shape):
    rng = np.random.default_rng(13)
    labels = relabel_connected(rng.integers(0, 3, size=shape))
    aff = rng.random((len(shape), *shape))
    g = affinities_from_labels(labels) > 0.5
    c_pos, c_neg = M.malis_counts(aff, labels, constrained=True)
    assert c_neg[g].sum() == 0 and c_pos[~g].sum() == 0
    sizes = np.bincount(labels[labels > 0])
    assert c_pos.sum() == sum(math.comb(int(s), 2) for s in sizes)
    g_pos, g_neg = _generic_constrained(aff, labels)
    np.testing.assert_array_equal(c_pos, g_pos)
    np.testing.assert_array_equal(c_neg, g_neg)
    # the unconstrained counts put negative mass inside objects and positive mass on boundaries
    u_pos, u_neg = M.malis_counts(aff, labels)
    assert u_neg[g].sum() > 0 and u_pos[~g].sum() > 0


def test_constrained_with_disconnected_labels_uses_label_maps():
    rng = np.random.default_rng(17)
    labels = rng.integers(0, 3, size=(10, 10))  # labels are split into many pieces
    aff = rng.random((2, 10, 10))
    c_pos, c_neg = M.malis_counts(aff, labels, constrained=True)
    g_pos, g_neg = _generic_constrained(aff, labels)
    np.testing.assert_array_equal(c_pos, g_pos)
    np.testing.assert_array_equal(c_neg, g_neg)


def test_batched_loss_is_mean_of_items_and_normalisations():
    rng = np.random.default_rng(19)
    labels = np.stack([relabel_connected(rng.integers(0, 3, size=(3, 6, 6))) for _ in range(2)])
    aff = torch.tensor(rng.random((2, 3, 3, 6, 6)))
    batched = M.malis_loss(aff, labels, constrained=True)
    items = [M.malis_loss(aff[i], labels[i], constrained=True) for i in range(2)]
    assert float(batched) == pytest.approx(float(sum(items)) / 2, rel=1e-12)
    w_pos, w_neg = M.malis_weights(aff[0].numpy(), labels[0], normalisation="per_pass")
    assert w_pos.sum() == pytest.approx(1.0) and w_neg.sum() == pytest.approx(1.0)
    w_pos, w_neg = M.malis_weights(aff[0].numpy(), labels[0], normalisation="total")
    assert (w_pos + w_neg).sum() == pytest.approx(1.0)


def test_per_edge_loss_balanced():
    aff = torch.tensor([0.2, 0.9, 0.4, 0.1])
    gt = torch.tensor([0.0, 1.0, 0.0, 0.0])
    plain = M.per_edge_loss(aff, gt, kind="square")
    assert float(plain) == pytest.approx((0.04 + 0.01 + 0.16 + 0.01) / 4)
    bal = M.per_edge_loss(aff, gt, kind="square", balanced=True)
    w1, w0 = 1 / (2 * 0.25), 1 / (2 * 0.75)
    expect = (w0 * 0.04 + w1 * 0.01 + w0 * 0.16 + w0 * 0.01) / (3 * w0 + w1)
    assert float(bal) == pytest.approx(expect)


def test_bad_inputs_raise():
    aff = np.full((2, 4, 4), 0.5)
    labels = np.ones((4, 4), dtype=int)
    with pytest.raises(ValueError, match="do not match"):
        M.malis_counts(aff, np.ones((4, 5), dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.malis_counts(aff + 0.6, labels)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.malis_loss(torch.tensor(aff - 0.6), labels)
    with pytest.raises(ValueError, match="labels"):
        M.malis_loss(torch.tensor(aff), np.ones((4, 5), dtype=int))
    with pytest.raises(ValueError, match="shape"):
        M.malis_counts(np.full((3, 4, 4), 0.5), labels)
    with pytest.raises(ValueError, match="gt_affinities"):
        M.malis_counts(aff, labels, constrained=True, gt_affinities=np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="pair_loss"):
        M.malis_loss(torch.tensor(aff), labels, pair_loss="hinge")
    with pytest.raises(ValueError, match="normalisation"):
        M.malis_loss(torch.tensor(aff), labels, normalisation="none")
    with pytest.raises(ValueError, match="margin"):
        M.malis_loss(torch.tensor(aff), labels, margin=0.7)
    with pytest.raises(ValueError, match="affinities must be a torch.Tensor"):
        M.malis_loss(aff, labels)


def test_maximin_path_ends_and_edge():
    rng = np.random.default_rng(23)
    aff = rng.random((2, 5, 5))
    path, mm = M.maximin_path(aff, 0, 24)
    assert mm == M.maximin_edges(aff)[0, 24]
    assert aff.ravel()[mm] == pytest.approx(M.maximin_affinity_bruteforce(aff)[0, 24])
    u, v, _ = affinity_graph((5, 5))
    nodes = np.r_[u[path], v[path]]
    assert 0 in nodes and 24 in nodes and len(path) >= 8


def test_work_counts_are_exact_on_a_path_and_deterministic():
    """A 1x4 chain, one label: 3 edges, every pair; the brute force queries C(4, 2) pairs."""
    aff = np.zeros((2, 1, 4))
    aff[1, 0, :3] = [0.9, 0.5, 0.7]  # x-edges; y-edges do not exist in a 1-row image
    labels = np.ones((1, 4), dtype=np.int64)
    w = M.malis_work(aff, labels)
    assert w["edges"] == 3 and w["merges"] == 3  # three unions, one map entry moved each
    assert w["total"] == w["edges"] + w["hops"] + w["merges"]
    assert M.malis_work(aff, labels) == w  # counted, not timed: identical on every call
    wb = M.malis_work_bruteforce(aff, labels)
    assert wb["pairs"] == 6 and wb["steps"] >= 6 and wb["total"] == wb["pairs"] + wb["steps"]
    # constrained: the positive pass visits the 3 within-object edges, the negative pass none
    wc = M.malis_work(aff, labels, constrained=True)
    assert wc["edges"] == 3 and wc["merges"] == 3


def test_work_slopes_separate_quasi_linear_from_quadratic():
    """Work grows ~n for the constrained passes and ~n² for the all-pairs brute force."""
    rng = np.random.default_rng(0)
    sides, fast, brute = (8, 12, 16), [], []
    for side in sides:
        lab = relabel_connected(rng.integers(1, 4, size=(side, side)))
        aff = rng.random((2, side, side))
        fast.append(M.malis_work(aff, lab, constrained=True)["total"])
        brute.append(M.malis_work_bruteforce(aff, lab)["total"])
    n = np.array(sides) ** 2
    s_fast = np.polyfit(np.log(n), np.log(fast), 1)[0]
    s_brute = np.polyfit(np.log(n), np.log(brute), 1)[0]
    assert 0.8 < s_fast < 1.3 and s_brute > 1.8


def _tiny_net_and_two_cells():
    """A small 2-D affinity U-Net and a 12 × 12 image of two cells with their affinities."""
    from neuroinverse.models import UNet

    torch.manual_seed(0)
    net = UNet(1, 2, dims=2, base_channels=4, depth=1, padding="same", final_activation="sigmoid")
    labels = np.zeros((1, 12, 12), dtype=np.int64)
    labels[0, :, :5], labels[0, :, 7:] = 1, 2
    gt = torch.as_tensor(affinities_from_labels(labels[0])[None], dtype=torch.float32)
    return net, labels, gt


def test_malis_gradient_scale_equalises_the_gradient_norms():
    net, labels, gt = _tiny_net_and_two_cells()
    raw = torch.randn(1, 1, 12, 12)
    scale = malis_gradient_scale(
        net, (raw, labels, gt), malis=MALISLoss(constrained=True), bce=PerEdgeBCE(balanced=True)
    )
    assert scale > 0

    def norm(loss):
        net.zero_grad()
        loss.backward()
        return float(torch.sqrt(sum((p.grad**2).sum() for p in net.parameters())))

    g_bce = norm(M.per_edge_loss(net(raw), gt, balanced=True))
    g_malis = norm(scale * M.malis_loss(net(raw), labels, constrained=True))
    assert g_malis == pytest.approx(g_bce, rel=1e-4)


def test_fit_affinity_net_takes_a_mask_and_a_malis_weight():
    net, labels, gt = _tiny_net_and_two_cells()
    mask = torch.ones_like(gt)
    batch = (torch.randn(1, 1, 12, 12), labels, gt, mask)
    hist = fit_affinity_net(
        net,
        lambda step: batch,
        loss=MALISLoss(constrained=True, weight=0.5, bce_weight=0.1, balanced=True),
        betas=(0.95, 0.999),
        n_steps=2,
        progress=False,
    )
    assert hist is not None
    with pytest.raises(ValueError):
        fit_affinity_net(net, lambda step: batch[:2], loss=PerEdgeBCE(), n_steps=1, progress=False)
    with pytest.raises(ValueError, match="loss"):
        fit_affinity_net(net, lambda step: batch, loss="bce", n_steps=1, progress=False)


def test_affinity_losses_are_their_definitions():
    """PerEdgeBCE is the per-edge BCE; MALISLoss is weight · MALIS + bce_weight · BCE."""
    _, labels, gt = _tiny_net_and_two_cells()
    pred = torch.rand(gt.shape, generator=torch.Generator().manual_seed(0)) * 0.98 + 0.01
    mask = (torch.rand(gt.shape, generator=torch.Generator().manual_seed(1)) > 0.3).float()
    assert torch.equal(
        PerEdgeBCE(balanced=True)(pred, labels, gt, mask), M.per_edge_loss(pred, gt, balanced=True, mask=mask)
    )
    malis = M.malis_loss(pred, labels, constrained=True, pair_loss="square_square", margin=0.2)
    loss = MALISLoss(constrained=True, pair_loss="square_square", margin=0.2, weight=3.0, bce_weight=0.5)
    expected = 3.0 * malis + 0.5 * M.per_edge_loss(pred, gt, mask=mask)
    torch.testing.assert_close(loss(pred, labels, gt, mask), expected)
    torch.testing.assert_close(
        MALISLoss(constrained=True)(pred, labels, gt), M.malis_loss(pred, labels, constrained=True)
    )
    assert MALISLoss(constrained=True).label == "malis (constrained)" and PerEdgeBCE().label == "bce"


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(pair_loss="hinge"), "pair_loss"),
        (dict(normalisation="none"), "normalisation"),
        (dict(margin=-0.1), "margin"),
        (dict(margin=0.6), "margin"),
        (dict(weight=0.0), "weight"),
        (dict(bce_weight=-1.0), "bce_weight"),
        (dict(weight=float("nan")), "weight"),
    ],
)
def test_malis_loss_options_check_themselves(kw, match):
    with pytest.raises(ValueError, match=match):
        MALISLoss(**kw)
