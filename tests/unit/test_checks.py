"""Tests of the shared argument checks: each accepts what it documents and names the argument otherwise."""

import math

import numpy as np
import pytest
import torch

from neuroinverse._checks import (
    check_choice,
    check_positive,
    check_positive_int,
    check_probability,
    check_range,
    check_rows,
)


def test_check_range_closed_and_open_ends():
    assert check_range(0, "p", 0.0, 1.0) == 0.0 and check_range(1, "p", 0.0, 1.0) == 1.0
    assert check_range(-2, "x", -3.0, 3.0) == -2.0
    assert check_range(0.5, "p", 0.0, 1.0, low_open=True, high_open=True) == 0.5
    for kw, bad, shown in (
        (dict(low_open=True), 0.0, r"\(0.0, 1.0\]"),
        (dict(high_open=True), 1.0, r"\[0.0, 1.0\)"),
        (dict(low_open=True, high_open=True), 1.0, r"\(0.0, 1.0\)"),
        ({}, 1.5, r"\[0.0, 1.0\]"),
        ({}, math.nan, "lie in"),
        ({}, "a", "number"),
    ):
        with pytest.raises(
            ValueError, match=f"frac must .*{shown}" if shown not in ("number",) else "frac must be a number"
        ):
            check_range(bad, "frac", 0.0, 1.0, **kw)


def test_check_positive_int_refuses_bools_floats_and_small_values():
    assert check_positive_int(3, "n") == 3 and check_positive_int(np.int64(2), "n") == 2
    assert check_positive_int(0, "n", minimum=0) == 0
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            check_positive_int(bad, "n")


def test_check_positive_probability_and_choice():
    assert check_positive(2, "s") == 2.0 and check_positive(0, "s", allow_zero=True) == 0.0
    with pytest.raises(ValueError, match="s must be positive"):
        check_positive(0, "s")
    with pytest.raises(ValueError, match="s must be non-negative"):
        check_positive(-1e-9, "s", allow_zero=True)
    assert check_probability(0.25, "p") == 0.25
    with pytest.raises(ValueError, match="p must lie in"):
        check_probability(1.01, "p")
    assert check_choice(None, "kernel", (None, "gaussian")) is None
    with pytest.raises(ValueError, match="kernel must be one of None, 'gaussian'; got 'box'"):
        check_choice("box", "kernel", (None, "gaussian"))


def test_check_rows_names_the_argument_and_the_expected_width():
    assert check_rows(torch.zeros(4, 2), "theta", 2).shape == (4, 2)
    with pytest.raises(ValueError, match="theta"):
        check_rows(torch.zeros(4, 3), "theta", 2)
