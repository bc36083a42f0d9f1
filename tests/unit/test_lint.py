"""ruff is clean, and `ruff format` has nothing to change, on the library, tests, benchmarks and chapters."""

from __future__ import annotations

import subprocess
import sys

import pytest

PATHS = ["lib", "tests", "benchmarks", "chapters"]  # chapters: the .py sources (the .ipynb are excluded)


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff(root, command):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", *PATHS],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_covers_the_chapters(root):
    """The chapters' .py sources are linted (a chapter with an unused import fails)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename", "chapters/demo/x.py", "-"],
        cwd=root,
        input="import os\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "F401" in proc.stdout
