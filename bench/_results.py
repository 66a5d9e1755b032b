"""Append a benchmark's figures to bench/RESULTS.md (never rewrites what others wrote)."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = """# Benchmark results

Each section is appended by the benchmark named in it, with the command that produced it,
the date and the machine. Sections are never edited afterwards: rerun and append.
"""


def append_results(title: str, command: str, body: str) -> None:
    """Add one dated section; creates the file with its header when absent."""
    if not RESULTS.exists():
        RESULTS.write_text(HEADER, encoding="utf-8")
    cpu = _cpu_name()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"\n## {title}\n\n- command: `{command}`\n- date: {stamp}\n"
               f"- machine: {cpu}, Python {sys.version.split()[0]}\n\n{body.rstrip()}\n")
    with RESULTS.open("a", encoding="utf-8") as fp:
        fp.write(section)


def _cpu_name() -> str:
    """Model name and logical CPU count, so figures from different machines are not mixed."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name} x{os.cpu_count()}"
