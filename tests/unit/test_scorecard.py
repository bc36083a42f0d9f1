"""The scorecard page: a summary per chapter, a chart, badges, and links to the chapters' claims."""

from __future__ import annotations


def test_scorecard_page_summarises_links_and_badges_every_claim(tmp_path, monkeypatch):
    """One summary row per chapter, a badge per verdict, a link from each claim to its chapter's table."""
    from neuroinverse import scorecard
    from neuroinverse.chapters import CHAPTERS

    rows = [
        dict(
            chapter=CHAPTERS[0].slug,
            claim="C1",
            statement="a | b",
            paper="p",
            ours="1.0",
            control="0.0",
            rule="≥ 0.5",
            profile="ci",
            verdict="held",
        ),
        dict(
            chapter=CHAPTERS[0].slug,
            claim="C2",
            statement="s",
            paper="p",
            ours="0.1",
            control="0.2",
            rule="≥ 0.5",
            profile="ci",
            verdict="not reproduced",
        ),
    ]
    monkeypatch.setattr(scorecard, "scorecard_rows", lambda directory=None: rows)
    page = scorecard.scorecard_page()
    first = CHAPTERS[0]
    assert f"| {first.part} | [{first.slug}]({first.notebook[:-6]}) | 1 | 0 | 1 | 0 |" in page
    assert f"{{ref}}`C1 <claims-{first.slug}>`" in page and "{bdg-primary}`held`" in page
    assert "{bdg-danger}`not reproduced`" in page and "a \\| b" in page
    assert "**1 held, 0 inconclusive, 1 not reproduced, 0 full only**" in page
    png = scorecard.draw_chart(rows, tmp_path / "chart.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_claims_target_goes_before_the_claims_table():
    from neuroinverse.scorecard import add_claims_target

    nb = {
        "cells": [
            {"cell_type": "code", "source": "x = 1"},
            {"cell_type": "code", "source": "print(res.table(timings=False))"},
        ]
    }
    assert add_claims_target(nb, "apt", scorecard_link="../../scorecard.md", claims_page="../../claims.md")
    assert "[how to read them](../../claims.md)" in nb["cells"][1]["source"]
    assert nb["cells"][1]["source"].startswith("(claims-apt)=") and "../../scorecard.md" in nb["cells"][1]["source"]
    assert not add_claims_target({"cells": []}, "apt")
