"""Execute chapters and build the book: the logic behind ``neuroinverse run`` and ``build``.

A chapter is executed straight from its percent-format ``.py`` (converted in memory with
jupytext, run with papermill) into ``_build/executed/<same path>.ipynb``; the committed
``.ipynb`` is never written. The book is built from a staged copy in ``_build/src`` holding
``_config.yml``, ``_toc.yml``, the Markdown pages, a generated ``scorecard.md`` and the
executed notebooks, so that Sphinx never sees the library, the tests or the virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .chapters import CHAPTERS, Chapter, get_chapter
from .field_page import field_page
from .results import load_all_results, scorecard_markdown, scorecard_rows
from .runtime import SMOKE_ENV, check_profile, repo_root
from .scorecard import CHART, add_claims_target, draw_chart, scorecard_page

__all__ = [
    "ChapterRun",
    "executed_path",
    "run_chapter",
    "toc_files",
    "stage",
    "build_html",
    "vendor_mathjax",
    "add_glance",
    "link_chapter_mentions",
    "source_links",
]

#: Per-cell time limit (seconds) used when none is given.
DEFAULT_CELL_TIMEOUT = 3600


@dataclass
class ChapterRun:
    """Outcome of one chapter execution."""

    slug: str
    output: Path
    wall_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def build_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "_build"


def executed_path(chapter: Chapter, root: Path | None = None) -> Path:
    """``_build/executed/<chapter notebook path>``."""
    return build_dir(root) / "executed" / chapter.notebook


def run_chapter(
    slug: str,
    *,
    profile: str = "ci",
    seed: int = 0,
    device: str = "auto",
    timeout: float | None = None,
    root: Path | None = None,
    progress_bar: bool = True,
    smoke: bool = False,
) -> ChapterRun:
    """Execute one chapter from its ``.py`` source with papermill.

    Args:
        slug: chapter slug (see :data:`neuroinverse.chapters.CHAPTERS`).
        profile: ``"ci"`` or ``"full"``.
        seed: non-negative integer passed to the notebook's ``seed`` parameter.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``, passed to the notebook.
        timeout: per-cell time limit in seconds (default one hour).
        root: book root (default :func:`~neuroinverse.runtime.repo_root`).
        smoke: run the ``full`` profile's code at the ``ci`` sizes
            (:func:`~neuroinverse.runtime.smoke_sizes`) into ``_build/smoke``; only with
            ``profile="full"``. Its verdicts are not checked and never become results.

    Returns:
        A :class:`ChapterRun`; ``error`` holds the notebook's exception when it failed. The
        executed notebook is written in either case.

    Raises:
        ValueError: unknown slug or profile.
    """
    import jupytext
    import papermill as pm

    chapter = get_chapter(slug)
    check_profile(profile)
    if smoke and profile != "full":
        raise ValueError(f"a smoke run exercises the full profile's code; got profile {profile!r}")
    root = root or repo_root()
    source = root / chapter.source
    out = (
        build_dir(root) / "smoke" / "executed" / chapter.notebook
        if smoke
        else executed_path(chapter, root)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata.pop("jupytext", None)  # the executed copy is not paired with anything
    # The kernel inherits this environment: results must land in this root, and figures must
    # be drawn inline (an inherited MPLBACKEND=Agg would leave the notebook without figures).
    saved = {k: os.environ.get(k) for k in ("NEUROINVERSE_ROOT", "MPLBACKEND", SMOKE_ENV)}
    os.environ["NEUROINVERSE_ROOT"] = str(root)
    os.environ[SMOKE_ENV] = "1" if smoke else "0"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(
            nb,
            str(out),
            parameters=dict(profile=profile, seed=int(seed), device=device),
            kernel_name="python3",
            cwd=str(out.parent),
            execution_timeout=timeout or DEFAULT_CELL_TIMEOUT,
            progress_bar=progress_bar,
        )
    except pm.PapermillExecutionError as err:
        error = f"{err.ename}: {err.evalue}"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return ChapterRun(slug=slug, output=out, wall_s=time.perf_counter() - t0, error=error)


def toc_files(root: Path | None = None) -> list[str]:
    """Every ``file:``/``root:`` entry of ``_toc.yml`` (without extension), in order."""
    import yaml

    root = root or repo_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return [
        str(Path(f).with_suffix("")) if Path(f).suffix in (".md", ".ipynb") else f for f in files
    ]


def _final_line_state(text: str) -> str:
    """What a terminal shows for ``text``: on each line, only what follows the last ``\\r``."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def for_reading(nb: dict) -> dict:
    """The executed notebook as the book shows it (a copy; the executed file is unchanged).

    Papermill's injected-parameters cell is hidden (it repeats the ``parameters`` cell), and
    progress bars written with carriage returns are reduced to their final state instead of
    one line per refresh.
    """
    nb = json.loads(json.dumps(nb))
    for cell in nb.get("cells", []):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        kept: list[dict] = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out["text"] if isinstance(out["text"], str) else "".join(out["text"])
                prev = kept[-1] if kept else None
                # consecutive writes to one stream are one piece of terminal text (kernels
                # deliver each tqdm refresh as its own output): join, then apply the \r's
                if (
                    prev is not None
                    and prev.get("output_type") == "stream"
                    and prev.get("name") == out.get("name")
                ):
                    prev["text"] += text
                    continue
                out["text"] = text
            kept.append(out)
        for out in kept:
            if out.get("output_type") == "stream":
                out["text"] = _final_line_state(out["text"])
        if "outputs" in cell:
            cell["outputs"] = kept
    return nb


def source_links(chapter: Chapter, root: Path | None = None) -> str:
    """Links to the chapter's ``.py`` and ``.ipynb`` in the repository and to a Binder
    session of it.

    Built from ``repository.url`` and ``branch`` in ``_config.yml``; Binder opens the committed
    notebook, whose ``parameters`` cell runs the ``ci`` profile.
    """
    import urllib.parse

    import yaml

    root = root or repo_root()
    repo = (yaml.safe_load((root / "_config.yml").read_text()) or {}).get("repository", {})
    url, branch = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", "main"))
    if not url.startswith("https://github.com/"):
        return ""
    slug_path = url[len("https://github.com/") :]
    binder = (
        f"https://mybinder.org/v2/gh/{slug_path}/{branch}"
        f"?labpath={urllib.parse.quote(chapter.notebook, safe='')}"
    )
    return (
        f"Run it yourself: [source `.py`]({url}/blob/{branch}/{chapter.source}) · "
        f"[notebook `.ipynb`]({url}/blob/{branch}/{chapter.notebook}) · "
        f"[launch on Binder]({binder}) (the `ci` profile, about a minute on two cores)."
    )


def link_chapter_mentions(nb: dict, chapter: Chapter) -> int:
    """Turn "the <slug> chapter" (the slug, with or without backticks, or the method's name as the
    chapter's title spells it, e.g. "DeepSpike") in Markdown cells into a link to that chapter.

    Returns the number of links made. Text already inside a link is left alone.
    """
    import posixpath
    import re

    here = posixpath.dirname(chapter.notebook)
    names: dict[str, Chapter] = {}
    for other in CHAPTERS:
        if other.slug == chapter.slug:
            continue
        names[other.slug.lower()] = other
        m = re.search(r"\(([^()]+)\)\s*$", other.title)  # "... (DeepSpike)" -> DeepSpike
        if m:
            names[m.group(1).lower()] = other
    if not names:
        return 0
    alternatives = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    pattern = re.compile(rf"(?<!\[)\b(the|The) (`?)({alternatives})\2 chapter\b", re.IGNORECASE)
    count = 0

    def link(m: re.Match) -> str:
        nonlocal count
        target = names[m.group(3).lower()]
        rel = posixpath.relpath(target.notebook, here or ".")
        count += 1
        return f"{m.group(1)} [{m.group(2)}{m.group(3)}{m.group(2)} chapter]({rel})"

    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        cell["source"] = pattern.sub(link, src)
    return count


def add_glance(nb: dict, slug: str, *, claims_page: str = "claims.md", links: str = "") -> bool:
    """Insert the "Results at a glance" box after the chapter's title cell, from its recorded
    results.

    Returns False (and changes nothing) when the chapter has no recorded results yet.
    """
    from .results import glance_markdown, load_results, results_dir

    path = results_dir() / f"{slug}.nc"
    if not path.exists():
        return False
    text = glance_markdown(load_results(path), claims_page=claims_page)
    if links:
        text = text.replace("\n:::\n", f"\n\n{links}\n:::\n")
    cell = {"cell_type": "markdown", "metadata": {"tags": ["results-at-a-glance"]}, "source": text}
    cells = nb.setdefault("cells", [])
    first_md = next((i for i, c in enumerate(cells) if c.get("cell_type") == "markdown"), -1)
    cells.insert(first_md + 1, cell)
    return True


def stage(root: Path | None = None, *, require_executed: bool = True) -> Path:
    """Copy the book's sources into ``_build/src`` and write ``scorecard.md`` there.

    Chapters come from ``_build/executed``; with ``require_executed=False`` a chapter that
    was not executed is staged from its committed (output-free) notebook instead.
    """
    root = root or repo_root()
    src = build_dir(root) / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, src / name)
    by_stem = {str(Path(c.notebook).with_suffix("")): c for c in CHAPTERS}
    missing: list[str] = []
    for entry in toc_files(root):
        if entry == "scorecard":
            (src / "scorecard.md").write_text(scorecard_page())
            draw_chart(scorecard_rows(), src / CHART)
            continue
        if entry == "tools":
            docs = {c.slug: c.notebook[: -len(".ipynb")] for c in CHAPTERS}
            (src / "tools.md").write_text(field_page(root, chapter_docs=docs))
            continue
        dest_dir = (src / entry).parent
        dest_dir.mkdir(parents=True, exist_ok=True)
        if entry in by_stem:
            nb = executed_path(by_stem[entry], root)
            if not nb.exists():
                if require_executed:
                    missing.append(f"{entry} (run `neuroinverse run {by_stem[entry].slug}` first)")
                    continue
                nb = root / by_stem[entry].notebook
            reading = for_reading(json.loads(nb.read_text()))
            depth = len(Path(entry).parts) - 1
            chapter = by_stem[entry]
            add_glance(
                reading,
                chapter.slug,
                claims_page="../" * depth + "claims.md",
                links=source_links(chapter, root),
            )
            link_chapter_mentions(reading, chapter)
            add_claims_target(
                reading,
                by_stem[entry].slug,
                scorecard_link="../" * depth + "scorecard.md",
                claims_page="../" * depth + "claims.md",
            )
            (src / f"{entry}.ipynb").write_text(json.dumps(reading, indent=1, ensure_ascii=False))
        elif (root / f"{entry}.md").exists():
            shutil.copy2(root / f"{entry}.md", src / f"{entry}.md")
        else:
            missing.append(f"{entry} (no {entry}.md and not a registered chapter)")
    if missing:
        raise FileNotFoundError("cannot stage the book; missing: " + "; ".join(missing))
    # Not under _static: Jupyter Book would add every .js found there to every page.
    vendor_mathjax(src / "_vendor" / "mathjax")
    (src / "_vendor" / "neuroinverse.css").write_text(BOOK_CSS)
    for extra in ("references.bib", "images", "logo.png"):
        p = root / extra
        if p.is_dir():
            shutil.copytree(p, src / extra)
        elif p.exists():
            shutil.copy2(p, src / extra)
    return src


#: The book's own stylesheet (``html_css_files`` in ``_config.yml``): on a narrow screen wide
#: display equations, tables and code scroll inside their own box instead of the page.
BOOK_CSS = """\
mjx-container[display="true"], .math-wrapper, div.math { overflow-x: auto; \
overflow-y: hidden; max-width: 100%; }
.bd-article table, .cell_output table { display: block; overflow-x: auto; max-width: 100%; }
.cell_output pre, .highlight pre, .output pre { overflow-x: auto; max-width: 100%; }
.bd-article img { max-width: 100%; height: auto; }
.bd-article code.literal, .bd-article code.literal span.pre { white-space: normal; \
overflow-wrap: anywhere; }
.cell_input pre { font-size: 11px; line-height: 1.45; padding-left: 0.5rem; padding-right: 0.5rem; }
"""


#: The parts of MathJax 3 (es5 build) that the book's pages load: the combined TeX/MathML to
#: CommonHTML component, its lazily loaded TeX extensions, fonts, menu and accessibility.
_MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "output/chtml.js", "ui", "a11y")


def vendor_mathjax(dest: Path) -> Path:
    """Copy MathJax 3 (from the ``django-static-mathjax`` wheel) into ``dest``.

    ``_config.yml`` points Sphinx's ``mathjax_path`` at ``_static/mathjax/tex-mml-chtml.js``,
    so the book renders its equations offline and loads nothing from a CDN.
    """
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MathJax is not installed: pip install -e '.[book]' (package django-static-mathjax)"
        )
    es5 = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise FileNotFoundError(f"no MathJax es5 build under {es5}")
    for part in _MATHJAX_PARTS:
        s, d = es5 / part, dest / part
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        elif s.exists():
            shutil.copy2(s, d)
    return dest


def build_html(root: Path | None = None) -> int:
    """Run ``jupyter-book build _build/src --path-output . -W -n --keep-going`` from a clean
    output folder; return its exit status. The HTML lands in ``_build/html``."""
    root = root or repo_root()
    b = build_dir(root)
    for stale in ("html", ".doctrees", "jupyter_execute"):
        shutil.rmtree(b / stale, ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [
        str(jb) if jb.exists() else "jupyter-book",
        "build",
        str(b / "src"),
        "--path-output",
        ".",
        "-W",
        "-n",
        "--keep-going",
    ]
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=root, check=False).returncode


README_START = (
    "<!-- scorecard:start (generated by `neuroinverse readme` from a ci run; do not edit) -->"
)
README_END = "<!-- scorecard:end -->"


def readme_scorecard(results_directory: Path | None = None) -> str:
    """The README's scorecard block: the ci-profile scorecard, timing values left out."""
    return scorecard_markdown(results_directory, timings=False)


def update_readme(
    root: Path | None = None, *, check: bool = False, results_directory: Path | None = None
) -> bool:
    """Rewrite the scorecard block of ``README.md`` from the recorded results.

    Returns True if the README already matched. With ``check=True`` nothing is written.
    Raises ``ValueError`` if the README lacks the markers or the results are not all ci.
    """
    root = root or repo_root()
    readme = root / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"README.md must contain the markers {README_START!r} and {README_END!r}")
    profiles = {ds.attrs["profile"] for ds in load_all_results(results_directory).values()}
    if profiles - {"ci"}:
        raise ValueError(
            f"the README shows ci-profile results; recorded results are {sorted(profiles)}"
        )
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{readme_scorecard(results_directory)}{README_END}{tail}"
    if new == text:
        return True
    if not check:
        readme.write_text(new)
    return False
