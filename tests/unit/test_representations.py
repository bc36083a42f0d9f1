"""The Representations library: intrinsic dimension, single units, the population, similarity."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr

import neuroinverse.representations.dimension as dimension_module
from neuroinverse.representations import (
    ablation_order,
    block_analysis,
    class_selectivity,
    compare_rdms,
    convnet,
    cumulative_ablation,
    evaluate,
    gaussian_subspace,
    layer_activations,
    linear_cka,
    load_digits_split,
    mlp,
    nearest_neighbour_distances,
    noise_ceiling,
    noisy_labels,
    participation_ratio,
    pca_dimension,
    random_invertible_map,
    rdm,
    rsa_permutation_null,
    shuffled_labels,
    simulate_population,
    single_unit_ablation,
    sphere,
    svcca,
    swiss_roll,
    train_classifier,
    two_nn,
    unit_activations,
    unit_match,
)

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- intrinsic dimension


@pytest.mark.parametrize("d", [2, 5, 10])
def test_two_nn_finds_the_dimension_of_a_gaussian_subspace(d):
    x = gaussian_subspace(2000, d, 50, seed=d)
    assert two_nn(x).dimension == pytest.approx(d, rel=0.1)


def test_two_nn_on_curved_manifolds():
    assert 1.8 <= two_nn(swiss_roll(2000, seed=0)).dimension <= 2.3
    assert two_nn(swiss_roll(2000, ambient=20, seed=0)).dimension == pytest.approx(
        two_nn(swiss_roll(2000, seed=0)).dimension, abs=1e-9
    )  # a rotation changes no distance
    assert two_nn(sphere(3000, 4, seed=1)).dimension == pytest.approx(4, rel=0.1)


def test_two_nn_on_exact_pareto_ratios():
    """With mu drawn from the Pareto law F = 1 - mu^-d both fits recover d."""
    g = np.random.default_rng(0)
    d, n = 7.0, 20_000
    mu = g.random(n) ** (-1.0 / d)
    x = np.zeros((n, 1))  # coordinates unused: the distances are given
    for method in ("linear", "mle"):
        est = two_nn(x, distances=(np.ones(n), mu), method=method).dimension
        assert est == pytest.approx(d, rel=0.03), method


def test_two_nn_agrees_with_scikit_dimension():
    skdim = pytest.importorskip("skdim")
    for d in (2, 5, 10):
        x = gaussian_subspace(1500, d, 50, seed=d)
        for method in ("linear", "mle"):
            ours = two_nn(x, method=method).dimension
            theirs = skdim.id.TwoNN(method=method).fit(x).dimension_
            assert abs(ours - theirs) < 1e-6


def test_two_nn_fit_through_the_origin_with_the_all_points_cdf():
    x = gaussian_subspace(500, 3, 10, seed=0)
    r = two_nn(x, discard_fraction=0.1)
    assert r.n_fit == int(r.n_points * 0.9) and r.n_points == 500
    assert np.all(np.diff(r.log_mu) >= 0)
    np.testing.assert_allclose(r.y, -np.log(1 - np.arange(1, r.n_fit + 1) / r.n_points))
    assert r.dimension == pytest.approx(r.x @ r.y / (r.x @ r.x))
    # nothing discarded: the last point (1 - F = 0) is left out, the estimate stays finite
    r0 = two_nn(x, discard_fraction=0.0)
    assert r0.n_fit == 499 and np.isfinite(r0.dimension)


def test_nearest_neighbour_distances_match_brute_force_in_chunks():
    x = np.random.default_rng(1).standard_normal((300, 7))
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    d.sort(axis=1)
    r1, r2 = nearest_neighbour_distances(x, chunk_bytes=8 * 300 * 7)  # 7 rows per chunk
    np.testing.assert_allclose(r1, d[:, 0], rtol=1e-12)
    np.testing.assert_allclose(r2, d[:, 1], rtol=1e-12)


def test_ties_are_exact_and_dropped():
    grid = np.stack(np.meshgrid(np.arange(12.0), np.arange(12.0)), -1).reshape(-1, 2)
    jitter = np.random.default_rng(0).random((100, 2)) * 0.3 + 20
    x = np.concatenate([grid, jitter])
    r = two_nn(x)
    assert r.n_ties >= 144 - 4 and r.n_points == len(x) - r.n_ties  # every grid point is a tie
    assert two_nn(x, drop_ties=False).n_ties == 0


def test_duplicates_raise_unless_dropped():
    x = gaussian_subspace(200, 3, 10, seed=0)
    x = np.concatenate([x, x[:5]])
    with pytest.raises(ValueError, match="duplicate"):
        two_nn(x)
    r = two_nn(x, drop_duplicates=True)
    # both copies of each of the 5 points go; a point whose two nearest are such a pair is a tie
    assert r.n_duplicates == 10 and r.n_points + r.n_ties == 195


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, float("nan")])
def test_discard_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match="discard_fraction"):
        two_nn(gaussian_subspace(100, 2, 5), discard_fraction=fraction)


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((2, 3)) + np.arange(2)[:, None], "rows of x"),
        (np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0], [2.0, 3.0]]), "NaN"),
        (np.array([[0.0, 1.0], [np.inf, 0.0], [1.0, 1.0], [2.0, 3.0]]), "infinite"),
        (np.zeros(5), "shape"),
    ],
)
def test_two_nn_bad_points(x, match):
    with pytest.raises(ValueError, match=match):
        two_nn(x)


def test_block_analysis_and_linear_dimensions():
    x = gaussian_subspace(800, 4, 20, seed=2)
    b = block_analysis(x, (1, 2, 4), seed=0)
    assert b.points_per_block.tolist() == [800, 400, 200] and b.sd[0] == 0
    assert np.all(np.abs(b.mean - 4) < 0.6)
    with pytest.raises(ValueError, match="points per block"):
        block_analysis(x, (400,))
    assert pca_dimension(x, 0.9) == 4  # isotropic in 4 dimensions: 4 components for 90 %
    assert pca_dimension(gaussian_subspace(500, 2, 30, seed=1), 0.9) == 2
    assert participation_ratio(x) == pytest.approx(4, rel=0.1)
    with pytest.raises(ValueError, match="variance"):
        pca_dimension(x, 1.5)


def test_docstring_examples_run():
    assert doctest.testmod(dimension_module, raise_on_error=True).failed == 0


# ---------------------------------------------------------------- digits and networks


@pytest.fixture(scope="module")
def digits():
    return load_digits_split(1400, seed=0)


def test_digits_split_and_label_corruption(digits):
    assert digits.x_train.shape == (1400, 64) and digits.x_test.shape == (397, 64)
    assert 0 <= digits.x_train.min() and digits.x_train.max() <= 1
    assert torch.equal(load_digits_split(1400, seed=0).y_train, digits.y_train)
    y = digits.y_train
    noisy = noisy_labels(y, 0.5, seed=3)
    changed = (noisy != y).float().mean().item()
    assert 0.5 * 0.8 < changed <= 0.5  # a redrawn label keeps its class one time in ten
    assert torch.equal(noisy_labels(y, 0.0), y)
    assert torch.equal(torch.bincount(shuffled_labels(y, seed=1)), torch.bincount(y))
    with pytest.raises(ValueError, match="fraction"):
        noisy_labels(y, 1.2)
    with pytest.raises(ValueError, match="n_train"):
        load_digits_split(1797)


def test_networks_record_every_layer_and_masks_silence_units(digits):
    net = mlp((16, 8), seed=0)
    x = digits.x_test[:20]
    acts = layer_activations(net, x)
    assert [a.shape[1] for a in acts] == [64, 16, 8, 10]
    off = {1: torch.zeros(8)}
    logits = net(x, off)
    assert torch.allclose(logits, net.head.bias.expand_as(logits))  # nothing reaches the read-out
    assert np.all(layer_activations(net, x, off)[2] == 0)
    with pytest.raises(ValueError, match="masks"):
        net(x, {5: torch.ones(3)})
    cnn = convnet((4, 8, 8), 12, seed=0, image_side=16)
    assert [a.shape[1] for a in layer_activations(cnn, x)] == [64, 4 * 256, 8 * 64, 8 * 64, 12, 10]
    assert [u.shape[1] for u in unit_activations(cnn, x)] == [4, 8, 8, 12]
    assert cnn.n_units(1) == 8
    assert torch.equal(mlp((16,), seed=3).blocks[0][0].weight, mlp((16,), seed=3).blocks[0][0].weight)


def test_train_classifier_learns_and_is_deterministic(digits):
    x, y = digits.x_train[:300], digits.y_train[:300]
    nets = [mlp((32,), seed=1) for _ in range(2)]
    hist = [train_classifier(n, x, y, epochs=15, seed=4, progress=False) for n in nets]
    assert len(hist[0].loss) == 15 * 3  # ceil(300 / 128) steps per epoch
    assert torch.equal(nets[0].blocks[0][0].weight, nets[1].blocks[0][0].weight)
    assert evaluate(nets[0], digits.x_test, digits.y_test)[0] > 0.8
    with pytest.raises(ValueError, match="one label per row"):
        train_classifier(nets[0], x, y[:10], epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(nets[0], torch.full((3, 64), float("nan")), y[:3])


# ---------------------------------------------------------------- single units


def test_selectivity_index_on_an_analytic_case():
    labels = np.repeat([0, 1, 2], 2)
    acts = np.zeros((6, 4))
    acts[labels == 0, 0] = 2.0  # responds to class 0 only: SI = 1
    acts[:, 1] = 1.0  # responds to every class alike: SI = 0
    acts[:, 2] = np.array([3.0, 1.0, 1.0])[labels]  # (3 - 1) / (3 + 1) = 0.5
    s = class_selectivity(acts, labels)  # unit 3 never responds: dead
    np.testing.assert_allclose(s.index, [1.0, 0.0, 0.5, 0.0])
    assert s.dead.tolist() == [False, False, False, True]
    assert s.preferred[[0, 2]].tolist() == [0, 0]
    np.testing.assert_allclose(s.class_means[:, 2], [3, 1, 1])


@pytest.mark.parametrize(
    "acts, labels, match",
    [
        (np.ones((6, 2)), np.arange(5) % 3, "labels must hold one class per row"),
        (np.full((6, 2), np.nan), np.arange(6) % 3, "NaN"),
        (np.ones((6, 2)), np.array([0, 0, 2, 2, 0, 2]), "every class"),
    ],
)
def test_selectivity_bad_input(acts, labels, match):
    with pytest.raises(ValueError, match=match):
        class_selectivity(acts, labels)


def test_ablation_orders_put_dead_units_last():
    labels = np.repeat(np.arange(3), 2)
    acts = np.zeros((6, 5))
    acts[:, 0] = [1, 1, 0, 0, 0, 0]  # SI 1
    acts[:, 2] = 1.0  # SI 0
    acts[:, 3] = [2, 2, 1, 1, 1, 1]  # SI 1/3
    s = class_selectivity(acts, labels)  # units 1 and 4 dead
    assert ablation_order(s, "most").tolist() == [0, 3, 2, 1, 4]
    assert ablation_order(s, "least").tolist() == [2, 3, 0, 1, 4]
    r = ablation_order(s, "random", seed=3)
    assert sorted(r[:3].tolist()) == [0, 2, 3] and r[3:].tolist() == [1, 4]
    with pytest.raises(ValueError, match="order"):
        ablation_order(s, "middle")


def test_single_unit_and_cumulative_ablation(digits):
    net = mlp((12,), seed=0)
    train_classifier(net, digits.x_train[:300], digits.y_train[:300], epochs=5, progress=False)
    x, y = digits.x_test[:100], digits.y_test[:100]
    acc, _ = evaluate(net, x, y)
    s = single_unit_ablation(net, 0, x, y)
    assert s.accuracy == acc and s.delta_loss.shape == (12,)
    dead = np.flatnonzero(unit_activations(net, x)[0].max(0) == 0)
    assert np.all(s.delta_loss[dead] == 0)
    curve = cumulative_ablation(net, 0, x, y, np.arange(12), [0, 4, 12])
    assert curve[0] == acc
    all_off = evaluate(net, x, y, {0: torch.zeros(12)})[0]
    assert curve[-1] == all_off
    with pytest.raises(ValueError, match="permutation"):
        cumulative_ablation(net, 0, x, y, np.zeros(12, dtype=int), [1])
    with pytest.raises(ValueError, match="layer"):
        single_unit_ablation(net, 1, x, y)


# ---------------------------------------------------------------- the simulated population


def test_population_rates_and_counts():
    z = np.random.default_rng(0).standard_normal((400, 20))
    p = simulate_population(z, n_neurons=30, n_trials=4, median_rate=8.0, max_rate=30.0, seed=1)
    assert p.counts.shape == (4, 400, 30) and p.rates.shape == (400, 30) and p.weights.shape == (20, 30)
    np.testing.assert_allclose(np.median(p.rates, 0), 8.0, rtol=1e-3)  # exact up to the even-count median
    assert np.quantile(p.rates, 0.999) == pytest.approx(30.0, rel=1e-6)
    assert p.counts.mean() == pytest.approx(0.1 * p.rates.mean(), rel=0.05)
    again = simulate_population(z, n_neurons=30, n_trials=4, median_rate=8.0, max_rate=30.0, seed=1)
    assert np.array_equal(again.counts, p.counts)
    assert p.mean_counts([0, 1]).shape == (400, 30)
    with pytest.raises(ValueError, match="vary"):
        simulate_population(np.ones((10, 3)))
    with pytest.raises(ValueError, match="max_rate"):
        simulate_population(z, median_rate=10.0, max_rate=5.0)


# ---------------------------------------------------------------- similarity


def test_rdm_and_rsa_invariances():
    g = np.random.default_rng(0)
    x = g.standard_normal((30, 12))
    d = rdm(x)
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0) and d.min() >= 0 and d.max() <= 2
    # per-pattern gain and offset, and a permutation of the features, change nothing
    y = (3.0 * x + g.standard_normal((30, 1)))[:, g.permutation(12)]
    np.testing.assert_allclose(rdm(y), d, atol=1e-12)
    assert compare_rdms(d, 2 * d + 1) == pytest.approx(1.0)
    assert compare_rdms(d, np.exp(d)) == pytest.approx(1.0)  # Spearman: any monotone map
    x[3] = 1.0
    with pytest.raises(ValueError, match="constant"):
        rdm(x)
    with pytest.raises(ValueError, match="same stimuli"):
        compare_rdms(d, d[:10, :10])


def test_noise_ceiling_and_permutation_null():
    g = np.random.default_rng(1)
    signal = g.standard_normal((40, 20))
    clean = noise_ceiling(np.repeat(signal[None], 4, axis=0))
    assert clean.split_half == pytest.approx(1.0) and clean.ceiling == pytest.approx(1.0)
    noisy = noise_ceiling(signal[None] + 2 * g.standard_normal((4, 40, 20)))
    assert noisy.split_half < noisy.reliability < noisy.ceiling < 1  # Spearman-Brown, then the square root
    with pytest.raises(ValueError, match="trials"):
        noise_ceiling(signal[None])
    a, b = rdm(signal), rdm(signal + g.standard_normal((40, 20)))
    null = rsa_permutation_null(a, b, n_permutations=200, seed=5)
    p = np.random.default_rng(5).permutation(40)
    iu = np.triu_indices(40, 1)
    assert null[0] == pytest.approx(spearmanr(a[iu], b[np.ix_(p, p)][iu]).statistic)
    assert abs(null.mean()) < 0.05 and compare_rdms(a, b) > np.quantile(null, 0.99)


def _cka_by_features(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_svcca_cka_and_unit_matching_invariances():
    g = np.random.default_rng(2)
    x = g.standard_normal((600, 10)) @ g.standard_normal((10, 24))  # rank 10 in 24 units
    q = random_invertible_map(24, condition=1.0, seed=0)
    a = random_invertible_map(24, condition=10.0, seed=1)
    assert np.linalg.cond(a) == pytest.approx(10.0) and np.allclose(q @ q.T, np.eye(24))
    fit, test = slice(0, 400), slice(400, 600)

    def sv(y, **kw):
        return svcca(x[fit], y[fit], x[test], y[test], **kw).mean

    assert sv(x @ q) == pytest.approx(1.0, abs=1e-9)
    assert sv(x @ a, variance=1.0, max_dims=None) == pytest.approx(1.0, abs=1e-9)  # CCA: any invertible map
    assert sv(g.standard_normal((600, 24))) < 0.3  # held out: unrelated data score low
    assert linear_cka(x, 2.5 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, x @ np.diag(np.linspace(0.1, 3, 24))) < 0.99  # not invariant to anisotropic scaling
    wide, other = g.standard_normal((20, 60)), g.standard_normal((20, 30)) ** 2  # 90 units > 2 x 20 stimuli
    assert linear_cka(wide, other) == pytest.approx(_cka_by_features(wide, other))  # the Gram-matrix branch
    assert unit_match(x, x).mean() == pytest.approx(1.0)
    assert unit_match(x, x[:, ::-1]).mean() == pytest.approx(1.0)  # a permutation of the units is no change
    assert unit_match(x, x @ q).mean() < 0.95
    dead = np.concatenate([x, np.zeros((600, 3))], axis=1)
    assert unit_match(dead, x).shape == (24,)  # units that never vary are left out
    with pytest.raises(ValueError, match="same stimuli"):
        svcca(x, x[:100])
    with pytest.raises(ValueError, match="x_test and y_test"):
        svcca(x[fit], x[fit], x[test])
