"""Recorded full-profile runs: what may be recorded, what is kept with it, and when it is stale."""

from __future__ import annotations

import shutil

import pytest
import torch

from neuroinverse import recorded
from neuroinverse.chapters import get_chapter
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import Runtime, repo_root

SLUG = "malis"


def _fake_root(tmp_path):
    """A book root with the chapter's source and a one-module library, so hashes are cheap."""
    chapter = get_chapter(SLUG)
    (tmp_path / chapter.source).parent.mkdir(parents=True)
    shutil.copy(repo_root() / chapter.source, tmp_path / chapter.source)
    lib = tmp_path / "lib" / "neuroinverse"
    lib.mkdir(parents=True)
    (lib / "a.py").write_text("x = 1\n")
    return tmp_path


def _results(tmp_path, *, profile="full", smoke=False, slug=SLUG):
    rt = Runtime(profile=profile, seed=0, device=torch.device("cpu"), threads=1, smoke=smoke)
    res = ChapterResults(slug, rt, require_controls=True)
    res.add(Claim("C1", "s", paper="p", op=">=", threshold=0.5, measured=0.9, control=0.1, control_label="x"))
    res.add(Claim("C7", "s", paper="p", op=">=", threshold=0.5, measured=0.2, control=0.1, control_label="x"))
    return res.save(tmp_path / "results")


def test_record_keeps_hardware_date_commit_and_a_hash_and_detects_staleness(tmp_path):
    root = _fake_root(tmp_path)
    path = recorded.record_results(SLUG, results=_results(tmp_path), root=root, now="2026-12-02 17:00 UTC")
    assert path == root / "recorded" / "full" / f"{SLUG}.nc"
    runs = recorded.recorded_runs(root=root)
    run = runs[SLUG]
    assert run.verdicts == {"C1": "held", "C7": "not reproduced"} and run.measured["C1"] == pytest.approx(0.9)
    assert run.measured_at == "2026-12-02 17:00 UTC" and "cpu" in run.measured_on and run.commit
    assert not run.stale
    # a change to the library makes the recorded run stale; so does one to the chapter
    (root / "lib" / "neuroinverse" / "a.py").write_text("x = 2\n")
    assert recorded.recorded_runs(root=root)[SLUG].stale
    recorded.record_results(SLUG, results=_results(tmp_path), root=root)
    assert not recorded.recorded_runs(root=root)[SLUG].stale
    with open(root / get_chapter(SLUG).source, "a") as f:
        f.write("# one more line\n")
    assert recorded.recorded_runs(root=root)[SLUG].stale


def test_record_refuses_ci_smoke_foreign_and_missing_results(tmp_path):
    root = _fake_root(tmp_path)
    with pytest.raises(ValueError, match="only full-profile runs"):
        recorded.record_results(SLUG, results=_results(tmp_path, profile="ci"), root=root)
    with pytest.raises(ValueError, match="smoke run"):
        recorded.record_results(SLUG, results=_results(tmp_path, smoke=True), root=root)
    with pytest.raises(ValueError, match="not 'malis'"):
        recorded.record_results(SLUG, results=_results(tmp_path, slug="mala"), root=root)
    with pytest.raises(FileNotFoundError, match="--profile full"):
        recorded.record_results(SLUG, results=tmp_path / "none.nc", root=root)
    with pytest.raises(ValueError, match="unknown chapter"):
        recorded.record_results("no-such-chapter", root=root)
    assert recorded.recorded_runs(root=root) == {}


def test_scorecard_shows_recorded_verdicts_beside_ci_with_where_and_when(monkeypatch):
    from neuroinverse import scorecard

    rows = [
        dict(
            chapter=SLUG,
            claim=c,
            statement="s",
            paper="p",
            ours="–",
            control="–",
            rule="≥ 0.5",
            profile="full",
            verdict="full only",
        )
        for c in ("C1", "C7")
    ]
    monkeypatch.setattr(scorecard, "scorecard_rows", lambda directory=None: rows)
    run = recorded.RecordedRun(
        slug=SLUG,
        measured_on="NVIDIA H200 (cuda)",
        measured_at="2026-12-02 17:00 UTC",
        commit="abc123",
        stale=True,
        verdicts={"C1": "held", "C7": "not reproduced"},
        measured={"C1": 0.9, "C7": 0.2},
    )
    page = scorecard.scorecard_page(chart=None, recorded={SLUG: run})
    lines = [ln for ln in page.splitlines() if ln.startswith(f"| {SLUG} |")]
    assert "{bdg-secondary}`full only` | 0.9 {bdg-primary}`held` (stale) |" in lines[0]
    assert "{bdg-danger}`not reproduced` (stale) |" in lines[1]
    assert "NVIDIA H200 (cuda) | 2026-12-02 17:00 UTC | `abc123` | {bdg-warning}`stale` |" in page
    fresh = scorecard.scorecard_page(chart=None, recorded={SLUG: run.__class__(**{**run.__dict__, "stale": False})})
    assert "(stale)" not in fresh and "{bdg-primary}`current`" in fresh
    assert "No chapter has a recorded full-profile run yet." in scorecard.scorecard_page(chart=None, recorded={})


def test_cli_record_needs_the_full_profile(capsys):
    from neuroinverse.cli import main

    assert main(["run", SLUG, "--record"]) == 2
    assert "--record keeps full-profile results" in capsys.readouterr().err
    assert main(["run", SLUG, "--profile", "full", "--smoke", "--record"]) == 2
