"""Which executed chapters a build can reuse: a key over everything that can change their output.

A chapter's executed notebook and results file depend on its ``.py`` source, on the library
(``lib/neuroinverse``), on the data shipped in ``data/`` (through its sha256 registry), on the
profile, seed and device it ran with, on the CPU (its model and instruction set: the math
libraries round differently on different CPUs), and on the installed packages.
:func:`chapter_key` hashes all of these; ``neuroinverse run`` writes the key of every
successful ci/full run to ``_build/cache/<slug>.json`` with its wall time and peak memory, and
``neuroinverse build`` re-executes only the chapters whose key changed (or whose outputs are
missing). ``make test`` always runs every chapter from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from .chapters import Chapter
from .runtime import cpu_model, repo_root

__all__ = ["CacheRecord", "chapter_key", "cache_path", "read_record", "write_record", "reusable"]


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
    chapter: Chapter, *, profile: str, seed: int, device: str, root: Path | None = None, smoke: bool = False
) -> str:
    """sha256 over the chapter source, the library, the data registry, the run settings and the packages.

    ``device`` should be the resolved device type (``"cpu"``/``"cuda"``), not ``"auto"``.
    """
    root = root or repo_root()
    h = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + len(data).to_bytes(8, "little") + data)

    add("chapter", (root / chapter.source).read_bytes())
    lib = root / "lib" / "neuroinverse"
    for path in sorted(lib.rglob("*.py")):
        add(f"lib/{path.relative_to(lib).as_posix()}", path.read_bytes())
    registry = root / "data" / "registry"
    add("data/registry", registry.read_bytes() if registry.exists() else b"")
    settings = dict(profile=profile, seed=int(seed), device=device, smoke=bool(smoke), cpu=cpu_model())
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
