"""The generic site/forum spider: everything comes from the source's selectors.

From each start page it follows ``follow`` links (e.g. thread lists to threads) and
``next_page`` links, and reads every ``post`` container on every page it visits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, node_text, parse_time, select
from harmwatch.contract import Author


class GenericSpider(SourceSpider):
    name = "generic"

    def parse(self, response: Response) -> Iterator[Any]:
        if not hasattr(response, "css"):
            self.crawler.stats.inc_value("harmwatch/errors")
            self.logger.warning("%s is not a text page", response.url)
            return
        self.count_page()
        rules = self.source.selectors
        yield from self.parse_posts(response)
        if rules.follow:
            yield from self.follow_all(select(response, rules.follow).getall(), response,
                                       self.parse)
        if rules.next_page:
            yield from self.follow_all(select(response, rules.next_page).getall()[:1],
                                       response, self.parse)

    def parse_posts(self, response: Response) -> Iterator[Any]:
        rules = self.source.selectors
        thread_title = _opt_text(response, rules.thread_title)
        thread_id = _opt_text(response, rules.thread_id)
        for container in select(response, rules.post):
            post_id = select(container, rules.post_id).get()
            if not post_id:
                self.crawler.stats.inc_value("harmwatch/posts_without_id")
                continue
            yield self.make_post(
                response,
                post_id.strip(),
                node_text(select(container, rules.text)),
                url=_opt_url(response, container, rules.permalink),
                title=_opt_text(container, rules.title),
                thread_id=thread_id,
                thread_title=thread_title,
                language_hint=_opt_text(container, rules.language),
                author=_author(container, rules.author),
                published_at=parse_time(_opt_text(container, rules.published)),
                image_urls=select(container, rules.images).getall() if rules.images else [],
            )


def _opt_text(scope: Any, expr: str | None) -> str | None:
    return (node_text(select(scope, expr)) or None) if expr else None


def _opt_url(response: Response, scope: Any, expr: str | None) -> str | None:
    href = select(scope, expr).get() if expr else None
    return response.urljoin(href.strip()) if href else None


def _author(scope: Any, expr: str | None) -> Author | None:
    name = _opt_text(scope, expr)
    return Author(name=name) if name else None
