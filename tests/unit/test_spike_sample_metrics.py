"""Metrics of posterior spike samples and of connectivity estimates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroinverse.metrics import (
    ambiguous_pairs,
    connection_auc,
    connectivity_correlation,
    count_coverage,
    lag1_correlation,
    off_diagonal,
)


def test_ambiguous_pairs_and_lag1_correlation():
    p = torch.tensor([[0.1, 0.5, 0.5, 0.9, 0.4, 0.6], [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]])
    pairs = ambiguous_pairs(p)
    assert pairs.tolist() == [[0, 1], [0, 4], [1, 0], [1, 1]]
    assert ambiguous_pairs(p, buffers=(1, 1)).tolist() == [[0, 1], [1, 1]]
    # one spike in frame t or t + 1, never both: correlation −1; independent draws: ≈ 0
    either = torch.zeros(1, 400, 6)
    either[0, :200, 1], either[0, 200:, 2] = 1, 1
    assert lag1_correlation(either, [[0, 1]]) == (pytest.approx(-1.0), 1)
    g = torch.Generator().manual_seed(0)
    indep = (torch.rand(1, 20000, 6, generator=g) < 0.5).float()
    r, n = lag1_correlation(indep, [[0, 1], [0, 2]])
    assert n == 2 and abs(r) < 0.03
    r, n = lag1_correlation(torch.zeros(1, 10, 6), [[0, 1]])  # constant: undefined, left out
    assert np.isnan(r) and n == 0
    with pytest.raises(ValueError, match="binary"):
        lag1_correlation(torch.full((1, 3, 4), 0.5), [[0, 0]])
    with pytest.raises(ValueError, match="outside"):
        lag1_correlation(indep, [[0, 5]])


def test_count_coverage():
    truth = torch.zeros(1, 40)
    truth[0, [3, 12, 15]] = 1  # windows of 10 frames hold 1, 2, 0, 0 spikes
    exact = truth[:, None].repeat(1, 50, 1)
    cov = count_coverage(exact, truth, window=10)
    assert cov == {0: (1.0, 2), 1: (1.0, 1), 2: (1.0, 1)}
    empty = torch.zeros(1, 50, 40)
    cov = count_coverage(empty, truth, window=10)
    assert cov[0] == (1.0, 2) and cov[1] == (0.0, 1) and cov[2] == (0.0, 1)
    with pytest.raises(ValueError, match="shape"):
        count_coverage(empty, truth[:, :30])


def test_connectivity_scores():
    w = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, -1.5], [0.0, 0.0, 0.0]])
    assert off_diagonal(w).tolist() == [2.0, 0.0, 0.0, -1.5, 0.0, 0.0]
    assert connectivity_correlation(w, w) == pytest.approx(1.0)
    assert connection_auc(w, w) == 1.0 and connection_auc(-w, w) == 1.0  # |ŵ| scores detection
    assert connection_auc(np.ones((3, 3)), w) == 0.5
    with pytest.raises(ValueError, match="zero and non-zero"):
        connection_auc(w, np.ones((3, 3)))
    with pytest.raises(ValueError, match="square"):
        off_diagonal(np.zeros((2, 3)))
