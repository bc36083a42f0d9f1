"""The ``neuroinverse`` command line: argument checking and ``status``."""

from __future__ import annotations

import json
import os

import pytest
import torch

from neuroinverse import cli
from neuroinverse.chapters import chapter_slugs
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import PROFILES, Runtime


def test_unknown_chapter_exits_2_listing_chapters(capsys):
    assert cli.main(["run", "no-such-chapter"]) == 2
    err = capsys.readouterr().err
    assert "no-such-chapter" in err
    for slug in chapter_slugs():
        assert slug in err


@pytest.mark.parametrize("command", [["run", chapter_slugs()[0]], ["build"]])
def test_unknown_profile_exits_2_listing_profiles(capsys, command):
    assert cli.main([*command, "--profile", "huge"]) == 2
    err = capsys.readouterr().err
    assert "huge" in err
    for p in PROFILES:
        assert p in err


def test_cuda_without_cuda_exits_2(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main(["run", chapter_slugs()[0], "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_entry_point_exit_status(run_cli):
    """The module run as a program (not just main()) reports the usage error."""
    proc = run_cli("run", "no-such-chapter")
    assert proc.returncode == 2, proc.stderr
    assert chapter_slugs()[0] in proc.stderr


def _record(directory):
    rt = Runtime(profile="ci", seed=0, device=torch.device("cpu"), threads=1)
    res = ChapterResults(chapter_slugs()[0], rt, expected_not_reproduced=("C2",))
    res.add(Claim("C1", "correlation ≥ 0.8", paper="0.85", op=">=", threshold=0.8, measured=0.9))
    res.add(Claim("C2", "error ≤ 0.1", paper="0.05", op="<=", threshold=0.1, measured=0.2))
    res.add(Claim("C3", "paper scale", paper="0.9", op=">=", threshold=0.5, profiles=("full",)))
    res.save(directory)


def test_status_json_reports_recorded_verdicts(tmp_path, monkeypatch, capsys):
    _record(tmp_path)
    monkeypatch.setenv("NEUROINVERSE_RESULTS", str(tmp_path))
    assert cli.main(["status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = {r["claim"]: r for r in rows if r["chapter"] == chapter_slugs()[0]}
    assert {k: r["verdict"] for k, r in mine.items()} == {"C1": "held", "C2": "not reproduced", "C3": "full only"}
    assert mine["C1"]["paper"] == "0.85"
    assert mine["C1"]["ours"] == "0.900"
    assert mine["C1"]["profile"] == "ci"
    assert set(mine["C1"]) >= {"chapter", "claim", "paper", "ours", "rule", "profile", "verdict"}


def test_status_table_and_not_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROINVERSE_RESULTS", str(tmp_path))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    for slug in chapter_slugs():
        assert slug in out
    assert "not run" in out
    _record(tmp_path)
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "not reproduced" in out and "full only" in out and "held" in out


def test_status_json_from_subprocess(tmp_path, run_cli):
    """The JSON is all that goes to stdout (nothing else printed around it)."""
    _record(tmp_path)
    proc = run_cli("status", "--json", env={**os.environ, "NEUROINVERSE_RESULTS": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert any(r["verdict"] == "held" for r in json.loads(proc.stdout))


def test_smoke_needs_the_full_profile(capsys):
    assert cli.main(["run", chapter_slugs()[0], "--smoke"]) == 2
    assert "--profile full" in capsys.readouterr().err
