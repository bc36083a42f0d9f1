"""What staging adds to each chapter page: the results box, its links, and the claims target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from neuroinverse.book import add_glance, source_links
from neuroinverse.chapters import get_chapter
from neuroinverse.results import glance_markdown


def _results(verdicts: list[str]) -> xr.Dataset:
    n = len(verdicts)
    return xr.Dataset(
        {
            "measured": ("claim", np.arange(n, dtype=float)),
            "control": ("claim", np.full(n, 0.5)),
            "control_label": ("claim", np.array(["a wrong answer"] * n, dtype=object)),
            "rule": ("claim", np.array(["≥ 1.000"] * n, dtype=object)),
            "statement": ("claim", np.array([f"statement {i}" for i in range(n)], dtype=object)),
            "verdict": ("claim", np.array(verdicts, dtype=object)),
        },
        coords={"claim": [f"C{i}" for i in range(n)]},
        attrs={"profile": "ci"},
    )


def test_glance_counts_verdicts_and_gives_a_reason_for_each_failure():
    text = glance_markdown(_results(["held", "not reproduced", "inconclusive", "full only"]), claims_page="../c.md")
    assert text.startswith(":::{admonition} Results at a glance") and text.endswith(":::\n")
    assert "**1 held, 1 inconclusive, 1 not reproduced, 1 full only**" in text
    assert "**C1** not reproduced: ours 1.000 fails the rule ≥ 1.000 (statement 1)." in text
    assert "**C2** inconclusive: ours 2.000 meets ≥ 1.000, but so does the control (a wrong answer: 0.500)" in text
    assert "C0" not in text.split("\n\n", 1)[1]  # a claim that held needs no line
    assert "[how to read the claims](../c.md)" in text
    assert "Every claim checked at this profile held." in glance_markdown(_results(["held", "full only"]))


def test_the_box_goes_after_the_title_and_carries_the_links(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROINVERSE_RESULTS", str(tmp_path))
    nb = {"cells": [{"cell_type": "markdown", "source": "# Title"}, {"cell_type": "code", "source": "x = 1"}]}
    assert not add_glance(nb, "apt")  # no results recorded: nothing added
    _results(["held"]).to_netcdf(tmp_path / "apt.nc", engine="h5netcdf")
    assert add_glance(nb, "apt", links="Run it yourself: [here](x)")
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "markdown", "code"]
    assert "Results at a glance" in nb["cells"][1]["source"] and "[here](x)" in nb["cells"][1]["source"]
    assert nb["cells"][1]["source"].rstrip().endswith(":::")


def test_source_links_point_at_the_repository_and_binder(tmp_path):
    chapter = get_chapter("apt")
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/org/book\n  branch: dev\n")
    links = source_links(chapter, tmp_path)
    assert f"(https://github.com/org/book/blob/dev/{chapter.source})" in links
    assert f"(https://github.com/org/book/blob/dev/{chapter.notebook})" in links
    assert "(https://mybinder.org/v2/gh/org/book/dev?labpath=chapters%2Fsbi%2Fapt.ipynb)" in links
    (tmp_path / "_config.yml").write_text("title: no repository\n")
    assert source_links(chapter, Path(tmp_path)) == ""


def test_mentions_of_other_chapters_become_links():
    from neuroinverse.book import link_chapter_mentions

    nb = {
        "cells": [
            {
                "cell_type": "markdown",
                "source": "As in the DeepSpike chapter and the `snpe-hh` chapter; not the apt method.",
            },
            {"cell_type": "code", "source": "# the malis chapter"},
            {"cell_type": "markdown", "source": "See [the malis chapter](x) and the emulators chapter."},
        ]
    }
    n = link_chapter_mentions(nb, get_chapter("apt"))
    first = nb["cells"][0]["source"]
    assert "the [DeepSpike chapter](../calcium/deepspike.ipynb)" in first
    assert "the [`snpe-hh` chapter](snpe-hh.ipynb)" in first and "the apt method" in first
    assert nb["cells"][1]["source"] == "# the malis chapter"  # code is untouched
    assert "[the malis chapter](x)" in nb["cells"][2]["source"]  # an existing link is left alone
    assert "the [emulators chapter](emulators.ipynb)" in nb["cells"][2]["source"]
    assert n == 3
