"""Claims and results recorded per chapter, saved as xarray/netCDF, read back by the scorecard.

A chapter builds a :class:`ChapterResults`, adds one :class:`Claim` per checked statement of
its paper, prints :meth:`ChapterResults.table` in a cell tagged ``nbval-check-output``
and calls :meth:`ChapterResults.save` and :meth:`ChapterResults.check`. The file
``<results_dir>/<slug>.nc`` holds one entry per claim along the ``claim`` dimension.

Claims that can fail. Beside our value a claim records its **control**: the value that a
deliberately wrong answer of the same kind (a widened posterior, shuffled spikes, an
untrained network, a baseline given the same compute) gets under the same rule. A rule that
the control passes too cannot tell right from wrong, so such a claim is ``inconclusive``,
never ``held``. A claim whose rule is exact (a counting identity checked against brute
force, say) gives instead a one-line reason in ``exact``.

Verdicts:
    ``held``            the measured value satisfies the rule at the profile it was run at,
                        and the control does not (or the rule is exact);
    ``inconclusive``    both our value and the control satisfy the rule;
    ``not reproduced``  our value does not satisfy it (shown with the numbers, never hidden);
    ``full only``       the claim is checked at the ``full`` profile only and this run was ``ci``;
    ``not implemented`` the chapter does not run this experiment yet (said in the chapter).

Claims whose value is a wall-time measurement are marked ``timing=True``: their verdict is
printed in the checked output, their value only in the ignored one (it varies run to run).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import xarray as xr

from ._checks import check_choice
from .runtime import (
    PROFILES,
    Runtime,
    check_profile,
    output_root,
    provenance,
    repo_root,
    smoke_requested,
)

__all__ = [
    "glue_values",
    "Claim",
    "ChapterResults",
    "ClaimsNotHeld",
    "VERDICTS",
    "results_dir",
    "load_results",
    "load_all_results",
    "scorecard_rows",
    "scorecard_markdown",
    "glance_markdown",
]

HELD, INCONCLUSIVE, NOT_REPRODUCED = "held", "inconclusive", "not reproduced"
FULL_ONLY, NOT_IMPLEMENTED = "full only", "not implemented"
#: Every verdict, in the order the scorecard counts them.
VERDICTS = (HELD, INCONCLUSIVE, NOT_REPRODUCED, FULL_ONLY, NOT_IMPLEMENTED)
_OPS = (">=", "<=", "in")


class ClaimsNotHeld(AssertionError):
    """Raised by :meth:`ChapterResults.check` when a claim expected to hold did not."""


def results_dir() -> Path:
    """Folder of the recorded results: ``$NEUROINVERSE_RESULTS`` or ``<root>/_build/results``."""
    env = os.environ.get("NEUROINVERSE_RESULTS")
    if smoke_requested():
        return output_root() / "results"
    return Path(env) if env else repo_root() / "_build" / "results"


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    ax = abs(x)
    if ax != 0 and (ax >= 1e4 or ax < 1e-2):
        return f"{x:.3g}"
    return f"{x:.3f}" if ax < 10 else f"{x:.1f}"


@dataclass
class Claim:
    """One checkable statement of a paper.

    Args:
        id: short identifier of the claim within its chapter, e.g. ``"C1a"``.
        statement: the claim in words, with units and the bin or set it is measured on.
        paper: what the paper (or its reference code) reports, as text, e.g. ``"0.85 (ref-code)"``.
        op: ``">="``, ``"<="`` or ``"in"`` (closed interval).
        threshold: a number for ``>=``/``<=``; a ``(low, high)`` pair for ``in``.
        measured: our value; ``None`` when the claim is not run at this profile.
        profiles: the profiles at which the claim is checked.
        timing: the value is a wall-time measurement (not reproducible to the digit).
        implemented: ``False`` for a claim whose experiment the chapter does not run yet.
        control: the value of the claim's control under the same rule (see the module
            docstring); ``None`` when not measured at this profile or when ``exact``.
        control_label: what the control is, in a few words (e.g. ``"shuffled spikes"``).
        exact: a one-line reason why the rule needs no control; mutually exclusive with
            ``control``.
    """

    id: str
    statement: str
    paper: str
    op: str
    threshold: float | tuple[float, float]
    measured: float | None = None
    profiles: tuple[str, ...] = PROFILES
    timing: bool = False
    implemented: bool = True
    control: float | None = None
    control_label: str = ""
    exact: str = ""

    def __post_init__(self) -> None:
        check_choice(self.op, "op", _OPS)
        if self.op == "in":
            if not (isinstance(self.threshold, (tuple, list)) and len(self.threshold) == 2):
                raise ValueError(
                    f"threshold for op 'in' must be a (low, high) pair; got {self.threshold!r}"
                )
            lo, hi = map(float, self.threshold)
            if not lo <= hi:
                raise ValueError(
                    f"threshold interval must have low <= high; got {self.threshold!r}"
                )
            self.threshold = (lo, hi)
        else:
            if isinstance(self.threshold, (tuple, list)):
                raise ValueError(
                    f"threshold for op {self.op!r} must be one number; got {self.threshold!r}"
                )
            self.threshold = float(self.threshold)
        for p in self.profiles:
            check_profile(p)
        if self.measured is not None:
            m = float(self.measured)
            if math.isnan(m):
                raise ValueError(f"claim {self.id}: measured value is NaN")
            self.measured = m
        if self.control is not None:
            c = float(self.control)
            if math.isnan(c):
                raise ValueError(f"claim {self.id}: control value is NaN")
            if self.exact:
                raise ValueError(
                    f"claim {self.id}: give a control or an exact-rule reason, not both"
                )
            if not self.control_label:
                raise ValueError(
                    f"claim {self.id}: a control needs a control_label saying what it is"
                )
            self.control = c

    @property
    def has_control(self) -> bool:
        """A control value or an exact-rule reason was given."""
        return self.control is not None or bool(self.exact)

    def _passes(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<=":
            return value <= self.threshold
        lo, hi = self.threshold
        return lo <= value <= hi

    @property
    def rule(self) -> str:
        if self.op == "in":
            lo, hi = self.threshold
            return f"in [{_fmt(lo)}, {_fmt(hi)}]"
        return f"{'≥' if self.op == '>=' else '≤'} {_fmt(self.threshold)}"

    def verdict(self, profile: str) -> str:
        if not self.implemented:
            return NOT_IMPLEMENTED if profile in self.profiles else FULL_ONLY
        if profile not in self.profiles or self.measured is None:
            return FULL_ONLY
        if not self._passes(self.measured):
            return NOT_REPRODUCED
        if self.control is not None and self._passes(self.control):
            return INCONCLUSIVE
        return HELD


def glue_values(**values: float | str) -> None:
    """Make ``values`` available to a chapter's Markdown as ``{glue:text}`name```, once each.

    For numbers measured after the claims were glued (:meth:`ChapterResults.glue` glues the
    claims; calling it twice would glue them twice). Needs ``myst-nb``.
    """
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)


@dataclass
class ChapterResults:
    """The claims of one chapter run, with the profile they were measured at.

    Args:
        slug: chapter slug (see :mod:`neuroinverse.chapters`).
        runtime: the chapter's :class:`~neuroinverse.runtime.Runtime` (profile, provenance).
        expected_not_reproduced: ids of claims documented in the chapter as not reproduced
            or inconclusive; :meth:`check` accepts those verdicts for these and only these.
        require_controls: every claim measured at this profile must carry a control or an
            exact-rule reason (:meth:`add` refuses one without).
    """

    slug: str
    runtime: Runtime
    expected_not_reproduced: Iterable[str] = ()
    claims: list[Claim] = field(default_factory=list)
    require_controls: bool = False

    def add(self, claim: Claim) -> None:
        """Record ``claim`` (checked first). Returns nothing, so that a cell ending in
        ``res.add(...)`` shows nothing in the book (no ``Claim(...)`` repr)."""
        if any(c.id == claim.id for c in self.claims):
            raise ValueError(f"claim id {claim.id!r} added twice")
        measured_here = self.runtime.profile in claim.profiles and claim.implemented
        if measured_here and claim.measured is None:
            raise ValueError(
                f"claim {claim.id} is checked at profile {self.runtime.profile!r} "
                "but has no measured value"
            )
        if self.require_controls and measured_here and not claim.has_control:
            raise ValueError(
                f"claim {claim.id} has neither a control nor an exact-rule reason; a claim "
                "is worth something only if the same rule rejects a wrong answer"
            )
        self.claims.append(claim)

    def glue(self, **extra: float | str) -> None:
        """Make the claims' numbers and verdicts, and any ``extra`` values, available to the text.

        The chapter's Markdown then writes ``{glue:text}`C1a_ours:.3f``` (also ``_control`` and
        ``_verdict`` per claim, and each ``extra`` name) instead of typing a number, so that
        every number in its prose is the one this run measured (MyST-NB's ``glue``; nothing is
        shown in the notebook). Needs ``myst-nb`` (installed with the book's extra).
        """
        from myst_nb import glue

        profile = self.runtime.profile
        for c in self.claims:
            glue(f"{c.id}_verdict", c.verdict(profile), display=False)
            if c.measured is not None:
                glue(f"{c.id}_ours", float(c.measured), display=False)
            if c.control is not None:
                glue(f"{c.id}_control", float(c.control), display=False)
        glue_values(**extra)

    def verdicts(self) -> dict[str, str]:
        return {c.id: c.verdict(self.runtime.profile) for c in self.claims}

    def table(self, *, timings: bool = True) -> str:
        """A fixed-width text table of the claims: id, paper, ours, rule, verdict (rounded).

        With ``timings=False`` the values of timing claims print as ``(timing)`` so that the
        table is identical on every run (for the cell tagged ``nbval-check-output``).
        """
        rows = [("claim", "paper", "ours", "control", "rule", "verdict")]
        for c in self.claims:
            if c.measured is None:
                ours = "–"
            elif c.timing and not timings:
                ours = "(timing)"
            else:
                ours = _fmt(c.measured)
            rows.append(
                (
                    c.id,
                    c.paper,
                    ours,
                    _control_text(c, timings=timings),
                    c.rule,
                    c.verdict(self.runtime.profile),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"(profile: {self.runtime.profile})")
        controls = [f"  {c.id}: {c.control_label}" for c in self.claims if c.control is not None]
        exact = [f"  {c.id}: {c.exact}" for c in self.claims if c.exact]
        if controls:
            lines += ["controls (a wrong answer judged by the same rule):", *controls]
        if exact:
            lines += ["exact rules (no control needed):", *exact]
        return "\n".join(lines)

    def to_dataset(self) -> xr.Dataset:
        profile = self.runtime.profile
        ids = [c.id for c in self.claims]

        def _lo(c: Claim) -> float:
            return c.threshold[0] if c.op == "in" else (c.threshold if c.op == ">=" else -np.inf)

        def _hi(c: Claim) -> float:
            return c.threshold[1] if c.op == "in" else (c.threshold if c.op == "<=" else np.inf)

        ds = xr.Dataset(
            {
                "statement": ("claim", np.array([c.statement for c in self.claims], dtype=object)),
                "paper": ("claim", np.array([c.paper for c in self.claims], dtype=object)),
                "measured": (
                    "claim",
                    np.array([np.nan if c.measured is None else c.measured for c in self.claims]),
                ),
                "rule": ("claim", np.array([c.rule for c in self.claims], dtype=object)),
                "threshold_low": ("claim", np.array([_lo(c) for c in self.claims], dtype=float)),
                "threshold_high": ("claim", np.array([_hi(c) for c in self.claims], dtype=float)),
                "checked_at": (
                    "claim",
                    np.array([",".join(c.profiles) for c in self.claims], dtype=object),
                ),
                "verdict": (
                    "claim",
                    np.array([c.verdict(profile) for c in self.claims], dtype=object),
                ),
                "timing": ("claim", np.array([c.timing for c in self.claims], dtype=bool)),
                "control": (
                    "claim",
                    np.array([np.nan if c.control is None else c.control for c in self.claims]),
                ),
                "control_label": (
                    "claim",
                    np.array([c.control_label for c in self.claims], dtype=object),
                ),
                "exact": ("claim", np.array([c.exact for c in self.claims], dtype=object)),
            },
            coords={"claim": np.array(ids, dtype=object)},
            attrs={
                "chapter": self.slug,
                "profile": profile,
                **{f"prov_{k}": str(v) for k, v in provenance(self.runtime).items()},
            },
        )
        return ds

    def save(self, directory: Path | str | None = None) -> Path:
        """Write ``<directory>/<slug>.nc`` (default :func:`results_dir`) and return its path."""
        if not self.claims:
            raise ValueError("no claims recorded; add claims before saving")
        out = Path(directory) if directory is not None else results_dir()
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{self.slug}.nc"
        self.to_dataset().to_netcdf(path, engine="h5netcdf")
        return path

    def check(self) -> None:
        """Raise :class:`ClaimsNotHeld` if a claim not documented as not reproduced failed."""
        allowed = set(self.expected_not_reproduced)
        unknown = allowed - {c.id for c in self.claims}
        if unknown:
            raise ValueError(f"expected_not_reproduced names unknown claims: {sorted(unknown)}")
        if self.runtime.smoke:
            print(
                f"{self.slug}: smoke run, verdicts not checked ({len(self.claims)} claims, "
                f"{sum(c.has_control for c in self.claims)} with a control or an exact rule)"
            )
            return
        bad = [
            c
            for c in self.claims
            if c.verdict(self.runtime.profile) in (NOT_REPRODUCED, INCONCLUSIVE)
            and c.id not in allowed
        ]
        if bad:
            msg = "; ".join(
                f"{c.id}: {c.verdict(self.runtime.profile)}, measured {_fmt(c.measured)}"
                + (f", control {_fmt(c.control)}" if c.control is not None else "")
                + f", rule {c.rule}"
                for c in bad
            )
            raise ClaimsNotHeld(
                f"{self.slug}: claims not held at profile {self.runtime.profile}: {msg}"
            )


def _control_text(c: Claim, *, timings: bool = True) -> str:
    if c.exact:
        return "exact"
    if c.control is None:
        return "–"
    return "(timing)" if c.timing and not timings else _fmt(c.control)


def load_results(path: Path | str) -> xr.Dataset:
    """Read one chapter's results file written by :meth:`ChapterResults.save`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no results file at {path}; run the chapter first")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def load_all_results(directory: Path | str | None = None) -> dict[str, xr.Dataset]:
    """Every ``<slug>.nc`` in ``directory`` (default :func:`results_dir`), keyed by slug."""
    d = Path(directory) if directory is not None else results_dir()
    return {p.stem: load_results(p) for p in sorted(d.glob("*.nc"))}


def scorecard_rows(
    directory: Path | str | None = None, *, timings: bool = True
) -> list[dict[str, str]]:
    """One row per (chapter, claim), in book order; chapters without results say so.

    With ``timings=False`` the values of wall-time claims read ``(timing)``, so that the rows
    are identical on every run (used for the README's copy of the scorecard).
    """
    from .chapters import CHAPTERS

    found = load_all_results(directory)
    rows: list[dict[str, str]] = []
    for ch in CHAPTERS:
        ds = found.get(ch.slug)
        if ds is None:
            rows.append(
                dict(
                    chapter=ch.slug,
                    claim="–",
                    statement="(not run yet)",
                    paper="–",
                    ours="–",
                    control="–",
                    rule="–",
                    profile="–",
                    verdict="not run",
                )
            )
            continue
        for cid in ds.claim.values:
            c = ds.sel(claim=cid)
            m = float(c.measured)
            hide = not timings and "timing" in ds and bool(c.timing)
            ctl = float(c.control) if "control" in ds else math.nan
            exact = str(c.exact.values) if "exact" in ds else ""
            rows.append(
                dict(
                    chapter=ch.slug,
                    claim=str(cid),
                    statement=str(c.statement.values),
                    paper=str(c.paper.values),
                    ours="(timing)" if (hide and not math.isnan(m)) else _fmt(m),
                    control="exact"
                    if exact
                    else ("(timing)" if (hide and not math.isnan(ctl)) else _fmt(ctl)),
                    rule=str(c.rule.values),
                    profile=ds.attrs["profile"] if not math.isnan(m) else str(c.checked_at.values),
                    verdict=str(c.verdict.values),
                )
            )
    return rows


def scorecard_markdown(directory: Path | str | None = None, *, timings: bool = True) -> str:
    """The scorecard as a Markdown table (the body of ``scorecard.md``)."""
    rows = scorecard_rows(directory, timings=timings)
    head = [
        "chapter",
        "claim",
        "statement",
        "paper",
        "ours",
        "control",
        "rule",
        "profile",
        "verdict",
    ]
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(esc(r[h]) for h in head) + " |")
    n = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    summary = (
        f"**{n[HELD]} held, {n[INCONCLUSIVE]} inconclusive (the control passes too), "
        f"{n[NOT_REPRODUCED]} not reproduced, {n[FULL_ONLY]} checked at the full profile only "
        f"(not measured in this build), {n[NOT_IMPLEMENTED]} not implemented.** "
        "The control column is the value of a deliberately wrong answer under the same rule "
        '("exact": the rule needs none; "–": no control recorded yet).'
    )
    return summary + "\n\n" + "\n".join(out) + "\n"


def glance_markdown(ds, *, claims_page: str = "claims.md") -> str:
    """A chapter's "Results at a glance" box (MyST) from its recorded results ``ds``.

    The counts per verdict, then one line per claim that did not hold (not reproduced,
    inconclusive) with its reason in numbers: ours against the rule, and for an inconclusive
    claim the control that passes the same rule. ``claims_page`` is the relative link to the
    page that explains the verdicts.
    """
    counts = {v: 0 for v in VERDICTS}
    lines: list[str] = []
    for cid in ds.claim.values:
        c = ds.sel(claim=cid)
        verdict = str(c.verdict.values)
        counts[verdict] = counts.get(verdict, 0) + 1
        ours, rule = _fmt(float(c.measured)), str(c.rule.values)
        if verdict == NOT_REPRODUCED:
            lines.append(
                f"- **{cid}** not reproduced: ours {ours} fails the rule {rule} "
                f"({c.statement.values})."
            )
        elif verdict == INCONCLUSIVE:
            label = str(c.control_label.values) if "control_label" in ds else "the control"
            ctl = _fmt(float(c.control)) if "control" in ds else "–"
            lines.append(
                f"- **{cid}** inconclusive: ours {ours} meets {rule}, but so does the control "
                f"({label}: {ctl}) ({c.statement.values})."
            )
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    body = "\n".join(lines) if lines else "Every claim checked at this profile held."
    return (
        ":::{admonition} Results at a glance\n:class: tip\n"
        f"**{summary}** at the `{ds.attrs['profile']}` profile of this build. "
        f"How verdicts are reached: [how to read the claims]({claims_page}).\n\n{body}\n:::\n"
    )
