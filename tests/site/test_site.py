"""The built HTML book, served locally and opened in headless Chromium (Debian's package).

Every page of the TOC answers 200, every image loads (``naturalWidth > 0``), chapter pages
have figures, each numbered, captioned, with alt text and sized to the column, the console
shows no errors but the three that Jupyter Book 1.x itself emits, and the scorecard has a
row per chapter.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path

import pytest

from neuroinverse.book import toc_files
from neuroinverse.chapters import CHAPTERS

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Console errors that Jupyter Book 1.x emits on every page by itself.
KNOWN_CONSOLE_ERRORS = (
    re.compile(r"THEBE_JS_URL.*(already been declared|redeclar)|(already been declared|redeclar).*THEBE_JS_URL", re.I),
    re.compile(r"invalid theme mode", re.I),
    re.compile(r"status of 404.*\[\S*favicon\.ico\]", re.I),
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.fail("no _build/html/index.html: build the book first (neuroinverse build)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():  # a failure, not a skip: `make test` installs it (make deps)
        pytest.fail(f"{CHROMIUM} is missing: run `make deps` (Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


PAGES = toc_files(ROOT)
CHAPTER_PAGES = {c.notebook[: -len(".ipynb")] for c in CHAPTERS}


def _visit(browser, url):
    page = browser.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"{m.text} [{m.location.get('url', '')}]") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on(
        "response",
        lambda r: (
            errors.append(f"HTTP {r.status} for {r.url}")
            if r.status >= 400 and not r.url.endswith("favicon.ico")
            else None
        ),
    )
    # The book must work offline: everything a page loads comes from the book itself.
    page.on(
        "request",
        lambda r: (
            errors.append(f"external request: {r.url}")
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None
        ),
    )
    response = page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page, response, errors


@pytest.mark.parametrize("entry", PAGES)
def test_page(entry, server, browser):
    assert (HTML / f"{entry}.html").exists(), f"{entry}.html was not built"
    page, response, errors = _visit(browser, f"{server}/{entry}.html")
    try:
        assert response is not None and response.status == 200
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({src: e.currentSrc || e.src, w: e.naturalWidth, complete: e.complete}))"
        )
        broken = [i["src"] for i in images if not i["complete"] or i["w"] <= 0]
        assert not broken, f"images that did not load on {entry}: {broken}"
        if entry in CHAPTER_PAGES:
            figures = [i for i in images if "/_images/" in i["src"] or i["src"].startswith("data:")]
            assert figures, f"chapter page {entry} shows no figure"
            _check_figures(page, entry)
        if page.locator(".math").count():
            # MathJax (served with the book) typesets every equation.
            page.wait_for_function(
                "document.querySelectorAll('.math').length <= document.querySelectorAll('mjx-container').length",
                timeout=20_000,
            )
        unexpected = [e for e in errors if not any(p.search(e) for p in KNOWN_CONSOLE_ERRORS)]
        assert not unexpected, f"console errors on {entry}: {unexpected}"
    finally:
        page.close()


#: An alt text that is a file name or a path, as Jupyter writes for an uncaptioned output.
_PATHLIKE_ALT = re.compile(r"(^|/)[\w.-]+\.(png|svg|jpe?g)$|^_build/|/_images/", re.I)


def _check_figures(page, entry: str) -> None:
    """Every figure image of a chapter sits in a numbered, captioned figure with real alt text,
    and is designed for the column: drawn at 90 % or more of its size at 96 px per inch, so its
    text is as large as the author set it (a 7-inch figure fills the column at 1280 px)."""
    shown = page.eval_on_selector_all(
        "main img",
        """els => els.filter(e => (e.currentSrc || e.src).includes('/_images/')
                                 || (e.currentSrc || e.src).startsWith('data:'))
                    .map(e => {
                        const fig = e.closest('figure');
                        const cap = fig && fig.querySelector('figcaption');
                        return {src: (e.currentSrc || e.src).slice(-60), alt: e.getAttribute('alt') || '',
                                caption: cap ? cap.innerText.trim() : '',
                                number: cap ? (cap.querySelector('.caption-number') || {}).innerText || '' : '',
                                natural: e.naturalWidth, drawn: e.getBoundingClientRect().width};
                    })""",
    )
    for img in shown:
        where = f"{entry}: figure {img['src']}"
        assert img["caption"], f"{where} has no caption (use a glue:figure directive)"
        assert re.match(r"Fig\.\s*\d+", img["number"]), f"{where} is not numbered: {img['number']!r}"
        alt = img["alt"].strip()
        assert len(alt) >= 20 and not _PATHLIKE_ALT.search(alt), f"{where} has no real alt text: {alt!r}"
        if img["natural"] > 0 and img["drawn"] > 0:
            design_in = img["natural"] / 150  # the figures are saved at 150 dpi
            assert img["drawn"] / design_in >= 0.9 * 96, (
                f"{where} is {design_in:.1f} in wide and drawn at {img['drawn']:.0f} px: "
                "make it 7 in wide (the column) so that its text stays legible"
            )


def test_scorecard_has_a_row_per_chapter(server, browser):
    page, response, _ = _visit(browser, f"{server}/scorecard.html")
    try:
        assert response is not None and response.status == 200
        tables = page.eval_on_selector_all(
            "table",
            """ts => ts.map(t => ({
                head: Array.from(t.querySelectorAll('thead th')).map(c => c.innerText.trim()),
                rows: Array.from(t.querySelectorAll('tbody tr'))
                    .map(tr => Array.from(tr.cells).map(c => c.innerText.trim())),
                links: Array.from(t.querySelectorAll('tbody a')).map(a => a.getAttribute('href')),
                badges: t.querySelectorAll('tbody .sd-badge').length,
            }))""",
        )
        summary = next(t for t in tables if t["head"][:2] == ["part", "chapter"])
        claims = next(t for t in tables if "verdict" in t["head"])
        assert "control" in claims["head"], claims["head"]
        for c in CHAPTERS:
            assert any(r[1] == c.slug for r in summary["rows"]), f"no summary row for {c.slug}"
            assert c.slug in {r[0] for r in claims["rows"]}, f"no scorecard row for {c.slug}"
            # every claim row links to the claims table of its chapter
            assert any(h and h.endswith(f"#claims-{c.slug}") for h in claims["links"]), c.slug
        assert claims["head"][-1] == "full (recorded)", claims["head"]
        col = claims["head"].index("verdict")
        verdicts = {r[col] for r in claims["rows"]}
        assert verdicts <= {"held", "inconclusive", "not reproduced", "full only", "not implemented", "not run"}
        assert "not run" not in verdicts, "the book was built without running every chapter"
        recorded = sum(r[-1] != "–" for r in claims["rows"])  # recorded full runs have badges too
        assert claims["badges"] == len(claims["rows"]) + recorded, "every verdict is a coloured badge"
        assert any(t["head"][:2] == ["chapter", "measured on"] for t in tables) or (
            "No chapter has a recorded full-profile run yet." in page.content()
        ), "the scorecard says where and when the recorded full runs were measured"
        alt = page.eval_on_selector("img[src*='scorecard_verdicts']", "i => i.alt")
        assert "chapter" in alt, "the verdict chart needs alt text"
        # a claim link lands on the chapter's claims table
        first = next(h for h in claims["links"] if h and "#claims-" in h)
        target = first.split("#")[1]
        page.goto(f"{server}/{first}", wait_until="load")
        assert page.locator(f"[id='{target}']").count() == 1, f"{first} does not lead to its claims table"
    finally:
        page.close()


@pytest.mark.parametrize("entry", PAGES)
def test_no_machine_paths_or_stray_return_values(entry):
    """No page shows a path of the build machine or a bare ``PosixPath(`` repr."""
    html = (HTML / f"{entry}.html").read_text(errors="replace")
    for bad in ("PosixPath(", str(ROOT), "/_build/figures/"):
        assert bad not in html, f"{entry}.html contains {bad!r}"


def test_every_chapter_page_links_from_index(server, browser):
    page, _, _ = _visit(browser, f"{server}/index.html")
    try:
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        for entry in sorted(CHAPTER_PAGES) + ["scorecard"]:
            assert any(h and h.split("#")[0].endswith(f"{entry}.html") for h in hrefs), entry
    finally:
        page.close()


@pytest.mark.parametrize("entry", sorted(CHAPTER_PAGES))
def test_chapter_page_opens_with_its_results_and_shows_no_test_markers(entry):
    """A "Results at a glance" box near the top; no Claim reprs, nbval markers or unresolved glue."""
    html = (HTML / f"{entry}.html").read_text(errors="replace")
    assert "Results at a glance" in html, f"{entry}.html has no results box"
    article = html.index("<article")  # the page's own content, after the theme's navigation
    box = html.index("Results at a glance")
    assert article < box < html.index("<h2", article), f"{entry}.html: the results box is not before the first section"
    for bad in ("Claim(", "NBVAL_", "{glue"):
        assert bad not in html, f"{entry}.html contains {bad!r}"
    table = html.index('id="claims-')
    assert "claims.html" in html[table : table + 2000], (
        f"{entry}.html: its claims table does not link to how to read them"
    )
    notebook = entry + ".ipynb"
    assert f"labpath={notebook.replace('/', '%2F')}" in html, f"{entry}.html has no Binder link to {notebook}"
    assert "/blob/" in html and f"{entry}.py" in html, f"{entry}.html has no link to its .py source"


@pytest.mark.parametrize("entry", PAGES)
def test_page_does_not_scroll_sideways_on_a_phone(entry, server, browser):
    """At 390 px the page itself never scrolls sideways: wide equations, tables and code scroll in their box."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{server}/{entry}.html", wait_until="load")
        page.wait_for_load_state("networkidle")
        if page.locator(".math").count():
            page.wait_for_function(
                "document.querySelectorAll('.math').length <= document.querySelectorAll('mjx-container').length",
                timeout=20_000,
            )
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, f"{entry}.html scrolls sideways by {wide} px at 390 px"
    finally:
        page.close()


@pytest.mark.parametrize("entry", sorted(CHAPTER_PAGES))
def test_code_cells_fit_the_column_on_a_laptop(entry, server, browser):
    """At 1280 px no code cell needs horizontal scrolling (chapters are formatted to 100 columns)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{server}/{entry}.html", wait_until="load")
        page.wait_for_load_state("networkidle")
        wide = page.evaluate(
            "Array.from(document.querySelectorAll('.cell_input pre'))"
            ".filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.innerText.split('\\n')[0].slice(0, 60))"
        )
        assert not wide, f"{entry}.html: code cells that scroll sideways at 1280 px, starting {wide[:3]}"
    finally:
        page.close()
