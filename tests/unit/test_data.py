"""The shipped-data registry: the book's data/ agrees with it, and mismatches are caught."""

import hashlib

import pytest

from neuroinverse.data import data_path, verify_registry


def test_book_data_matches_registry():
    assert verify_registry() == []


def test_registry_catches_unlisted_missing_and_altered_files(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    (tmp_path / "registry").write_text(f"# comment\n{digest}  a.txt\n{'0' * 64}  gone.txt\n")
    (tmp_path / "extra.bin").write_bytes(b"x")
    assert data_path("a.txt", tmp_path) == tmp_path / "a.txt"
    assert sorted(verify_registry(tmp_path)) == ["missing file: gone.txt", "unlisted file: extra.bin"]
    (tmp_path / "a.txt").write_text("changed")
    with pytest.raises(ValueError, match="sha256"):
        data_path("a.txt", tmp_path)
    with pytest.raises(ValueError, match="not in data/registry"):
        data_path("nope.txt", tmp_path)


def test_malformed_registry_line(tmp_path):
    (tmp_path / "registry").write_text("deadbeef a.txt\n")
    with pytest.raises(ValueError, match="line 1"):
        verify_registry(tmp_path)
