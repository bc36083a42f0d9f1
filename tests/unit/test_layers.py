"""The library's layer rules, read from the import statements of every module.

The rules are written down in the package docstring (``neuroinverse/__init__.py``):
simulators import no models, inference, segmentation or training; models import no
training, metrics or simulators; the core imports no domain package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import neuroinverse

PACKAGE = Path(neuroinverse.__file__).parent
DOMAIN = ("simulators", "models", "inference", "metrics", "segmentation", "representations")
CORE = (
    "runtime",
    "training",
    "results",
    "plotting",
    "chapters",
    "book",
    "build_cache",
    "scorecard",
    "field_page",
    "cli",
    "data",
    "_checks",
    "labels",
    "samplers",
)
FORBIDDEN = {
    "simulators": ("models", "inference", "segmentation", "training", "metrics"),
    "models": ("training", "metrics", "simulators", "inference", "segmentation"),
    "representations": ("simulators", "models", "inference", "segmentation", "metrics"),
    **{core: DOMAIN for core in CORE},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Absolute names of the ``neuroinverse`` modules a file imports (anywhere in it)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import x`` / ``from .pkg import mod`` may name submodules
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m == "neuroinverse" or m.startswith("neuroinverse.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(path: Path, source: str | None = None) -> list[str]:
    own = _layer(_module_name(path))
    banned = FORBIDDEN.get(own, ())
    return sorted(
        f"{_module_name(path)} imports {m}"
        for m in imported_modules(path, source)
        if _layer(m) in banned and _layer(m) != own
    )


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_module_keeps_the_layer_rules(path):
    assert violations(path) == []


def test_the_reader_sees_real_violations():
    """The rule reader catches relative, absolute and function-level imports."""
    fake = PACKAGE / "simulators" / "_layer_probe.py"  # never written: the source is given
    src = (
        "from ..segmentation import affinities\n"
        "import neuroinverse.models.unet\n"
        "def f():\n    from ..training import fit\n"
        "from .priors import BoxUniform\n"
    )
    found = violations(fake, src)
    assert {_layer(v.split(" imports ")[1]) for v in found} == {"segmentation", "models", "training"}


def test_no_module_imports_a_private_name_of_another():
    bad = []
    for path in MODULES:
        own = _module_name(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__") and node.module != "_checks":
                        bad.append(f"{own}: from {'.' * node.level}{node.module} import {a.name}")
    assert bad == []


def test_rules_are_written_in_the_package_docstring():
    doc = neuroinverse.__doc__
    for word in ("simulators", "models", "core", "import no"):
        assert word in doc
