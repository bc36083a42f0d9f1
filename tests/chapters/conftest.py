"""Print the chapters' wall times at the end of the run (recorded, not judged)."""

from __future__ import annotations

import json


def pytest_terminal_summary(terminalreporter):
    from neuroinverse.results import results_dir

    path = results_dir() / "walltimes-ci.json"
    if not path.exists():
        return
    times = json.loads(path.read_text())
    terminalreporter.section("chapter wall times at ci (budget 90 s, checked by make benchmark)")
    for slug, wall in sorted(times.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{slug:12s} {wall:6.1f} s{'  (over budget)' if wall > 90 else ''}")
