"""Crawl progress on stderr, and the end-of-crawl summary the CLI prints.

Scrapy's own logging is kept at WARNING so a crawl's terminal output is these few
lines: a progress line every few seconds and one summary per source.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from twisted.internet import task

from crawlers.stats import skipped_counts


@dataclass
class CrawlSummary:
    source: str
    pages: int = 0
    posts: int = 0
    unchanged: int = 0
    edited: int = 0
    media: int = 0
    media_refused: int = 0
    media_failed: int = 0
    errors: int = 0
    publish_failed: int = 0
    ssrf_blocked: int = 0
    robots_disallowed: int = 0
    pauses: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    finish_reason: str = ""
    seconds: float = 0.0

    @classmethod
    def from_stats(cls, source: str, stats: dict[str, Any]) -> CrawlSummary:
        def get(key: str) -> int:
            return int(stats.get(key, 0))

        elapsed = stats.get("elapsed_time_seconds", 0.0)
        return cls(
            source=source,
            pages=get("harmwatch/pages"),
            posts=get("harmwatch/posts_published"),
            unchanged=get("harmwatch/posts_unchanged"),
            edited=get("harmwatch/posts_edited"),
            media=get("harmwatch/media_stored"),
            media_refused=get("harmwatch/media_refused"),
            media_failed=get("harmwatch/media_failed"),
            errors=get("harmwatch/errors") + get("harmwatch/invalid_posts")
            + get("harmwatch/snapshot_failed") + get("spider_exceptions/count"),
            publish_failed=get("harmwatch/publish_failed"),
            ssrf_blocked=get("harmwatch/ssrf_blocked"),
            robots_disallowed=get("robotstxt/forbidden"),
            pauses=get("harmwatch/host_pauses"),
            skipped=skipped_counts(stats),
            finish_reason=str(stats.get("finish_reason", "")),
            seconds=round(float(elapsed), 2),
        )

    def line(self) -> str:
        return (f"[{self.source}] pages {self.pages} · posts {self.posts} "
                f"(unchanged {self.unchanged}, edited {self.edited}) · media {self.media} "
                f"(refused {self.media_refused}, failed {self.media_failed}) · "
                f"errors {self.errors} · not published {self.publish_failed} · "
                f"blocked {self.ssrf_blocked} · robots {self.robots_disallowed} · "
                f"skipped {self.skipped_line()} · {self.seconds}s ({self.finish_reason})")

    def skipped_line(self) -> str:
        """``3 (duplicate 2, no_text 1)``: every skip with its reason."""
        if not self.skipped:
            return "0"
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.skipped.items())
        return f"{sum(self.skipped.values())} ({reasons})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Progress:
    """Prints a one-line progress report per source at a fixed interval."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.interval = crawler.settings.getfloat("HARMWATCH_PROGRESS_INTERVAL", 5.0)
        self.source = crawler.settings["HARMWATCH_SOURCE"].id
        self._loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        extension = cls(crawler)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self) -> None:
        if self.interval > 0:
            self._loop = task.LoopingCall(self.report)
            self._loop.start(self.interval, now=False)

    def report(self) -> None:
        stats = self.crawler.stats.get_stats()
        summary = CrawlSummary.from_stats(self.source, stats)
        print(f"[{self.source}] … pages {summary.pages} · posts {summary.posts} · "
              f"media {summary.media} · errors {summary.errors}", file=sys.stderr, flush=True)

    def spider_closed(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
