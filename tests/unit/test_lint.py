"""ruff is clean on the library, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
import sys


def test_ruff(root):
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "lib", "tests", "benchmarks"],
        cwd=root, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
