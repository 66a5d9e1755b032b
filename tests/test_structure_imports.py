"""Import rules between the top-level packages, read from the source with ``ast``.

Stages meet only through Kafka messages, Elasticsearch documents and the blob store; the
serving code never reaches into build tooling (``models/``, ``bench/``, ``tests/``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> top-level packages it must never import (at module level or inside functions)
# The stages run as their own processes and meet only through Kafka, Elasticsearch and the
# blob store. ``classifiers`` is a library, not a stage: the analyzer runs it, and the UI
# uses its hash-bank store and image hashing (admins manage banks; a confirmed image's
# hashes go into one).
STAGES = {"crawlers", "consumers", "review_ui"}
TOOLING = {"models", "bench", "tests"}
FORBIDDEN = {
    "harmwatch": STAGES | {"classifiers"} | TOOLING,  # the shared core imports no stage
    "classifiers": STAGES | TOOLING,
    "crawlers": (STAGES - {"crawlers"}) | TOOLING,
    "consumers": (STAGES - {"consumers"}) | TOOLING,
    "review_ui": (STAGES - {"review_ui"}) | TOOLING,
}


def imported_top_levels(path: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of every import in ``path``, wherever it sits."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_its_import_rules(package: str) -> None:
    breaches = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                for path in sorted((ROOT / package).rglob("*.py"))
                for name, line in imported_top_levels(path) if name in FORBIDDEN[package]]
    assert not breaches, "\n".join(breaches)


def test_packages_resolve_names_statically() -> None:
    """No module-level ``__getattr__``: every public name can be found by go-to-definition
    (``harmwatch --help`` stays fast because commands import inside their functions)."""
    lazy = [str(path.relative_to(ROOT)) for package in [*STAGES, "classifiers", "harmwatch"]
            for path in sorted((ROOT / package).rglob("*.py"))
            if any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
                   for node in ast.parse(path.read_text(encoding="utf-8")).body)]
    assert not lazy, lazy


def test_help_does_not_import_the_heavy_libraries() -> None:
    """torch and transformers take seconds to import, scrapy and kafka most of one."""
    import subprocess
    import sys

    code = ("import sys, harmwatch.cli; harmwatch.cli.build_parser(); "
            "print(','.join(m for m in ('torch', 'transformers', 'scrapy', 'kafka') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out == "", f"`harmwatch --help` imports {out}"
