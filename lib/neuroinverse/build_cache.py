"""Which executed chapters a build can reuse: a key over everything that can change their output.

A chapter's executed notebook and results file depend on its ``.py`` source, on the library
(``lib/neuroinverse``), on the data shipped in ``data/`` (through its sha256 registry), on the
profile, seed and device it ran with, on the CPU (its model and instruction set: the math
libraries round differently on different CPUs), and on the installed packages.
:func:`chapter_key` hashes all of these; ``neuroinverse run`` writes the key of every
successful ci/full run to ``_build/cache/<slug>.json`` with its wall time and peak memory, and
``neuroinverse build`` re-executes only the chapters whose key changed (or whose outputs are
missing), ``jobs`` at a time (:func:`execute_chapters`). ``make test`` always runs every
chapter from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from .chapters import CHAPTERS, Chapter
from .recorded import hash_sources
from .runtime import check_profile, cpu_model, repo_root

__all__ = [
    "CacheRecord",
    "chapter_key",
    "cache_path",
    "read_record",
    "write_record",
    "reusable",
    "ChapterOutcome",
    "default_jobs",
    "execute_chapters",
]


@dataclass(frozen=True)
class CacheRecord:
    """What a successful run of one chapter left behind, and the key it was made under."""

    slug: str
    key: str
    profile: str
    wall_s: float
    peak_mib: float | None
    finished: str


def _installed_packages() -> list[str]:
    names = {f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions()}
    return sorted(n for n in names if not n.startswith("=="))


def chapter_key(
    chapter: Chapter,
    *,
    profile: str,
    seed: int,
    device: str,
    root: Path | None = None,
    smoke: bool = False,
) -> str:
    """sha256 over the chapter source, the library, the data registry, the run settings and
    the packages.

    ``device`` should be the resolved device type (``"cpu"``/``"cuda"``), not ``"auto"``.
    """
    root = root or repo_root()
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    hash_sources(h, chapter, root)
    settings = dict(
        profile=profile, seed=int(seed), device=device, smoke=bool(smoke), cpu=cpu_model()
    )
    add("settings", json.dumps(settings, sort_keys=True).encode())
    add("python", f"{sys.version} {platform.machine()}".encode())
    add("packages", "\n".join(_installed_packages()).encode())
    return h.hexdigest()


def cache_path(slug: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "_build" / "cache" / f"{slug}.json"


def read_record(slug: str, root: Path | None = None) -> CacheRecord | None:
    """The recorded run of ``slug``, or ``None`` when there is none (or it cannot be read)."""
    path = cache_path(slug, root)
    try:
        return CacheRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_record(record: CacheRecord, root: Path | None = None) -> Path:
    path = cache_path(record.slug, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=1) + "\n")
    os.replace(tmp, path)
    return path


def reusable(record: CacheRecord | None, key: str, outputs: list[Path]) -> bool:
    """A recorded run can stand in for a new one: same key, and its outputs are all still there."""
    return record is not None and record.key == key and all(p.exists() for p in outputs)


@dataclass
class ChapterOutcome:
    """One chapter of a ``neuroinverse build``: executed (``reused=False``) or reused from the
    cache."""

    slug: str
    reused: bool
    ok: bool
    wall_s: float
    peak_mib: float | None
    log: Path | None = None


def default_jobs(mem_per_job_gib: float = 4.0) -> int:
    """The number of cores, capped so that each job has ``mem_per_job_gib`` of available memory."""
    cores = os.cpu_count() or 1
    try:
        avail_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemAvailable")
        )
        by_memory = max(1, int(avail_kib / (mem_per_job_gib * 1024**2)))
    except (OSError, StopIteration, ValueError):
        by_memory = cores
    return max(1, min(cores, by_memory))


def execute_chapters(
    chapters: list[Chapter] | None = None,
    *,
    profile: str = "ci",
    jobs: int = 1,
    force: bool = False,
    root: Path | None = None,
    report=print,
) -> list[ChapterOutcome]:
    """Execute the chapters whose cache key changed, ``jobs`` at a time, each in its own process.

    A chapter is reused when :func:`~neuroinverse.build_cache.chapter_key` equals the key of
    its last successful run and its executed notebook and results file still exist (never with
    ``force``). Each executed chapter runs ``python -m neuroinverse.cli run SLUG`` (seed 0,
    device auto) with its output in ``_build/logs/SLUG.log``; every printed number is the one a
    sequential build prints, since each chapter is seeded on its own and runs on its own
    threads. ``report`` receives one line per chapter as it finishes.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from .book import build_dir, executed_path
    from .results import results_dir
    from .runtime import resolve_device

    check_profile(profile)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1; got {jobs!r}")
    root = root or repo_root()
    chapters = list(CHAPTERS if chapters is None else chapters)
    device = resolve_device("auto").type
    outcomes: dict[str, ChapterOutcome] = {}
    todo: list[Chapter] = []
    for ch in chapters:
        record = read_record(ch.slug, root)
        key = chapter_key(ch, profile=profile, seed=0, device=device, root=root)
        outputs = [executed_path(ch, root), results_dir() / f"{ch.slug}.nc"]
        if (
            not force
            and record is not None
            and record.profile == profile
            and reusable(record, key, outputs)
        ):
            outcomes[ch.slug] = ChapterOutcome(ch.slug, True, True, record.wall_s, record.peak_mib)
            report(
                f"   {ch.slug}: reused (unchanged since its run of {record.finished}, "
                f"{record.wall_s:.1f} s)"
            )
        else:
            todo.append(ch)
    logs = build_dir(root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def one(ch: Chapter) -> ChapterOutcome:
        log = logs / f"{ch.slug}.log"
        t0 = time.perf_counter()
        with log.open("w") as fh:
            rc = subprocess.run(
                [sys.executable, "-m", "neuroinverse.cli", "run", ch.slug, "--profile", profile],
                cwd=root,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NEUROINVERSE_ROOT": str(root)},
                check=False,
            ).returncode
        wall = time.perf_counter() - t0
        record = read_record(ch.slug, root)
        peak = record.peak_mib if rc == 0 and record is not None else None
        return ChapterOutcome(ch.slug, False, rc == 0, wall, peak, log)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo) or 1))) as pool:
        futures = [pool.submit(one, ch) for ch in todo]
        for fut in as_completed(futures):
            out = fut.result()
            outcomes[out.slug] = out
            peak = f", peak {out.peak_mib / 1024:.2f} GiB" if out.peak_mib else ""
            status = "ok" if out.ok else f"FAILED (see {out.log})"
            report(f"   {out.slug}: {out.wall_s:.1f} s wall{peak}, {status}")
    return [outcomes[ch.slug] for ch in chapters]
