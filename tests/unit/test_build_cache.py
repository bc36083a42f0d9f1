"""Incremental builds: the cache key sees every input of a chapter, and a build reuses only unchanged chapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuroinverse import book, build_cache
from neuroinverse.build_cache import CacheRecord, chapter_key, read_record, reusable, write_record
from neuroinverse.chapters import Chapter


def _fake_root(tmp_path: Path) -> tuple[Path, Chapter]:
    (tmp_path / "lib" / "neuroinverse" / "sub").mkdir(parents=True)
    (tmp_path / "lib" / "neuroinverse" / "core.py").write_text("X = 1\n")
    (tmp_path / "lib" / "neuroinverse" / "sub" / "mod.py").write_text("Y = 2\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "registry").write_text("")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "one.py").write_text("# %%\nprint(1)\n")
    return tmp_path, Chapter("one", "Part", "One", "Paper 2020", "chapters/one.py")


def test_the_key_changes_with_every_input_and_only_then(tmp_path):
    root, ch = _fake_root(tmp_path)
    kw = dict(profile="ci", seed=0, device="cpu", root=root)
    base = chapter_key(ch, **kw)
    assert chapter_key(ch, **kw) == base  # stable
    for change in (dict(profile="full"), dict(seed=1), dict(device="cuda"), dict(smoke=True)):
        assert chapter_key(ch, **{**kw, **change}) != base, change
    edits = [
        root / "chapters" / "one.py",
        root / "lib" / "neuroinverse" / "sub" / "mod.py",
        root / "data" / "registry",
    ]
    for path in edits:
        old = path.read_text()
        path.write_text(old + "# one more line\n")
        assert chapter_key(ch, **kw) != base, path
        path.write_text(old)
    assert chapter_key(ch, **kw) == base
    (root / "lib" / "neuroinverse" / "new.py").write_text("")  # a new library file counts too
    assert chapter_key(ch, **kw) != base


def test_the_key_sees_the_cpu(tmp_path, monkeypatch):
    from neuroinverse import build_cache

    root, ch = _fake_root(tmp_path)
    base = chapter_key(ch, profile="ci", seed=0, device="cpu", root=root)
    monkeypatch.setattr(build_cache, "cpu_model", lambda: "another CPU, AVX-512")
    assert chapter_key(ch, profile="ci", seed=0, device="cpu", root=root) != base


def test_records_round_trip_and_reuse_needs_the_same_key_and_the_outputs(tmp_path):
    rec = CacheRecord("one", "abc", "ci", 12.5, 800.0, "2026-12-02 13:00")
    write_record(rec, tmp_path)
    assert read_record("one", tmp_path) == rec
    assert read_record("two", tmp_path) is None
    (tmp_path / "_build" / "cache" / "bad.json").write_text("{not json")
    assert read_record("bad", tmp_path) is None
    out = tmp_path / "out.ipynb"
    assert not reusable(rec, "abc", [out])  # outputs missing
    out.write_text("{}")
    assert reusable(rec, "abc", [out]) and not reusable(rec, "abd", [out]) and not reusable(None, "abc", [out])


def test_a_build_runs_only_the_chapters_whose_key_changed(tmp_path, monkeypatch):
    root, one = _fake_root(tmp_path)
    (root / "chapters" / "two.py").write_text("# %%\nprint(2)\n")
    two = Chapter("two", "Part", "Two", "Paper 2021", "chapters/two.py")
    monkeypatch.setenv("NEUROINVERSE_RESULTS", str(root / "_build" / "results"))
    ran: list[str] = []

    def fake_run(cmd, cwd, stdout, stderr, env, check):
        slug = cmd[cmd.index("run") + 1]
        ran.append(slug)
        ch = {"one": one, "two": two}[slug]
        book.executed_path(ch, root).parent.mkdir(parents=True, exist_ok=True)
        book.executed_path(ch, root).write_text(json.dumps({"cells": []}))
        (root / "_build" / "results").mkdir(parents=True, exist_ok=True)
        (root / "_build" / "results" / f"{slug}.nc").write_text("")
        key = chapter_key(ch, profile="ci", seed=0, device="cpu", root=root)
        write_record(CacheRecord(slug, key, "ci", 1.0, 100.0, "now"), root)

        class Done:
            returncode = 0

        return Done()

    monkeypatch.setattr(build_cache.subprocess, "run", fake_run)
    lines: list[str] = []
    first = build_cache.execute_chapters([one, two], jobs=2, root=root, report=lines.append)
    assert sorted(ran) == ["one", "two"] and all(o.ok and not o.reused for o in first)
    ran.clear()
    second = build_cache.execute_chapters([one, two], jobs=2, root=root, report=lines.append)
    assert ran == [] and all(o.reused for o in second) and any("reused" in line for line in lines)
    (root / "chapters" / "two.py").write_text("# %%\nprint(22)\n")  # a one-line change in one chapter
    third = build_cache.execute_chapters([one, two], jobs=1, root=root, report=lines.append)
    assert ran == ["two"] and [o.reused for o in third] == [True, False]
    ran.clear()
    build_cache.execute_chapters([one, two], jobs=1, root=root, force=True, report=lines.append)
    assert sorted(ran) == ["one", "two"]
    with pytest.raises(ValueError, match="jobs"):
        build_cache.execute_chapters([one], jobs=0, root=root)


def test_default_jobs_is_at_least_one_and_at_most_the_cores():
    import os

    assert 1 <= build_cache.default_jobs() <= (os.cpu_count() or 1)
    assert build_cache.default_jobs(mem_per_job_gib=1e9) == 1  # memory caps the jobs
