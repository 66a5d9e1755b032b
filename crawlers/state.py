"""Incremental crawl state: the content hash and version last *published* per post.

A row is written only after the broker acknowledged the message, so a post whose
publication failed is tried again on the next crawl. SQLite (WAL) under
``settings.var_dir/crawl-state`` is enough: one row per post, looked up by primary key,
and safe for the scheduler's concurrent crawl processes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from harmwatch.contract import utcnow
from harmwatch.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS published (
    source TEXT NOT NULL,
    post_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    version INTEGER NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (source, post_id)
)
"""


def state_dir(settings: Settings) -> Path:
    return settings.var_dir / "crawl-state"


class CrawlState:
    """What was published before, to skip unchanged posts and number edited ones."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync per row: a row lost in a power cut only means that post is published
        # once more, which downstream's idempotent writes absorb.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    @classmethod
    def for_settings(cls, settings: Settings) -> CrawlState:
        return cls(state_dir(settings) / "state.sqlite3")

    def last(self, source: str, post_id: str) -> tuple[str, int] | None:
        """(content_hash, version) last published for a post, or None if never."""
        row = self._db.execute(
            "SELECT content_hash, version FROM published WHERE source=? AND post_id=?",
            (source, post_id),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def record(self, source: str, post_id: str, content_hash: str, version: int) -> None:
        """Remember a publication; an older version never overwrites a newer one."""
        self._db.execute(
            "INSERT INTO published VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(source, post_id) DO UPDATE SET content_hash=excluded.content_hash, "
            "version=excluded.version, published_at=excluded.published_at "
            "WHERE excluded.version >= published.version",
            (source, post_id, content_hash, version, utcnow().isoformat()),
        )

    def close(self) -> None:
        self._db.close()
