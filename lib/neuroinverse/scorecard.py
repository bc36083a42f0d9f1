"""The book's scorecard page: a summary per part and chapter, a chart, and every claim linked.

The page a reader takes in at a glance (``scorecard.md``, written when the book is staged):
counts of the verdicts per chapter and per part with a stacked-bar chart drawn by the book,
then every claim with ours beside the control, a coloured verdict badge (sphinx-design; the
word is always there, so the colour is never the only cue) and a link to the claims table of
its chapter. The README keeps the plain-text table
(:func:`neuroinverse.results.scorecard_markdown`).
"""

from __future__ import annotations

from pathlib import Path

from .chapters import CHAPTERS, PARTS
from .recorded import RecordedRun, recorded_runs
from .results import FULL_ONLY, HELD, INCONCLUSIVE, NOT_IMPLEMENTED, NOT_REPRODUCED, scorecard_rows

__all__ = [
    "VERDICT_BADGES",
    "VERDICT_COLOURS",
    "claims_label",
    "add_claims_target",
    "draw_chart",
    "scorecard_page",
]

#: sphinx-design badge per verdict.
VERDICT_BADGES = {
    HELD: "bdg-primary",
    INCONCLUSIVE: "bdg-warning",
    NOT_REPRODUCED: "bdg-danger",
    FULL_ONLY: "bdg-secondary",
    NOT_IMPLEMENTED: "bdg-light",
    "not run": "bdg-light",
}
#: Okabe–Ito colours of the chart, in the order the bars stack.
VERDICT_COLOURS = {
    HELD: "#0072B2",
    INCONCLUSIVE: "#E69F00",
    NOT_REPRODUCED: "#D55E00",
    FULL_ONLY: "#BBBBBB",
}
_SHOWN = (HELD, INCONCLUSIVE, NOT_REPRODUCED, FULL_ONLY)
CHART = "scorecard_verdicts.png"


def claims_label(slug: str) -> str:
    """The MyST target of a chapter's claims table."""
    return f"claims-{slug}"


def add_claims_target(
    nb: dict, slug: str, *, scorecard_link: str = "scorecard.md", claims_page: str = "claims.md"
) -> bool:
    """Put a target before the cell that prints the claims table, so the scorecard can
    link to it."""
    cells = nb.get("cells", [])
    for i, cell in enumerate(cells):
        src = cell.get("source", "")
        src = src if isinstance(src, str) else "".join(src)
        if cell.get("cell_type") == "code" and "res.table(timings=False)" in src:
            text = (
                f"({claims_label(slug)})=\n**The claims as this run measured them** "
                f"([how to read them]({claims_page}); every chapter's: the "
                f"[scorecard]({scorecard_link})):"
            )
            cells.insert(i, {"cell_type": "markdown", "metadata": {}, "source": text})
            return True
    return False


def _counts(rows: list[dict[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {ch.slug: {v: 0 for v in _SHOWN} for ch in CHAPTERS}
    for r in rows:
        if r["verdict"] in _SHOWN:
            out[r["chapter"]][r["verdict"]] += 1
    return out


def draw_chart(rows: list[dict[str, str]], path: Path) -> Path:
    """Stacked horizontal bars: the verdicts of each chapter, in book order."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    counts = _counts(rows)
    slugs = [ch.slug for ch in CHAPTERS][::-1]
    fig, ax = plt.subplots(figsize=(7.0, 0.32 * len(slugs) + 1.2), dpi=150, constrained_layout=True)
    left = [0] * len(slugs)
    for verdict in _SHOWN:
        widths = [counts[s][verdict] for s in slugs]
        ax.barh(
            slugs,
            widths,
            left=left,
            color=VERDICT_COLOURS[verdict],
            label=verdict,
            edgecolor="white",
        )
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("claims (count)")
    ax.set_ylabel("chapter")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _doc(slug: str) -> str:
    ch = next(c for c in CHAPTERS if c.slug == slug)
    return ch.notebook[: -len(".ipynb")]


def _recorded_section(runs: dict[str, RecordedRun]) -> list[str]:
    out = [
        "## Recorded full-profile runs",
        "",
        "The `full` profile runs each chapter at the paper's scale on a GPU, once, on a lent "
        "machine; its results are committed under `recorded/full/` with the hardware, date and "
        "commit (`neuroinverse run <chapter> --profile full --record`). A run is *stale* when the "
        "chapter or the library changed after it was measured: its verdicts are then those of "
        "older code.",
        "",
    ]
    if not runs:
        return out + ["No chapter has a recorded full-profile run yet.", ""]
    out += ["| chapter | measured on | when | commit | status |", "|---|---|---|---|---|"]
    for run in runs.values():
        status = "{bdg-warning}`stale`" if run.stale else "{bdg-primary}`current`"
        out.append(
            f"| [{run.slug}]({_doc(run.slug)}) | {run.measured_on} | {run.measured_at} | "
            f"`{run.commit}` | {status} |"
        )
    return out + [""]


def _full_cell(run: RecordedRun | None, claim: str) -> str:
    """The recorded full-profile verdict of ``claim``, or a dash."""
    if run is None or claim not in run.verdicts:
        return "–"
    verdict = run.verdicts[claim]
    value = run.measured[claim]
    shown = "" if value != value else f"{value:.3g} "  # NaN: nothing measured
    badge = VERDICT_BADGES.get(verdict, "bdg-light")
    stale = " (stale)" if run.stale else ""
    return f"{shown}{{{badge}}}`{verdict}`{stale}"


def scorecard_page(
    results_directory: Path | None = None,
    *,
    chart: str | None = CHART,
    recorded: dict[str, RecordedRun] | None = None,
) -> str:
    """The Markdown of the scorecard page (``chart``: the image file next to it, or ``None``).

    ``recorded`` defaults to the runs under ``recorded/full`` (:func:`recorded_runs`).
    """
    runs = recorded_runs() if recorded is None else recorded
    rows = scorecard_rows(results_directory)
    counts = _counts(rows)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    total = {v: sum(c[v] for c in counts.values()) for v in _SHOWN}
    out = [
        "# Scorecard",
        "",
        "Every claim that the chapters check, as the chapter runs of this build measured it. "
        "`held`: our value satisfies the rule and the control (a deliberately wrong answer of "
        "the same kind) does not; `inconclusive`: the control passes too, so the rule could "
        "not tell them apart; `not reproduced`: our value fails (the chapter explains why); "
        "`full only`: checked at the `full` profile only, not measured in this build. "
        "See [how to read the claims](claims.md).",
        "",
        "## At a glance",
        "",
        f"**{total[HELD]} held, {total[INCONCLUSIVE]} inconclusive, "
        f"{total[NOT_REPRODUCED]} not reproduced, {total[FULL_ONLY]} full only**, "
        f"over {len(CHAPTERS)} chapters.",
        "",
    ]
    if chart:
        out += [
            f":::{{figure}} {chart}",
            ":alt: Stacked bars, one per chapter, counting its claims that held, were "
            "inconclusive, were not reproduced, or are checked at the full profile only.",
            ":width: 100%",
            "",
            "The verdicts of each chapter's claims in this build (ci profile). Blue: held; orange: "
            "inconclusive; vermillion: not reproduced; grey: full profile only.",
            ":::",
            "",
        ]
    out += [
        "| part | chapter | held | inconclusive | not reproduced | full only |",
        "|---|---|---|---|---|---|",
    ]
    for part in PARTS:
        chapters = [c for c in CHAPTERS if c.part == part]
        if not chapters:
            continue
        for c in chapters:
            n = counts[c.slug]
            out.append(
                f"| {part} | [{c.slug}]({_doc(c.slug)}) | "
                + " | ".join(str(n[v]) for v in _SHOWN)
                + " |"
            )
        if len(chapters) > 1:
            sums = [sum(counts[c.slug][v] for c in chapters) for v in _SHOWN]
            out.append(
                f"| **{part}** | **all {len(chapters)}** | "
                + " | ".join(f"**{s}**" for s in sums)
                + " |"
            )
    out += [
        "",
        "## Every claim",
        "",
        "Each claim links to the claims table of its chapter; the control column is the value of a "
        'deliberately wrong answer under the same rule ("exact": the rule needs none). The last '
        "column is the recorded full-profile run, where there is one (see below for where and "
        "when it was measured).",
        "",
        "| chapter | claim | statement | paper | ours | control | rule | profile | verdict "
        "| full (recorded) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        claim = (
            r["claim"]
            if r["claim"] == "–"
            else f"{{ref}}`{r['claim']} <{claims_label(r['chapter'])}>`"
        )
        badge = VERDICT_BADGES.get(r["verdict"], "bdg-light")
        cells = [
            r["chapter"],
            claim,
            esc(r["statement"]),
            esc(r["paper"]),
            r["ours"],
            r["control"],
            esc(r["rule"]),
        ]
        full = _full_cell(runs.get(r["chapter"]), r["claim"])
        verdict = f"{{{badge}}}`{r['verdict']}`"
        out.append("| " + " | ".join(cells + [r["profile"], verdict, full]) + " |")
    out += [""] + _recorded_section(runs)
    return "\n".join(out) + "\n"
