"""Claims, verdicts, the netCDF round trip, check() and the scorecard."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuroinverse.chapters import chapter_slugs
from neuroinverse.results import (
    NOT_REPRODUCED,
    ChapterResults,
    Claim,
    ClaimsNotHeld,
    load_all_results,
    load_results,
    scorecard_markdown,
    scorecard_rows,
)
from neuroinverse.runtime import Runtime


def _rt(profile="ci"):
    return Runtime(profile=profile, seed=0, device=torch.device("cpu"), threads=1)


@pytest.mark.parametrize(
    "op, threshold, measured, verdict",
    [
        (">=", 0.8, 0.9, "held"),
        (">=", 0.8, 0.8, "held"),
        (">=", 0.8, 0.7, "not reproduced"),
        ("<=", 0.1, 0.05, "held"),
        ("<=", 0.1, 0.1, "held"),
        ("<=", 0.1, 0.2, "not reproduced"),
        ("in", (1.0, 2.0), 1.5, "held"),
        ("in", (1.0, 2.0), 1.0, "held"),
        ("in", (1.0, 2.0), 2.0, "held"),
        ("in", (1.0, 2.0), 2.5, "not reproduced"),
        ("in", (1.0, 2.0), 0.5, "not reproduced"),
    ],
)
def test_verdicts(op, threshold, measured, verdict):
    c = Claim("C", "s", paper="p", op=op, threshold=threshold, measured=measured)
    assert c.verdict("ci") == verdict
    assert c.verdict("full") == verdict


def test_full_only_claim():
    c = Claim("C", "s", paper="p", op=">=", threshold=0.5, measured=None, profiles=("full",))
    assert c.verdict("ci") == "full only"
    c = Claim("C", "s", paper="p", op=">=", threshold=0.5, measured=0.1, profiles=("full",))
    assert c.verdict("ci") == "full only"
    assert c.verdict("full") == "not reproduced"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(op="==", threshold=1.0),
        dict(op=">", threshold=1.0),
        dict(op="in", threshold=1.0),
        dict(op="in", threshold=(2.0, 1.0)),
        dict(op="in", threshold=(1.0, 2.0, 3.0)),
        dict(op=">=", threshold=(1.0, 2.0)),
        dict(op=">=", threshold=1.0, measured=float("nan")),
        dict(op=">=", threshold=1.0, measured=np.nan, profiles=("ci",)),
        dict(op=">=", threshold=1.0, profiles=("huge",)),
    ],
)
def test_bad_claims_raise(kwargs):
    with pytest.raises(ValueError):
        Claim("C", "s", paper="p", **kwargs)


def test_add_rejects_duplicates_and_missing_measurement():
    res = ChapterResults("x", _rt())
    # nothing returned: a chapter cell ending in res.add(...) must not print a Claim repr
    assert res.add(Claim("C1", "s", paper="p", op=">=", threshold=0.0, measured=1.0)) is None
    assert [c.id for c in res.claims] == ["C1"]
    with pytest.raises(ValueError):
        res.add(Claim("C1", "s", paper="p", op=">=", threshold=0.0, measured=1.0))
    with pytest.raises(ValueError):
        res.add(Claim("C2", "s", paper="p", op=">=", threshold=0.0, measured=None))


def _results(expected=()):
    res = ChapterResults(chapter_slugs()[0], _rt(), expected_not_reproduced=expected)
    res.add(Claim("C1", "corr ≥ 0.8 | all cells", paper="0.85 (ref-code)", op=">=", threshold=0.8, measured=0.875))
    res.add(Claim("C2", "error in band", paper="1.5", op="in", threshold=(1.0, 2.0), measured=2.5))
    res.add(Claim("C3", "paper scale", paper="0.9", op="<=", threshold=0.5, profiles=("full",)))
    return res


def test_save_load_round_trip(tmp_path):
    res = _results()
    path = res.save(tmp_path)
    assert path == tmp_path / f"{res.slug}.nc"
    loaded = load_results(path)
    expected = res.to_dataset()
    assert list(loaded.claim.values) == ["C1", "C2", "C3"]
    for var in ("statement", "paper", "rule", "checked_at", "verdict"):
        assert [str(v) for v in loaded[var].values] == [str(v) for v in expected[var].values]
    for var in ("measured", "threshold_low", "threshold_high"):
        np.testing.assert_array_equal(loaded[var].values, expected[var].values)
    assert [str(v) for v in loaded.verdict.values] == ["held", "not reproduced", "full only"]
    assert loaded.attrs["profile"] == "ci"
    assert loaded.attrs["chapter"] == res.slug
    assert math.isnan(float(loaded.measured.sel(claim="C3")))
    assert set(load_all_results(tmp_path)) == {res.slug}


def test_save_needs_claims(tmp_path):
    with pytest.raises(ValueError):
        ChapterResults("x", _rt()).save(tmp_path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_results(tmp_path / "nothing.nc")


def test_check_raises_on_unexpected_failure():
    with pytest.raises(ClaimsNotHeld, match="C2"):
        _results().check()


def test_check_accepts_documented_failure():
    _results(expected=("C2",)).check()  # raises if C2 were not accepted


def test_check_rejects_unknown_expected_ids():
    with pytest.raises(ValueError):
        _results(expected=("C2", "C9")).check()


def test_table_shows_every_claim():
    table = _results().table()
    for token in ("C1", "C2", "C3", "held", "not reproduced", "full only", "(profile: ci)"):
        assert token in table


def test_scorecard(tmp_path):
    _results().save(tmp_path)
    md = scorecard_markdown(tmp_path)
    slug = chapter_slugs()[0]
    lines = [ln for ln in md.splitlines() if ln.startswith(f"| {slug} |")]
    assert len(lines) == 3
    assert any("| C1 |" in ln and "| held |" in ln for ln in lines)
    assert any("| C2 |" in ln and "| not reproduced |" in ln for ln in lines)
    assert "corr ≥ 0.8 \\| all cells" in md  # pipes escaped inside a cell
    assert "1 held, 0 inconclusive (the control passes too), 1 not reproduced, 1" in md
    rows = scorecard_rows(tmp_path)
    assert [r["claim"] for r in rows if r["chapter"] == slug] == ["C1", "C2", "C3"]


def test_scorecard_without_results(tmp_path):
    rows = scorecard_rows(tmp_path)
    assert rows and all(r["verdict"] == "not run" for r in rows)


def test_a_claim_whose_control_passes_cannot_be_held():
    kw = dict(statement="s", paper="p", op=">=", threshold=0.5, measured=0.9, control_label="shuffled")
    assert Claim("A", control=0.1, **kw).verdict("ci") == "held"
    assert Claim("B", control=0.6, **kw).verdict("ci") == "inconclusive"
    assert Claim("C", control=0.5, **kw).verdict("ci") == "inconclusive"  # the boundary passes
    # our value failing is "not reproduced" whatever the control does
    assert Claim("D", **{**kw, "measured": 0.4}, control=0.9).verdict("ci") == "not reproduced"
    interval = Claim(
        "E", "s", paper="p", op="in", threshold=(0.8, 1.25), measured=1.0, control=1.2, control_label="jittered"
    )
    assert interval.verdict("ci") == "inconclusive"


def test_control_needs_a_label_and_excludes_exact():
    with pytest.raises(ValueError, match="control_label"):
        Claim("A", "s", paper="p", op=">=", threshold=0.5, measured=0.9, control=0.1)
    with pytest.raises(ValueError, match="not both"):
        Claim(
            "A", "s", paper="p", op=">=", threshold=0.5, measured=0.9, control=0.1, control_label="x", exact="identity"
        )
    with pytest.raises(ValueError, match="NaN"):
        Claim("A", "s", paper="p", op=">=", threshold=0.5, measured=0.9, control=float("nan"), control_label="x")


def test_require_controls_and_inconclusive_fails_check(tmp_path):
    rt = _rt()
    res = ChapterResults("deepspike", rt, require_controls=True)
    with pytest.raises(ValueError, match="neither a control nor an exact-rule reason"):
        res.add(Claim("A", "s", paper="p", op=">=", threshold=0.5, measured=0.9))
    res.add(Claim("B", "s", paper="p", op=">=", threshold=0.5, measured=0.9, control=0.7, control_label="wrong"))
    res.add(Claim("C", "s", paper="p", op="<=", threshold=0, measured=0, exact="counting identity"))
    res.add(Claim("F", "s", paper="p", op=">=", threshold=0.5, profiles=("full",)))  # not measured at ci
    assert res.verdicts() == {"B": "inconclusive", "C": "held", "F": "full only"}
    with pytest.raises(ClaimsNotHeld, match="B: inconclusive.*control 0.700"):
        res.check()
    table = res.table()
    assert "control" in table.splitlines()[0] and "0.700" in table and "B: wrong" in table
    ds = load_results(res.save(tmp_path))
    assert float(ds.control.sel(claim="B")) == 0.7 and str(ds.exact.sel(claim="C").values) == "counting identity"
    rows = {r["claim"]: r for r in scorecard_rows(tmp_path)}
    assert (
        rows["B"]["control"] == "0.700" and rows["C"]["control"] == "exact" and rows["B"]["verdict"] == "inconclusive"
    )
    ChapterResults("deepspike", rt, expected_not_reproduced=("B",), claims=res.claims).check()


def test_smoke_run_does_not_judge_verdicts():
    rt = Runtime(profile="full", seed=0, device=torch.device("cpu"), threads=1, smoke=True)
    res = ChapterResults("demo", rt, require_controls=True)
    res.add(
        Claim(
            "F1",
            "a full-only claim",
            paper="x",
            op=">=",
            threshold=1.0,
            profiles=("full",),
            measured=0.0,
            control=0.0,
            control_label="wrong answer",
        )
    )
    assert res.verdicts()["F1"] == NOT_REPRODUCED
    res.check()  # a smoke run's verdicts mean nothing: not raised
    with pytest.raises(ValueError, match="control"):  # but a missing control is still refused
        res.add(Claim("F2", "no control", paper="x", op=">=", threshold=1.0, profiles=("full",), measured=1.0))


def test_glue_values_glue_each_name_once_without_the_claims(monkeypatch):
    import myst_nb

    from neuroinverse.results import glue_values

    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: glued.append((name, value, display)))
    glue_values(a=1.5, b="x")
    assert glued == [("a", 1.5, False), ("b", "x", False)]
