"""The item a spider yields: a post as parsed, plus what the pipelines need to finish it.

Spiders fill the parsed fields of the contract's ``CrawledPost`` directly
(:func:`new_post`); the pipelines add ``version`` (incremental state), ``media`` (media
pipeline) and ``snapshot_ref`` (snapshot pipeline), and the Kafka pipeline validates and
publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harmwatch.contract import CrawledPost, CrawlProvenance, MediaItem, content_hash

# Scrapy stats key prefix of things a crawl read but did not publish, one key per reason
# (``harmwatch/skipped/duplicate``...): summed into the crawl summary and crawl-stats.
SKIP_PREFIX = "harmwatch/skipped/"
MEDIA_REF_NOT_FETCHED = "not fetched: video or audio, kept as a reference"


@dataclass(repr=False)
class PostItem:
    """The contract message being built, plus what only the crawl needs of the page.

    ``post`` is the :class:`~harmwatch.contract.CrawledPost` itself, so a new contract field
    is one edit in the contract and one where a spider fills it. The spider builds it
    unvalidated (``model_construct``); the pipelines add ``version``, ``media`` and
    ``snapshot_ref`` through :meth:`update`; the Kafka pipeline validates it against the
    contract before publishing (a post that does not fit is counted, never sent).
    """

    post: CrawledPost
    page_body: bytes = field(repr=False)
    image_urls: list[str] = field(default_factory=list)
    # Video and voice URLs: recorded in the message as media not fetched (the analyzer
    # reads images only), so an analyst sees the post had them.
    media_refs: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        """Short on purpose: Scrapy logs dropped items, and a post's text can be megabytes."""
        post = self.post
        return (f"<PostItem {post.source}:{post.post_id} v{post.version} "
                f"from {post.provenance.page_url}>")

    def update(self, **fields: Any) -> None:
        """Set message fields decided after parsing (version, media, snapshot_ref)."""
        self.post = self.post.model_copy(update=fields)

    def set_media(self, images: list[MediaItem]) -> None:
        """The images as the media pipeline left them, then the references not fetched."""
        refs = [MediaItem(url=u, error=MEDIA_REF_NOT_FETCHED) for u in self.media_refs]
        self.update(media=[*images, *refs])

    def validated(self) -> CrawledPost:
        """The message checked against the contract; raises pydantic's ValidationError."""
        return CrawledPost.model_validate_json(self.post.model_dump_json())


def new_post(*, page_body: bytes, image_urls: list[str], media_refs: list[str],
             provenance: CrawlProvenance, **fields: Any) -> PostItem:
    """A PostItem whose message has every parsed field, its content hash and version 1.

    ``fields`` are :class:`CrawledPost` fields by name (a misspelt one is a TypeError here,
    not a silently missing value).
    """
    unknown = set(fields) - set(CrawledPost.model_fields)
    if unknown:
        raise TypeError(f"not CrawledPost fields: {sorted(unknown)}")
    post = CrawledPost.model_construct(
        content_hash=content_hash(fields.get("text", ""), [*image_urls, *media_refs]),
        provenance=provenance, **fields)
    item = PostItem(post=post, page_body=page_body, image_urls=image_urls, media_refs=media_refs)
    item.set_media([MediaItem(url=u) for u in image_urls])
    return item
