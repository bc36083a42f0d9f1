"""Recorded runs: full-profile results kept in the repository, with where and when they ran.

The ``ci`` profile runs on every build; the ``full`` profile (the papers' scale) needs a GPU
and hours, so its results are run once on a lent machine and committed:
``neuroinverse run <slug> --profile full --record`` (or ``neuroinverse record <slug>`` after a
run) copies ``_build/results/<slug>.nc`` to ``recorded/full/<slug>.nc`` and adds to it the
hardware, the date, the commit, and a hash of the chapter's source, the library and the data
registry (:func:`source_hash`). The scorecard shows those verdicts beside the ci ones, with
the hardware and date, and marks a recorded run *stale* when that hash no longer matches the
working tree: the chapter or the library changed since it was measured.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .chapters import CHAPTERS, Chapter, get_chapter
from .runtime import repo_root

__all__ = [
    "RecordedRun",
    "recorded_dir",
    "source_hash",
    "hash_sources",
    "record_results",
    "recorded_runs",
]

#: Where recorded runs live, relative to the book root.
RECORDED = Path("recorded")


def recorded_dir(profile: str = "full", root: Path | None = None) -> Path:
    """``<root>/recorded/<profile>``: one ``<slug>.nc`` per recorded chapter."""
    return (root or repo_root()) / RECORDED / profile


def source_hash(chapter: Chapter, root: Path | None = None) -> str:
    """sha256 over the chapter's ``.py``, every library module and the data registry.

    Unlike the build cache's key it leaves out the machine and the installed packages: a
    recorded run is stale when the *code* it ran changed, not when it is read elsewhere.
    """
    h = hashlib.sha256()
    hash_sources(h, chapter, root or repo_root())
    return h.hexdigest()


def hash_sources(h, chapter: Chapter, root: Path) -> None:
    """Feed the chapter's source, the library and the data registry into the hash ``h``."""

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    add("chapter", (root / chapter.source).read_bytes())
    lib = root / "lib" / "neuroinverse"
    for path in sorted(lib.rglob("*.py")):
        add(f"lib/{path.relative_to(lib).as_posix()}", path.read_bytes())
    registry = root / "data" / "registry"
    add("data/registry", registry.read_bytes() if registry.exists() else b"")


def _commit(root: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}+changes" if dirty else rev


def record_results(
    slug: str,
    *,
    results: Path | None = None,
    root: Path | None = None,
    now: str | None = None,
) -> Path:
    """Copy a finished full-profile run's results into ``recorded/full/<slug>.nc``.

    ``results`` defaults to ``_build/results/<slug>.nc``. Refuses a ci run or a smoke run (their
    verdicts are not the full profile's), and a file of another chapter.
    """
    import xarray as xr

    chapter = get_chapter(slug)
    root = root or repo_root()
    src = Path(results) if results is not None else root / "_build" / "results" / f"{slug}.nc"
    if not src.exists():
        raise FileNotFoundError(
            f"no results at {src}; run `neuroinverse run {slug} --profile full` first"
        )
    with xr.open_dataset(src, engine="h5netcdf") as ds:
        ds = ds.load()
    if ds.attrs.get("chapter") != slug:
        raise ValueError(f"{src} holds the results of {ds.attrs.get('chapter')!r}, not {slug!r}")
    profile = ds.attrs.get("profile")
    if profile != "full":
        raise ValueError(f"only full-profile runs are recorded; {src} is a {profile!r} run")
    if ds.attrs.get("prov_smoke", "False") != "False":
        raise ValueError(f"{src} is a smoke run: its verdicts are not the full profile's")
    device = ds.attrs.get("prov_device_name") or ds.attrs.get("prov_cpu") or "unknown"
    ds.attrs.update(
        recorded_at=now or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        recorded_commit=_commit(root),
        recorded_hardware=f"{device} ({ds.attrs.get('prov_device', 'cpu')})",
        recorded_source_hash=source_hash(chapter, root),
    )
    out = recorded_dir("full", root)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{slug}.nc"
    tmp = path.with_suffix(".nc.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    shutil.move(tmp, path)
    return path


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run as the scorecard shows it."""

    slug: str
    measured_on: str
    measured_at: str
    commit: str
    stale: bool
    verdicts: dict[str, str]
    measured: dict[str, float]

    @property
    def where_when(self) -> str:
        return f"{self.measured_on}, {self.measured_at}, commit {self.commit}"


def recorded_runs(profile: str = "full", root: Path | None = None) -> dict[str, RecordedRun]:
    """Every recorded run of ``profile`` in book order, keyed by slug, with its staleness."""
    import xarray as xr

    root = root or repo_root()
    folder = recorded_dir(profile, root)
    runs: dict[str, RecordedRun] = {}
    for chapter in CHAPTERS:
        path = folder / f"{chapter.slug}.nc"
        if not path.exists():
            continue
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            ds = ds.load()
        runs[chapter.slug] = RecordedRun(
            slug=chapter.slug,
            measured_on=str(ds.attrs.get("recorded_hardware", "unknown hardware")),
            measured_at=str(ds.attrs.get("recorded_at", "unknown date")),
            commit=str(ds.attrs.get("recorded_commit", "unknown")),
            stale=ds.attrs.get("recorded_source_hash") != source_hash(chapter, root),
            verdicts={
                str(c): str(v) for c, v in zip(ds.claim.values, ds.verdict.values, strict=True)
            },
            measured={
                str(c): float(m) for c, m in zip(ds.claim.values, ds.measured.values, strict=True)
            },
        )
    return runs
