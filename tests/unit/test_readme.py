"""The README's scorecard block is generated from recorded results and detected when stale."""

import pytest

from neuroinverse.book import README_END, README_START, update_readme
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import setup


def _results(tmp_path, measured, profile="ci"):
    rt = setup(profile="ci")
    rt.profile = profile
    res = ChapterResults("deepspike", rt)
    res.add(Claim("C1", "r", paper="0.85", op=">=", threshold=0.5, measured=measured))
    res.add(Claim("C3", "speed", paper="fast", op=">=", threshold=100, measured=321.0, timing=True))
    res.save(tmp_path / "res")
    return tmp_path / "res"


def test_update_readme_writes_then_reports_current(tmp_path):
    (tmp_path / "README.md").write_text(f"intro\n{README_START}\nold\n{README_END}\nrest\n")
    res = _results(tmp_path, 0.9)
    assert update_readme(tmp_path, check=True, results_directory=res) is False
    assert "old" in (tmp_path / "README.md").read_text()  # check mode writes nothing
    assert update_readme(tmp_path, results_directory=res) is False
    text = (tmp_path / "README.md").read_text()
    assert "| deepspike | C1 |" in text and "0.900" in text and text.endswith("rest\n")
    assert "(timing)" in text and "321" not in text  # timing values never enter the README
    assert update_readme(tmp_path, check=True, results_directory=res) is True
    # a different measurement makes it stale again
    assert update_readme(tmp_path, check=True, results_directory=_results(tmp_path, 0.7)) is False


def test_update_readme_needs_markers_and_ci_results(tmp_path):
    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        update_readme(tmp_path, results_directory=_results(tmp_path, 0.9))
    (tmp_path / "README.md").write_text(f"{README_START}\n{README_END}\n")
    with pytest.raises(ValueError, match="ci-profile"):
        update_readme(tmp_path, results_directory=_results(tmp_path, 0.9, profile="full"))


def test_for_reading_hides_injected_parameters_and_collapses_progress_bars():
    from neuroinverse.book import for_reading

    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [], "source": "x=1"},
            {
                "cell_type": "code",
                "metadata": {},
                "source": "fit()",
                "outputs": [
                    {
                        "output_type": "stream",
                        "name": "stderr",
                        "text": ["train:  10%|#\rtrain:  50%|#####\r", "train: 100%|##########\n"],
                    },
                    {"output_type": "stream", "name": "stdout", "text": "between\n"},
                    {"output_type": "stream", "name": "stderr", "text": "\rbar 10%"},
                    {"output_type": "stream", "name": "stderr", "text": "\rbar 60%"},
                    {"output_type": "stream", "name": "stderr", "text": "\rbar 100%"},
                    {"output_type": "stream", "name": "stderr", "text": "\n"},
                    {"output_type": "stream", "name": "stdout", "text": "done\nr = 0.9\n"},
                ],
            },
        ]
    }
    out = for_reading(nb)
    assert "remove-cell" in out["cells"][0]["metadata"]["tags"]
    assert [o["text"] for o in out["cells"][1]["outputs"]] == [
        "train: 100%|##########\n",
        "between\n",
        "bar 100%\n",
        "done\nr = 0.9\n",
    ]
    assert nb["cells"][0]["metadata"]["tags"] == ["injected-parameters"]  # the input is unchanged
