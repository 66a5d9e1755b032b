"""XenForo 2 forums: forum → thread list (paged) → thread pages (paged) → posts.

Markup per XenForo 2's default style: threads are ``.structItem--thread`` rows whose
title link ends in ``.<thread id>/``; posts are ``article.message`` with
``data-content="post-<id>"`` and ``data-author``; bodies are ``.bbWrapper``; the
"next" pager link is ``a.pageNav-jump--next``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, node_text, parse_time
from harmwatch.contract import Author

_THREAD_ID = re.compile(r"\.(\d+)/?(?:page-\d+/?)?(?:[?#].*)?$")
_NEXT = "a.pageNav-jump--next::attr(href)"


class XenForoSpider(SourceSpider):
    name = "xenforo"

    def __init__(self, source: Any, **kwargs: Any) -> None:
        super().__init__(source, **kwargs)
        self._threads = 0

    async def start(self) -> Any:
        for url in self.source.start_urls:
            request = self.page_request(url, self.parse_forum)
            if request is not None:
                yield request

    def parse_forum(self, response: Response) -> Iterator[Any]:
        self.count_page()
        links = response.css(".structItem--thread .structItem-title a[href*='threads/']"
                             "::attr(href)").getall()
        for href in dict.fromkeys(links):
            if self._threads >= self.source.max_threads:
                return
            self._threads += 1
            request = self.page_request(response.urljoin(href), self.parse_thread)
            if request is None:
                return
            yield request
        yield from self.follow_all(response.css(_NEXT).getall()[:1], response, self.parse_forum)

    def parse_thread(self, response: Response) -> Iterator[Any]:
        self.count_page()
        match = _THREAD_ID.search(response.url)
        thread_id = match.group(1) if match else None
        title = node_text(response.css("h1.p-title-value")) or None
        for message in response.css("article.message[data-content^='post-']"):
            yield self._post(response, message, thread_id, title)
        yield from self.follow_all(response.css(_NEXT).getall()[:1], response, self.parse_thread)

    def _post(self, response: Response, message: Any, thread_id: str | None,
              title: str | None) -> Any:
        post_id = message.attrib["data-content"].removeprefix("post-")
        user = message.css(".message-name .username")
        author = Author(
            id=user.attrib.get("data-user-id"),
            name=message.attrib.get("data-author") or node_text(user) or None,
            url=response.urljoin(user.attrib["href"]) if user.attrib.get("href") else None,
        )
        permalink = message.css(".message-attribution-main a::attr(href)").get()
        images = message.css(".bbWrapper img.bbImage").xpath(
            "(@data-url | @src)[1]").getall()
        images += message.css(".attachmentList a.file-preview::attr(href)").getall()
        return self.make_post(
            response,
            post_id,
            node_text(message.css(".message-body .bbWrapper")),
            url=response.urljoin(permalink) if permalink else f"{response.url}#post-{post_id}",
            thread_id=thread_id,
            thread_title=title,
            author=author,
            published_at=parse_time(message.css("time.u-dt::attr(datetime)").get()),
            edited_at=parse_time(message.css(".message-lastEdit time::attr(datetime)").get()),
            image_urls=list(dict.fromkeys(images)),
        )
