"""The item a spider yields: a post as parsed, plus what the pipelines need to finish it.

Spiders fill the parsed fields; the pipelines add ``content_hash``/``version``
(incremental state), ``media`` (media pipeline) and ``snapshot_ref`` (snapshot
pipeline), and the Kafka pipeline turns the result into a contract ``CrawledPost``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from harmwatch.contract import Author, CrawledPost, CrawlProvenance, MediaItem

# Scrapy stats key prefix of things a crawl read but did not publish, one key per reason
# (``harmwatch/skipped/duplicate``...): summed into the crawl summary and crawl-stats.
SKIP_PREFIX = "harmwatch/skipped/"
MEDIA_REF_NOT_FETCHED = "not fetched: video or audio, kept as a reference"


@dataclass(repr=False)
class PostItem:
    source: str
    source_kind: str
    post_id: str
    url: str
    text: str
    page_url: str
    page_body: bytes = field(repr=False)
    http_status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict, repr=False)
    server_ip: str | None = None
    crawler: str = ""
    crawl_job_id: str = ""
    user_agent: str | None = None
    fetched_at: datetime | None = None
    title: str | None = None
    thread_id: str | None = None
    thread_title: str | None = None
    author: Author | None = None
    published_at: datetime | None = None
    edited_at: datetime | None = None
    language_hint: str | None = None
    image_urls: list[str] = field(default_factory=list)
    # Video and voice URLs: recorded in the message as media not fetched (the analyzer
    # reads images only), so an analyst sees the post had them.
    media_refs: list[str] = field(default_factory=list)
    # Filled by the pipelines.
    content_hash: str = ""
    version: int = 1
    media: list[MediaItem] = field(default_factory=list)
    snapshot_ref: str | None = None

    def __repr__(self) -> str:
        """Short on purpose: Scrapy logs dropped items, and a post's text can be megabytes."""
        return f"<PostItem {self.source}:{self.post_id} v{self.version} from {self.page_url}>"

    def to_message(self) -> CrawledPost:
        """The contract message; raises pydantic's ValidationError if a field is wrong."""
        return CrawledPost(
            source=self.source,
            source_kind=self.source_kind,
            post_id=self.post_id,
            version=self.version,
            content_hash=self.content_hash,
            url=self.url,
            thread_id=self.thread_id,
            thread_title=self.thread_title,
            author=self.author,
            published_at=self.published_at,
            edited_at=self.edited_at,
            language_hint=self.language_hint,
            title=self.title,
            text=self.text,
            media=[*(self.media or [MediaItem(url=u) for u in self.image_urls]),
                   *(MediaItem(url=u, error=MEDIA_REF_NOT_FETCHED) for u in self.media_refs)],
            snapshot_ref=self.snapshot_ref,
            provenance=CrawlProvenance(
                crawler=self.crawler,
                crawl_job_id=self.crawl_job_id,
                fetched_at=self.fetched_at,
                page_url=self.page_url,
                http_status=self.http_status,
                response_headers=self.response_headers,
                server_ip=self.server_ip,
                user_agent=self.user_agent,
            ),
        )
