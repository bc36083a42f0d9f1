"""The book's "Against the field's tools" page, rendered from the recorded benchmark results.

Each comparison puts a chapter's method beside the tool a scientist would otherwise reach for,
on the same data and machine, with an accuracy metric that can see the difference and the
wall time. The tables are the files the benchmark scripts write to ``benchmarks/results/``
(each names its machine and package versions); the page adds when each was last committed.
A comparison whose results were never recorded says so, with the command that records it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .runtime import repo_root

__all__ = ["Comparison", "COMPARISONS", "field_page"]


@dataclass(frozen=True)
class Comparison:
    """One side-by-side benchmark: ``result`` is relative to the book's root."""

    title: str
    chapter: str
    result: str
    script: str
    about: str


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "APT (the book) against sbi's NPE_C",
        "apt",
        "benchmarks/results/apt_vs_sbi.md",
        "python benchmarks/apt_vs_sbi.py --threads 1",
        "The same two-moons task, budget and observation; accuracy is the C2ST of the posterior "
        "samples against the grid reference (0.5 is indistinguishable), time is the wall time of "
        "training.",
    ),
    Comparison(
        "DeepSpike against OASIS",
        "deepspike",
        "benchmarks/results/deepspike-throughput-cpu.md",
        "python benchmarks/deepspike_throughput.py",
        "Throughput of spike inference on the same traces; the accuracy of the two on held-out "
        "cells is the deepspike chapter's claim C2 (correlation with the true spikes at 33 ms).",
    ),
    Comparison(
        "TwoNN (the book) against scikit-dimension",
        "intrinsic-dimension",
        "benchmarks/results/twonn_scaling.md",
        "python benchmarks/twonn_scaling.py",
        "The intrinsic dimension of the same points from both implementations, and their time and "
        "memory from a thousand to a hundred thousand points.",
    ),
    Comparison(
        "MALA's agglomeration against waterz",
        "mala",
        "benchmarks/results/agglomeration_vs_waterz.md",
        "python benchmarks/agglomeration_vs_waterz.py",
        "The same affinities and fragments, agglomerated by the book's quantile agglomeration "
        "and by waterz; VOI against the ground truth and wall time.",
    ),
)


def _committed(path: Path, root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs (%h)", "--", str(path.relative_to(root))],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "not committed yet"


def field_page(root: Path | None = None, *, chapter_docs: dict[str, str] | None = None) -> str:
    """The Markdown of the page; ``chapter_docs`` maps a slug to its document path (links)."""
    root = root or repo_root()
    docs = chapter_docs or {}
    out = [
        "# Against the field's tools",
        "",
        "Each chapter's method beside the tool a scientist would otherwise use, on the same data "
        "and machine. The tables are the recorded outputs of the scripts in `benchmarks/` (each "
        "table names its machine and versions); times from a shared machine are indicative, "
        "accuracies are not.",
        "",
    ]
    for c in COMPARISONS:
        chapter = f"[{c.chapter}]({docs[c.chapter]})" if c.chapter in docs else f"`{c.chapter}`"
        out += [f"## {c.title}", "", f"Chapter: {chapter}. {c.about}", ""]
        path = root / c.result
        if not path.exists():
            out += [f"Not recorded yet: `{c.script}` writes `{c.result}`.", ""]
            continue
        body = [line for line in path.read_text().splitlines() if not line.startswith("# ")]
        out += [
            f"Recorded in `{c.result}`, last committed {_committed(path, root)}.",
            "",
            *body,
            "",
        ]
    return "\n".join(out).rstrip() + "\n"
