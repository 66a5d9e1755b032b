"""Starting crawl jobs from Python (the CLI, the scheduler, tests, the benchmark).

Each call runs :mod:`crawlers.job` in a subprocess (the Twisted reactor cannot be
restarted) and returns the per-source :class:`CrawlSummary` it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from crawlers.extensions import CrawlSummary
from harmwatch.settings import REPO_ROOT, Settings


class CrawlJobError(RuntimeError):
    """The crawl process failed before it could report its summary."""


def crawl(source_ids: list[str], *, settings: Settings, sources_files: list[Path],
          scrapy: dict[str, Any] | None = None, timeout: float | None = None,
          quiet: bool = False) -> list[CrawlSummary]:
    """Crawl the given sources in one child process and return their summaries."""
    with tempfile.TemporaryDirectory(prefix="harmwatch-crawl-") as tmp:
        spec_path, summary_path = Path(tmp) / "spec.json", Path(tmp) / "summary.json"
        spec = {
            "source_ids": source_ids,
            # Absolute before the child starts in the checkout: a relative path means the
            # caller's directory, not the child's.
            "sources_files": [str(Path(p).expanduser().resolve()) for p in sources_files],
            "settings": _absolute_paths(settings),
            "scrapy": scrapy or {},
            "summary_path": str(summary_path),
        }
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        result = subprocess.run(
            [sys.executable, "-m", "crawlers.job", str(spec_path)],
            env=env, cwd=REPO_ROOT, timeout=timeout, capture_output=quiet, text=True,
        )
        if result.returncode != 0 or not summary_path.exists():
            tail = (result.stderr or "")[-2000:] if quiet else ""
            raise CrawlJobError(f"crawl of {', '.join(source_ids)} exited with "
                                f"status {result.returncode}\n{tail}".rstrip())
        data = json.loads(summary_path.read_text(encoding="utf-8"))
    return [CrawlSummary(**row) for row in data]


def _absolute_paths(settings: Settings) -> dict[str, Any]:
    """The settings for the child, their relative paths made absolute from here."""
    dumped = settings.model_dump(mode="json", exclude_unset=False)
    for name in dumped:
        value = getattr(settings, name)
        if isinstance(value, Path):
            dumped[name] = str(value.expanduser().resolve())
    return dumped
