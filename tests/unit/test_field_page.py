"""The "Against the field's tools" page renders the recorded benchmark tables and names what is missing."""

from __future__ import annotations

from neuroinverse.field_page import COMPARISONS, field_page


def test_recorded_tables_are_shown_and_missing_ones_say_how_to_record_them(tmp_path):
    first, second = COMPARISONS[0], COMPARISONS[1]
    path = tmp_path / first.result
    path.parent.mkdir(parents=True)
    path.write_text("# A title the page drops\n\n| tool | C2ST |\n|---|---|\n| ours | 0.61 |\n")
    page = field_page(tmp_path, chapter_docs={first.chapter: f"chapters/x/{first.chapter}"})
    assert f"## {first.title}" in page and "| ours | 0.61 |" in page
    assert "A title the page drops" not in page
    assert f"[{first.chapter}](chapters/x/{first.chapter})" in page
    assert "not committed yet" in page  # tmp_path is not a git repository
    assert f"Not recorded yet: `{second.script}` writes `{second.result}`." in page
    assert page.startswith("# Against the field's tools")
