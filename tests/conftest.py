"""Shared fixtures: the book root and a quick way to run the ``neuroinverse`` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def _run_cli(*args: str, env: dict | None = None, timeout: float | None = None):
    """Run ``python -m neuroinverse.cli ARGS`` in the book root; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "neuroinverse.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def run_cli():
    """The CLI in a subprocess: ``run_cli("status", "--json", env=..., timeout=...)``."""
    return _run_cli
