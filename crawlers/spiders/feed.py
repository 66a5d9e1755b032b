"""RSS 2.0 and Atom feeds, following RFC 5005 ``rel="next"`` links for older entries.

Namespaces are dropped before parsing so ``dc:creator``, ``atom:link`` and
``media:content`` are read the same whichever prefix a feed uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from parsel import Selector
from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, html_to_text, parse_time
from harmwatch.contract import Author


class FeedSpider(SourceSpider):
    name = "rss"

    def parse(self, response: Response) -> Iterator[Any]:
        self.count_page()
        feed = Selector(body=response.body, type="xml")
        feed.remove_namespaces()
        language = feed.xpath("/rss/channel/language/text() | /feed/@lang").get()
        for item in feed.xpath("/rss/channel/item"):
            yield self._rss_item(response, item, language)
        for entry in feed.xpath("/feed/entry"):
            yield self._atom_entry(response, entry, language)
        next_pages = feed.xpath("/feed/link[@rel='next']/@href"
                                " | /rss/channel/link[@rel='next']/@href").getall()
        yield from self.follow_all(next_pages[:1], response, self.parse)

    def _rss_item(self, response: Response, item: Selector, language: str | None) -> Any:
        link = (item.xpath("link/text()").get() or "").strip()
        guid = (item.xpath("guid/text()").get() or "").strip()
        body = item.xpath("encoded/text()").get() or item.xpath("description/text()").get()
        author = item.xpath("creator/text()").get() or item.xpath("author/text()").get()
        images = item.xpath("enclosure[starts-with(@type, 'image/')]/@url"
                            " | content[starts-with(@type, 'image/') or @medium='image']/@url"
                            " | thumbnail/@url").getall()
        title = (item.xpath("title/text()").get() or "").strip() or None
        return self.make_post(
            response,
            guid or link or _fallback_id(title, item.xpath("pubDate/text()").get()),
            html_to_text(body or ""),
            url=link or None,
            title=title,
            author=Author(name=author.strip()) if author else None,
            published_at=parse_time(item.xpath("pubDate/text() | date/text()").get()),
            language_hint=language,
            image_urls=list(dict.fromkeys(images)),
        )

    def _atom_entry(self, response: Response, entry: Selector, language: str | None) -> Any:
        link = entry.xpath("link[not(@rel) or @rel='alternate']/@href").get()
        body = entry.xpath("content/text()").get() or entry.xpath("summary/text()").get()
        published = parse_time(entry.xpath("published/text()").get())
        updated = parse_time(entry.xpath("updated/text()").get())
        title = (entry.xpath("title/text()").get() or "").strip() or None
        name = entry.xpath("author/name/text()").get()
        images = entry.xpath("link[@rel='enclosure' and starts-with(@type, 'image/')]/@href"
                             " | content[starts-with(@type, 'image/')]/@src").getall()
        return self.make_post(
            response,
            (entry.xpath("id/text()").get() or "").strip() or link or _fallback_id(title, None),
            html_to_text(body or ""),
            url=response.urljoin(link) if link else None,
            title=title,
            author=Author(name=name.strip(), url=entry.xpath("author/uri/text()").get())
            if name else None,
            published_at=published or updated,
            edited_at=updated if published and updated and updated != published else None,
            language_hint=entry.xpath("@lang").get() or language,
            image_urls=list(dict.fromkeys(images)),
        )


def _fallback_id(title: str | None, date: str | None) -> str:
    """A stable id for entries with neither guid nor link (rare, but seen in the wild)."""
    return "sha1:" + hashlib.sha1(f"{title}|{date}".encode(), usedforsecurity=False).hexdigest()
