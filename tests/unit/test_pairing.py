"""Each chapter's .py and committed .ipynb agree, and _toc.yml lists exactly the registry."""

from __future__ import annotations

import jupytext
import nbformat
import pytest
import yaml

from neuroinverse.book import toc_files
from neuroinverse.chapters import CHAPTERS, PARTS


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_notebook_is_paired_and_clean(root, chapter):
    py = root / chapter.source
    ipynb = root / chapter.notebook
    assert py.exists(), f"missing {chapter.source}"
    assert ipynb.exists(), f"missing {chapter.notebook}: run `make notebooks`"
    nb = nbformat.read(ipynb, as_version=4)
    with_outputs = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not with_outputs, f"{chapter.notebook} has outputs in cells {with_outputs}: strip them"
    assert _cells(nb) == _cells(jupytext.read(py, fmt="py:percent")), (
        f"{chapter.notebook} and {chapter.source} differ: run `make sync` or `make notebooks`"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_nbval_markers_are_cell_tags_not_code_a_reader_sees(root, chapter):
    nb = jupytext.read(root / chapter.source, fmt="py:percent")
    shown = [i for i, c in enumerate(nb.cells) if "NBVAL_" in c.source]
    assert not shown, f"cells {shown} mark nbval in their code; tag them nbval-check-output / nbval-ignore-output"
    checked = [c for c in nb.cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked, "no cell is tagged nbval-check-output: nbval would compare nothing"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_chapter_has_parameters_cell(root, chapter):
    nb = jupytext.read(root / chapter.source, fmt="py:percent")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged `parameters`"
    for name in ("profile", "seed", "device"):
        assert f"{name} =" in tagged[0].source


def test_toc_lists_exactly_the_registry(root):
    chapters = [f for f in toc_files(root) if f.startswith("chapters/")]
    expected = [c.notebook[: -len(".ipynb")] for c in CHAPTERS]
    assert sorted(chapters) == sorted(expected)
    assert len(chapters) == len(set(chapters)), "a chapter is listed twice"
    assert "scorecard" in toc_files(root)


def test_toc_parts_follow_registry(root):
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    captions = {}
    for part in toc["parts"]:
        for entry in part["chapters"]:
            captions[entry["file"]] = part["caption"]
    used_parts = []
    for c in CHAPTERS:
        assert captions[c.notebook[: -len(".ipynb")]] == c.part
        assert c.part in PARTS
        if c.part not in used_parts:
            used_parts.append(c.part)
    chapter_parts = [p["caption"] for p in toc["parts"] if p["caption"] in PARTS]
    assert chapter_parts == used_parts, "parts must appear in book order and only when used"


def test_readme_lists_every_chapter(root):
    readme = (root / "README.md").read_text()
    for c in CHAPTERS:
        assert f"`{c.slug}`" in readme and c.source in readme
