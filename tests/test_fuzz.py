"""The parser fuzz target (tests/fuzz/fuzz_parsers.py) runs for a bounded time on every
test run, from the seeds of valid inputs in tests/fuzz/seeds/, so a parser change that
lets an unexpected exception out is caught in CI, not by a hostile message or hash list.
It found two such bugs when written (test_banks_formats: not UTF-8, wrong JSON types)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="pip install atheris==3.0.0 (the dev extra)")

FUZZ = Path(__file__).parent / "fuzz"
SECONDS = 20


def test_parsers_survive_bounded_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"  # libFuzzer adds what it finds here, not to the seeds
    shutil.copytree(FUZZ / "seeds", corpus)
    run = subprocess.run(
        [sys.executable, str(FUZZ / "fuzz_parsers.py"), f"-max_total_time={SECONDS}",
         "-timeout=5", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=Path(__file__).parents[1])
    crashes = [p.read_bytes() for p in tmp_path.glob("crash-*")]
    assert run.returncode == 0 and not crashes, (crashes, run.stderr[-4000:])
    assert "Done" in run.stderr
