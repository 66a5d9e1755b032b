"""Feeds of every kind through feedparser: RSS 0.9x/1.0/2.0, Atom 0.3/1.0, and JSON Feed.

feedparser carries a decade of real-world fixes (encodings declared in the XML or the
HTTP charset, ``type="xhtml"`` content, RDF, Atom 0.3 and ``dcterms`` dates, broken
markup) that hand-written XPath kept missing silently. It is only ever given the bytes
our guarded downloader already fetched, wrapped in a stream: given a string it would
fetch URLs itself, and given bytes it tries them as a local file name first.

Older entries come from RFC 5005 ``rel="next"`` links (JSON Feed: ``next_url``).
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import feedparser
from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, html_to_text, parse_time
from harmwatch.contract import Author

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp")


def parse_feed(body: bytes, content_type: str | None = None) -> Any:
    """feedparser's result for ``body``, never letting it open a URL or a file.

    ``sanitize_html`` stays on (scripts and handlers removed before we take the text);
    relative URIs are resolved against the feed's own ``xml:base``, which is harmless
    since every URL we then request goes through the SSRF guard.
    """
    headers = {"content-type": content_type} if content_type else {}
    return feedparser.parse(io.BytesIO(body), response_headers=headers,
                            sanitize_html=True, resolve_relative_uris=True)


def is_json_feed(body: bytes) -> bool:
    """JSON Feed (jsonfeed.org) is the one family feedparser 6.0 does not read."""
    return body.lstrip()[:1] == b"{" and b"jsonfeed.org/version" in body[:4096]


class FeedSpider(SourceSpider):
    name = "rss"

    def parse(self, response: Response) -> Iterator[Any]:
        self.count_page()
        if is_json_feed(response.body):
            yield from self._json_feed(response)
            return
        content_type = response.headers.get("Content-Type")
        parsed = parse_feed(response.body,
                            content_type.decode("latin-1") if content_type else None)
        if not parsed.entries:
            self._nothing_read(response, parsed.get("bozo_exception"))
            return
        language = parsed.feed.get("language")
        # An Atom feed's <author> is every entry's author unless the entry names its own.
        feed_author = parsed.feed.get("author_detail") or {}
        for entry in parsed.entries:
            yield self._entry(response, entry, language, feed_author)
        next_pages = [link.get("href") for link in parsed.feed.get("links", [])
                      if link.get("rel") == "next" and link.get("href")]
        yield from self.follow_all(next_pages[:1], response, self.parse)

    def _nothing_read(self, response: Response, why: Any) -> None:
        """A non-empty body that gives no entry is an error: a feed we cannot read must
        not look like a quiet one."""
        if not response.body.strip():
            return
        self.crawler.stats.inc_value("harmwatch/errors")
        self.logger.warning("%s: %d bytes but no feed entries (%s)", response.url,
                            len(response.body), why or "not a feed feedparser knows")

    def _entry(self, response: Response, entry: Any, language: str | None,
               feed_author: dict[str, Any]) -> Any:
        link = entry.get("link")
        title = html_to_text(entry.get("title") or "") or None
        author = entry.get("author_detail") or {}
        name = author.get("name") or entry.get("author")
        if not name:
            author, name = feed_author, feed_author.get("name")
        # dict.get: FeedParserDict.get maps a missing ``updated`` to ``published`` (with a
        # DeprecationWarning), which would make every entry look edited-at-publication.
        published = _when(dict.get(entry, "published_parsed") or entry.get("created_parsed"))
        updated = _when(dict.get(entry, "updated_parsed"))
        return self.make_post(
            response,
            entry.get("id") or link or _fallback_id(title, entry.get("published")),
            html_to_text(_body(entry)),
            url=response.urljoin(link) if link else None,
            title=title,
            author=Author(name=name.strip(), url=author.get("href")) if name else None,
            published_at=published or updated,
            edited_at=updated if published and updated and updated != published else None,
            language_hint=_language(entry) or language,
            image_urls=entry_images(entry),
        )

    def _json_feed(self, response: Response) -> Iterator[Any]:
        try:
            feed = json.loads(response.body)
        except ValueError as exc:
            self._nothing_read(response, exc)
            return
        items = feed.get("items") if isinstance(feed, dict) else None
        if not isinstance(items, list) or not items:
            self._nothing_read(response, "JSON Feed without items")
            return
        feed_authors = feed.get("authors") or ([feed["author"]] if feed.get("author") else [])
        for item in items:
            if not isinstance(item, dict):
                self.skip("unsupported_type")
                continue
            yield self._json_item(response, item, feed.get("language"), feed_authors)
        if isinstance(feed.get("next_url"), str):
            yield from self.follow_all([feed["next_url"]], response, self.parse)

    def _json_item(self, response: Response, item: dict[str, Any], language: str | None,
                   feed_authors: list[Any]) -> Any:
        authors = (item.get("authors") or ([item["author"]] if item.get("author") else [])
                   or feed_authors)
        author = authors[0] if authors and isinstance(authors[0], dict) else {}
        url = item.get("url") or item.get("external_url")
        title = item.get("title") or None
        images = [item.get("image"), item.get("banner_image")]
        images += [a.get("url") for a in item.get("attachments") or []
                   if isinstance(a, dict) and str(a.get("mime_type", "")).startswith("image/")]
        published = parse_time(item.get("date_published"))
        updated = parse_time(item.get("date_modified"))
        return self.make_post(
            response,
            str(item.get("id") or url or _fallback_id(title, item.get("date_published"))),
            html_to_text(item.get("content_html") or "") or (item.get("content_text") or
                                                              item.get("summary") or ""),
            url=response.urljoin(url) if isinstance(url, str) else None,
            title=title,
            author=Author(name=author["name"], url=author.get("url"))
            if author.get("name") else None,
            published_at=published or updated,
            edited_at=updated if published and updated and updated != published else None,
            language_hint=item.get("language") or language,
            image_urls=list(dict.fromkeys(u for u in images if isinstance(u, str) and u)),
        )


def _body(entry: Any) -> str:
    """The fullest text an entry has: ``content`` (content:encoded, Atom content of any
    type), else the summary/description (YouTube's ``media:description`` included)."""
    for content in entry.get("content") or []:
        if content.get("value"):
            return content["value"]
    return entry.get("summary") or entry.get("media_description") or ""


def _language(entry: Any) -> str | None:
    """``xml:lang`` on the entry's content, summary or title, or its ``dc:language``."""
    for detail in (*(entry.get("content") or []), entry.get("summary_detail"),
                   entry.get("title_detail")):
        if detail and detail.get("language"):
            return detail["language"]
    return entry.get("language") or entry.get("dc_language")


def entry_images(entry: Any) -> list[str]:
    """Images of an entry: image enclosures, ``media:content`` images and
    ``media:thumbnail`` (YouTube's video thumbnails among them)."""
    urls = [e.get("href") for e in entry.get("enclosures") or []
            if _is_image(e.get("type"), e.get("href"))]
    urls += [m.get("url") for m in entry.get("media_content") or []
             if m.get("medium") == "image" or _is_image(m.get("type"), m.get("url"))]
    urls += [t.get("url") for t in entry.get("media_thumbnail") or []]
    return list(dict.fromkeys(u for u in urls if u))


def _is_image(kind: str | None, url: str | None) -> bool:
    if kind:
        return kind.startswith("image/")
    return bool(url) and url.lower().split("?", 1)[0].endswith(_IMAGE_EXTENSIONS)


def _when(value: Any) -> datetime | None:
    """feedparser's UTC ``struct_time`` as an aware datetime."""
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)


def _fallback_id(title: str | None, date: str | None) -> str:
    """A stable id for entries with neither guid nor link (rare, but seen in the wild)."""
    return "sha1:" + hashlib.sha1(f"{title}|{date}".encode(), usedforsecurity=False).hexdigest()
