"""Item pipelines, in order: incremental state → media → snapshot → Kafka.

Each stage is independent and configured in ``ITEM_PIPELINES``; the order matters only
so that unchanged posts are dropped before their media is fetched, and the message is
published last, once everything it references is in the blob store.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter, OrderedDict
from typing import Any

from pydantic import ValidationError
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.http import Response
from scrapy.pipelines.media import MediaPipeline
from twisted.python.failure import Failure

from crawlers.items import SKIP_PREFIX, PostItem
from crawlers.media import describe, image_problem
from crawlers.state import CrawlState, state_dir
from crawlers.stats import record_published, skipped_counts
from harmwatch.blobstore import BlobError, get_blob_store, ref_for
from harmwatch.contract import MediaItem, utcnow
from harmwatch.kafka import make_producer
from harmwatch.settings import Settings

logger = logging.getLogger(__name__)


def _hw(crawler: Crawler) -> Settings:
    return crawler.settings["HARMWATCH_SETTINGS"]


class EmptyPostPipeline:
    """Drops posts with neither text nor media, counted as skipped ``no_text``: a post
    whose content we could not read must show up in the summary, not pass as empty."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EmptyPostPipeline:
        return cls(crawler)

    def process_item(self, item: PostItem) -> PostItem:
        post = item.post
        if post.text.strip() or item.image_urls or item.media_refs or post.title:
            return item
        self.crawler.stats.inc_value(f"{SKIP_PREFIX}no_text")
        raise DropItem(f"post {post.post_id} has no text and no media", log_level="DEBUG")


class IncrementalPipeline:
    """Drops posts published before with the same content; numbers edited ones.

    The version is decided here but recorded only by the Kafka pipeline after the
    broker's acknowledgement, so a failed publication is retried on the next crawl.
    With ``HARMWATCH_REPUBLISH`` unchanged posts are sent again at their current version
    (for a downstream that was reset); ids and versions stay the same, so it is idempotent.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.republish = crawler.settings.getbool("HARMWATCH_REPUBLISH")
        self.state = CrawlState.for_settings(_hw(crawler))
        self._this_crawl: set[tuple[str, str, str]] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IncrementalPipeline:
        return cls(crawler)

    def process_item(self, item: PostItem) -> PostItem:
        post = item.post
        identity = (post.source, post.post_id, post.content_hash)
        if identity in self._this_crawl:
            self.crawler.stats.inc_value(f"{SKIP_PREFIX}duplicate")
            raise DropItem(f"post {post.post_id} seen twice in this crawl", log_level="DEBUG")
        self._this_crawl.add(identity)
        last = self.state.last(post.source, post.post_id)
        if last and last[0] == post.content_hash:
            self.crawler.stats.inc_value("harmwatch/posts_unchanged")
            if not self.republish:
                raise DropItem(f"post {post.post_id} unchanged", log_level="DEBUG")
            item.update(version=last[1])
            return item
        item.update(version=last[1] + 1 if last else 1)
        if last:
            self.crawler.stats.inc_value("harmwatch/posts_edited")
        return item

    def close_spider(self) -> None:
        self.state.close()


class BlobMediaPipeline(MediaPipeline):
    """Downloads a post's images through Scrapy (so every safety middleware applies),
    checks what the bytes are, and stores good images in the blob store.

    Refused or failed media stays in the post with ``error`` set: an analyst should know
    that a post had an attachment even when we could not (or would not) keep it.
    """

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler=crawler)
        # Each failed download is logged once, in one line, by media_failed(); Scrapy's
        # base class would add a full traceback for every expected refusal (size cap...).
        logging.getLogger("scrapy.pipelines.media").setLevel(logging.CRITICAL)
        self.blobs = get_blob_store(_hw(crawler))
        self.source = crawler.settings["HARMWATCH_SOURCE"]

    def get_media_requests(self, item: PostItem, info: Any) -> list[Request]:
        if not self.source.media:
            return []
        size = self.source.limits.max_media_size
        return [Request(url, meta={"download_maxsize": size, "download_warnsize": 0})
                for url in item.image_urls]

    def media_to_download(self, request: Request, info: Any, *, item: Any = None) -> None:
        """Always download: the pipeline already de-duplicates URLs within a crawl."""
        return None

    async def media_downloaded(self, response: Response, request: Request, info: Any, *,
                               item: Any = None) -> MediaItem:
        if response.status != 200:
            self.crawler.stats.inc_value("harmwatch/media_failed")
            return MediaItem(url=request.url, error=f"HTTP {response.status}")
        # Decoding, hashing and the fsync'd write take real CPU and disk time for large
        # images: a worker thread keeps the reactor (and every download's timeout) running.
        record, outcome = await asyncio.to_thread(self._examine, request.url, response.body)
        self.crawler.stats.inc_value(f"harmwatch/media_{outcome}")
        return record

    def _examine(self, url: str, data: bytes) -> tuple[MediaItem, str]:
        """The media record and its outcome: ``stored``, ``refused`` or ``failed``."""
        record = describe(url, data)
        problem = image_problem(data)
        if problem:
            return record.model_copy(update={"error": problem}), "refused"
        try:
            record.blob_ref = self.blobs.put(data)
        except BlobError as exc:
            return record.model_copy(update={"error": f"not stored ({exc})"}), "failed"
        return record, "stored"

    def media_failed(self, failure: Failure, request: Request, info: Any) -> None:
        """Count and re-raise: ``item_completed`` turns the failure into a MediaItem."""
        self.crawler.stats.inc_value("harmwatch/media_failed")
        logger.warning("media %s not fetched: %s", request.url, _failure_text(failure))
        failure.raiseException()

    def item_completed(self, results: list[tuple[bool, Any]], item: PostItem,
                       info: Any) -> PostItem:
        if not results:  # media off for this source: the post keeps the URLs alone
            return item
        item.set_media([
            value if ok else MediaItem(url=url, error=_failure_text(value))
            for url, (ok, value) in zip(item.image_urls, results, strict=False)
        ])
        return item

    def file_path(self, request: Request, response: Response | None = None,
                  info: Any = None, *, item: Any = None) -> str:
        """Blobs are content-addressed, so a media file's path is its blob reference."""
        return ref_for(response.body) if response is not None else request.url


def _failure_text(failure: Failure) -> str:
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"[:500]


class SnapshotPipeline:
    """Keeps the raw page each post was read from, as evidence of what was public.

    Posts of one page share one blob and one write: the first post of a page starts it,
    the others (processed concurrently) await the same task.
    """

    CACHE_PAGES = 64

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.blobs = get_blob_store(_hw(crawler))
        self._writes: OrderedDict[tuple[str, int, int], asyncio.Future[str]] = OrderedDict()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SnapshotPipeline:
        return cls(crawler)

    async def process_item(self, item: PostItem) -> PostItem:
        page_url = item.post.provenance.page_url
        key = (page_url, len(item.page_body), hash(item.page_body))
        write = self._writes.get(key)
        if write is None:
            # A worker thread: hashing and the fsync'd write must not stall the reactor.
            write = asyncio.ensure_future(asyncio.to_thread(self.blobs.put, item.page_body))
            self._writes[key] = write
            self.crawler.stats.inc_value("harmwatch/snapshots")
            if len(self._writes) > self.CACHE_PAGES:
                self._writes.popitem(last=False)
        try:
            item.update(snapshot_ref=await write)
        except BlobError as exc:
            self.crawler.stats.inc_value("harmwatch/snapshot_failed")
            logger.error("snapshot of %s not stored: %s", page_url, exc)
        item.page_body = b""
        return item


class KafkaPublishPipeline:
    """Publishes each post to ``settings.topic_raw`` keyed ``source:post_id``.

    An item counts as published only after the broker's acknowledgement; then its
    content hash and version are recorded. Failures are retried; one that persists is
    logged, counted (``harmwatch/publish_failed``, reported in the crawl summary) and
    the message spooled to ``crawl-state/undelivered.jsonl`` — never silently dropped.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.attempts = crawler.settings.getint("HARMWATCH_PUBLISH_ATTEMPTS", 3)
        self.backoff = crawler.settings.getfloat("HARMWATCH_PUBLISH_BACKOFF", 2.0)
        self.settings = _hw(crawler)
        self.state = CrawlState.for_settings(self.settings)
        self.producer = None
        self.published_per_day: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> KafkaPublishPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        source = self.crawler.settings["HARMWATCH_SOURCE"]
        self.producer = make_producer(self.settings, client_id=f"crawler-{source.id}",
                                      max_block_ms=15000)

    async def process_item(self, item: PostItem) -> PostItem:
        try:
            message = item.validated()
        except ValidationError as exc:
            self.crawler.stats.inc_value("harmwatch/invalid_posts")
            raise DropItem(f"post {item.post.post_id} does not fit the contract: {exc}") from exc
        value = message.model_dump_json().encode("utf-8")
        error = await self._send_with_retries(message.key, value)
        if error is not None:
            self.crawler.stats.inc_value("harmwatch/publish_failed")
            self._spool(message.key, value, error)
            logger.error("post %s NOT published after %d attempts: %s",
                         message.key, self.attempts, error)
            raise DropItem(f"post {message.key} not published: {error}", log_level="ERROR")
        self.state.record(message.source, message.post_id, message.content_hash, message.version)
        self.published_per_day[utcnow().date().isoformat()] += 1
        self.crawler.stats.inc_value("harmwatch/posts_published")
        return item

    async def _send_with_retries(self, key: str, value: bytes) -> str | None:
        """None once acknowledged, else the last error after all attempts."""
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            try:
                await self._send(key, value)
                return None
            except Exception as exc:  # noqa: BLE001 - any send failure is retried alike
                error = f"{type(exc).__name__}: {exc}"
                self.crawler.stats.inc_value("harmwatch/publish_retries")
                if attempt < self.attempts:
                    await asyncio.sleep(self.backoff * attempt)
        return error

    async def _send(self, key: str, value: bytes) -> None:
        """One send, awaited until the broker acknowledges it (or refuses)."""
        loop = asyncio.get_running_loop()
        acked: asyncio.Future[None] = loop.create_future()

        def settle(exc: BaseException | None) -> None:
            if not acked.done():
                if exc is None:
                    acked.set_result(None)
                else:
                    acked.set_exception(exc)

        future = self.producer.send(self.settings.topic_raw, key=key, value=value)
        future.add_callback(lambda _meta: loop.call_soon_threadsafe(settle, None))
        future.add_errback(lambda exc: loop.call_soon_threadsafe(settle, exc))
        await acked

    def _spool(self, key: str, value: bytes, error: str) -> None:
        path = state_dir(self.settings) / "undelivered.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"topic": self.settings.topic_raw, "key": key, "error": error,
                  "failed_at": utcnow().isoformat(), "value": value.decode("utf-8")}
        with path.open("a", encoding="utf-8") as spool:
            spool.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close_spider(self) -> None:
        if self.producer is not None:
            self.producer.flush(timeout=30)
            self.producer.close(timeout=30)
        self.state.close()
        source = self.crawler.settings["HARMWATCH_SOURCE"]
        record_published(self.settings, self.crawler.settings.get("HARMWATCH_JOB_ID", ""),
                         source.id, self.published_per_day,
                         skipped_counts(self.crawler.stats.get_stats()))
