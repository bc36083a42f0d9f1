"""Files shipped in ``data/``, each checked against its sha256 in ``data/registry``.

Nothing is downloaded: a chapter that reads shipped data calls :func:`data_path`, which
raises if the file is missing, unlisted, or does not match its recorded hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from .runtime import repo_root

__all__ = ["sha256", "read_registry", "data_path", "verify_registry"]

_SKIP = {"registry", "README.md"}


def sha256(path: Path | str) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_registry(directory: Path | str | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` from ``<directory>/registry`` (default ``<root>/data``)."""
    d = Path(directory) if directory is not None else repo_root() / "data"
    entries: dict[str, str] = {}
    for n, line in enumerate((d / "registry").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if (
            len(parts) != 2
            or len(parts[0]) != 64
            or any(c not in "0123456789abcdef" for c in parts[0])
        ):
            raise ValueError(f"data/registry line {n} must be '<sha256>  <path>'; got {line!r}")
        if parts[1] in entries:
            raise ValueError(f"data/registry lists {parts[1]!r} twice")
        entries[parts[1]] = parts[0]
    return entries


def data_path(name: str, directory: Path | str | None = None) -> Path:
    """Path of the shipped file ``name`` after checking it against the registry."""
    d = Path(directory) if directory is not None else repo_root() / "data"
    reg = read_registry(d)
    if name not in reg:
        raise ValueError(f"{name!r} is not in data/registry; listed: {sorted(reg) or 'none'}")
    path = d / name
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} is listed but missing")
    got = sha256(path)
    if got != reg[name]:
        raise ValueError(f"data file {name!r} has sha256 {got}, registry says {reg[name]}")
    return path


def verify_registry(directory: Path | str | None = None) -> list[str]:
    """Problems with ``data/``: unlisted files, missing files, hash mismatches (empty if none)."""
    d = Path(directory) if directory is not None else repo_root() / "data"
    reg = read_registry(d)
    problems = []
    present = {
        p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file() and p.name not in _SKIP
    }
    problems += [f"unlisted file: {p}" for p in sorted(present - set(reg))]
    for name, digest in reg.items():
        path = d / name
        if not path.is_file():
            problems.append(f"missing file: {name}")
        elif sha256(path) != digest:
            problems.append(f"sha256 mismatch: {name}")
    return problems
