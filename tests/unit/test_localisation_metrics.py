"""Localisation metrics: matching, Jaccard, RMSE and efficiency on hand-built tables."""

import math

import numpy as np
import pytest
import torch

from neuroinverse.metrics import (
    efficiency,
    isolated,
    localisation_scores,
    match_localisations,
    render_localisations,
    uncertainty_calibration,
)
from neuroinverse.simulators import EmitterTable


def tab(frame, x, y, z=None, n_frames=2, pixel_size=(100.0, 100.0)):
    x = torch.tensor(x, dtype=torch.float64)
    return EmitterTable(
        frame=torch.tensor(frame, dtype=torch.long),
        x=x,
        y=torch.tensor(y, dtype=torch.float64),
        z=torch.zeros_like(x) if z is None else torch.tensor(z, dtype=torch.float64),
        photons=torch.ones_like(x),
        n_frames=n_frames,
        pixel_size=pixel_size,
    )


def test_efficiency_reference_value():
    # sanity number of the SMLM challenge / DECODE test-suite
    assert efficiency(0.91204, 32.077, alpha=1.0) == pytest.approx(0.66739, abs=1e-5)
    assert efficiency(1.0, 0.0) == 1.0
    assert efficiency(0.5, 100.0, alpha=0.5) == pytest.approx(1 - math.sqrt(0.25 + 0.25))


def test_scores_on_a_hand_built_case():
    truth = tab([0, 0, 1, 1], [1.0, 5.0, 2.0, 8.0], [1.0, 5.0, 2.0, 8.0])
    # frame 0: two hits (30 nm in x; 40 nm in y); frame 1: one hit (0 nm) and a FP 3 px away;
    # a prediction at (1, 1) in frame 1 is not a match for the truth at (1, 1) in frame 0
    pred = tab([0, 0, 1, 1, 1], [1.3, 5.0, 2.0, 8.0 + 3.0, 1.0], [1.0, 5.4, 2.0, 8.0, 1.0])
    s = localisation_scores(pred, truth)
    assert (s.tp, s.fp, s.fn) == (3, 2, 1)
    assert s.jaccard == pytest.approx(3 / 6)
    assert s.precision == pytest.approx(3 / 5) and s.recall == pytest.approx(3 / 4)
    assert s.rmse_lat == pytest.approx(math.sqrt((30**2 + 40**2) / 3))
    assert s.rmse_ax == 0.0
    assert s.efficiency_lat == pytest.approx(efficiency(0.5, s.rmse_lat))


def test_axial_radius_and_rmse_ax():
    truth = tab([0, 0], [1.0, 9.0], [1.0, 1.0], z=[0.0, 0.0], n_frames=1)
    pred = tab([0, 0], [1.0, 9.0], [1.0, 1.0], z=[300.0, 600.0], n_frames=1)
    s = localisation_scores(pred, truth)
    assert (s.tp, s.fp, s.fn) == (1, 1, 1)
    assert s.rmse_ax == pytest.approx(300.0)
    assert s.efficiency_3d == pytest.approx((s.efficiency_lat + s.efficiency_ax) / 2)


def test_hungarian_beats_greedy_on_a_crossing():
    # truth at 0 and 220 nm, predictions at 120 and 450 nm: the closest pair (120↔220, 100 nm)
    # blocks both other admissible pairs for the greedy matcher
    truth = tab([0, 0], [0.0, 2.2], [0.0, 0.0], n_frames=1)
    pred = tab([0, 0], [1.2, 4.5], [0.0, 0.0], n_frames=1)
    g = match_localisations(pred, truth, method="greedy")
    h = match_localisations(pred, truth, method="hungarian")
    assert g.tp == 1
    assert h.tp == 2  # optimal: 1.2↔0.0 (120 nm), 4.5↔2.2 (230 nm)
    assert np.abs(h.delta_nm[:, 0]).max() <= 250


def test_render_localisations_sums_to_count():
    t = tab([0, 1, 1], [2.0, 5.0, 5.0], [3.0, 4.0, 4.0])
    img = render_localisations(t, shape=(10, 10), upsample=4, sigma_nm=20.0)
    assert img.shape == (40, 40)
    assert img.sum().item() == pytest.approx(3.0, rel=1e-3)
    r, c = divmod(int(img.argmax()), 40)
    # the pair at (x, y) = (5, 4) px sits at fine coordinates (21.5, 17.5)
    assert r in (17, 18) and c in (21, 22)


def test_bad_input():
    truth = tab([0], [1.0], [1.0])
    with pytest.raises(ValueError, match="pixel sizes"):
        localisation_scores(tab([0], [1.0], [1.0], pixel_size=(160.0, 160.0)), truth)
    with pytest.raises(ValueError, match="empty"):
        localisation_scores(truth, EmitterTable.empty(2))
    with pytest.raises(ValueError, match="frames"):
        localisation_scores(tab([0], [1.0], [1.0], n_frames=3), truth)
    with pytest.raises(ValueError, match="method"):
        match_localisations(truth, truth, method="nearest")
    with pytest.raises(ValueError, match="jaccard"):
        efficiency(1.2, 10.0)
    with pytest.raises(ValueError, match="empty"):
        render_localisations(EmitterTable.empty(1), shape=(4, 4))
    # no predictions at all: every truth is a false negative
    s = localisation_scores(EmitterTable.empty(2), truth)
    assert (s.tp, s.fp, s.fn, s.jaccard) == (0, 0, 1, 0.0) and math.isnan(s.rmse_lat)


def test_isolated_mask_counts_neighbours_in_the_same_frame_only():
    t = tab([0, 0, 0, 1, 1], [1.0, 2.5, 10.0, 1.0, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert isolated(t, radius=2.0).tolist() == [False, False, True, True, True]  # 2.0 apart is not < 2
    assert isolated(t, radius=2.5).tolist() == [False, False, True, False, False]
    dim = tab([1], [2.0], [1.5])  # an unlabelled neighbour counts when passed as `others`
    assert isolated(t, radius=2.0, others=dim).tolist() == [True, True, True, False, False]
    with pytest.raises(ValueError, match="radius"):
        isolated(t, radius=0.0)


def test_uncertainty_calibration_truth_mask_keeps_only_selected_true_positives():
    rng = np.random.default_rng(0)
    n = 64
    x = torch.tensor(rng.uniform(0, 100, n))
    truth = tab(list(range(n)), x.tolist(), [5.0] * n, n_frames=n)
    err = torch.tensor(rng.normal(0, 0.1, n))
    pred = tab(list(range(n)), (x + err).tolist(), [5.0] * n, n_frames=n)
    pred.sigma_x = torch.tensor(rng.uniform(0.05, 0.15, n))
    pred.sigma_y = pred.sigma_x.clone()
    mask = np.arange(n) % 2 == 0
    full = uncertainty_calibration(pred, truth, n_bins=2)
    half = uncertainty_calibration(pred, truth, n_bins=2, truth_mask=mask)
    assert len(full["z_x"]) == n and len(half["z_x"]) == n // 2
    assert half["z_x"] == pytest.approx(err.numpy()[mask] / pred.sigma_x.numpy()[mask])
    with pytest.raises(ValueError, match="truth_mask"):
        uncertainty_calibration(pred, truth, n_bins=2, truth_mask=mask[:-1])
