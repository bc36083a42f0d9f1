"""Wall time and peak memory of every chapter, run through the CLI in a subprocess.

Usage::

    python benchmarks/chapters.py [--profile ci|full] [--device auto|cpu|cuda] [SLUG ...]

Writes a Markdown table to ``benchmarks/results/chapters-<profile>.md`` and to stdout; at the
ci profile over all chapters it also rewrites the table between the ``chapters-benchmark``
markers of ``README.md``. Peak memory is the largest resident set size of one child process
(the CLI or the Jupyter kernel that executes the notebook), sampled with ``psutil`` every
0.2 s while the chapter runs. Chapters run one at a time.

This is where the ci budget is checked (90 s wall and 4 GiB per chapter, target 60 s): the
exit status is 1 when a chapter fails or exceeds it. The chapter tests only record wall times,
so that a slow or busy machine never turns ``make test`` red.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

from neuroinverse.chapters import CHAPTERS, get_chapter
from neuroinverse.runtime import check_profile

ROOT = Path(__file__).resolve().parents[1]
#: The ci budget per chapter, run alone on two cores.
BUDGET_S, BUDGET_MIB = 90.0, 4096.0
README_START, README_END = "<!-- chapters-benchmark:start -->", "<!-- chapters-benchmark:end -->"


def status(r: dict, profile: str) -> str:
    """``ok``, ``FAILED`` or ``over budget`` (the budget applies at the ci profile)."""
    if r["rc"] != 0:
        return "FAILED"
    if profile == "ci" and (r["wall_s"] > BUDGET_S or r["peak_rss"] / 2**20 > BUDGET_MIB):
        return "over budget"
    return "ok"


def update_readme(rows: list[dict], stamp: str) -> bool:
    """Rewrite the README's chapter table between its markers; False if the markers are missing."""
    path = ROOT / "README.md"
    text = path.read_text()
    if README_START not in text or README_END not in text:
        return False
    table = [f"Measured {stamp}.", "", "| chapter | wall (s) | peak RSS (MiB) |", "|---|---:|---:|"]
    table += [f"| {r['slug']} | {r['wall_s']:.1f} | {r['peak_rss'] / 2**20:.0f} |" for r in rows]
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(head + README_START + "\n" + "\n".join(table) + "\n" + README_END + tail)
    return True


def _tree_rss(proc: psutil.Process) -> dict[int, int]:
    out = {}
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                out[p.pid] = p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return out


def bench(slug: str, profile: str, device: str) -> dict:
    """Run one chapter; return wall time, peak RSS of its biggest process, and exit status."""
    cmd = [sys.executable, "-m", "neuroinverse.cli", "run", slug, "--profile", profile, "--device", device]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(child.pid)
    peak_by_pid: dict[int, int] = {}
    while child.poll() is None:
        for pid, rss in _tree_rss(ps).items():
            peak_by_pid[pid] = max(peak_by_pid.get(pid, 0), rss)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    stderr = child.stderr.read() if child.stderr else ""
    peak = max(peak_by_pid.values(), default=0)
    return dict(slug=slug, wall_s=wall, peak_rss=peak, rc=child.returncode, stderr=stderr[-2000:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--device", default="auto")
    ap.add_argument("slugs", nargs="*", help="chapters to run (default: all)")
    args = ap.parse_args(argv)
    try:
        check_profile(args.profile)
        chapters = [get_chapter(s) for s in args.slugs] if args.slugs else list(CHAPTERS)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    rows = []
    for ch in chapters:
        print(f"running {ch.slug} at {args.profile} ...", file=sys.stderr, flush=True)
        r = bench(ch.slug, args.profile, args.device)
        rows.append(r)
        if r["rc"] != 0:
            print(f"{ch.slug} FAILED (exit {r['rc']}):\n{r['stderr']}", file=sys.stderr)
    mem = psutil.virtual_memory().total / 2**30
    stamp = (
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, device {args.device}"
    )
    lines = [
        f"# Chapters at the `{args.profile}` profile",
        "",
        f"{stamp}. Budget at ci: {BUDGET_S:.0f} s and {BUDGET_MIB / 1024:.0f} GiB per chapter. "
        "Wall time includes starting the CLI and the kernel; peak memory is the largest "
        "resident set of one process (CLI or kernel).",
        "",
        "| chapter | wall (s) | peak RSS (MiB) | status |",
        "|---|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['slug']} | {r['wall_s']:.1f} | {r['peak_rss'] / 2**20:.0f} | {status(r, args.profile)} |")
    text = "\n".join(lines) + "\n"
    out = ROOT / "benchmarks" / "results" / f"chapters-{args.profile}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(ROOT)}", file=sys.stderr)
    if args.profile == "ci" and not args.slugs and update_readme(rows, stamp):
        print("README.md chapter table updated", file=sys.stderr)
    bad = [r["slug"] for r in rows if status(r, args.profile) != "ok"]
    if bad:
        print(f"failed or over budget: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
