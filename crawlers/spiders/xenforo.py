"""XenForo 2 forums: forum → thread list (paged) → thread pages (paged) → posts.

Markup per XenForo 2's default style: threads are ``.structItem--thread`` rows whose
title link is a thread route; posts are ``article.message`` with
``data-content="post-<id>"`` and ``data-author``; bodies are ``.bbWrapper``; the
"next" pager link is ``a.pageNav-jump--next``.

Thread links are recognised by XenForo's route shapes, not one substring: the route
prefix is ``threads/`` by default but forums rename it (voz.vn uses ``t/``), the slug
is optional (``threads/123/``), friendly URLs may be off (``index.php?threads/…``), and
rows link to ``…/unread``, ``…/latest``, ``…/post-ID`` or ``…/page-N``. Each is reduced
to the thread's first page, so a thread is read once, from its start.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, node_text, parse_time
from harmwatch.contract import Author

# <prefix>/[slug.]<id>/[unread|latest|post-N|page-N]: group 1 is the thread root.
THREAD_ROUTE = re.compile(
    r"^(?P<root>(?:[^?#]*/|[^#]*\?)(?:threads|t)/(?:[^/?#]*\.)?(?P<id>\d+))"
    r"(?:/(?:unread|latest|post-\d+|page-\d+)?)*/?(?:[?#&].*)?$")
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
        for url in self._thread_links(response):
            if self._threads >= self.source.max_threads:
                self.skip("thread_budget")
                continue
            self._threads += 1
            request = self.page_request(url, self.parse_thread)
            if request is None:
                return
            yield request
        yield from self.follow_all(response.css(_NEXT).getall()[:1], response, self.parse_forum)

    def _thread_links(self, response: Response) -> list[str]:
        """Each thread row's first page, once; rows with no thread route are counted."""
        urls: dict[str, None] = {}
        rows = response.css(".structItem--thread")
        if not rows:
            self.skip("page_without_posts")  # a changed layout, a login wall, an empty forum
        for row in rows:
            hrefs = [response.urljoin(h) for h in row.css(".structItem-title a::attr(href)")
                     .getall()]
            roots = [root for h in hrefs if (root := thread_root(h))]
            if roots:
                urls[roots[0]] = None
            else:
                self.skip("no_thread_link")
        return list(urls)

    def parse_thread(self, response: Response) -> Iterator[Any]:
        self.count_page()
        match = THREAD_ROUTE.match(response.url)
        thread_id = match.group("id") if match else None
        title = node_text(response.css("h1.p-title-value")) or None
        messages = response.css("article.message")
        if not messages:
            self.skip("page_without_posts")
        for message in messages:
            if not message.attrib.get("data-content", "").startswith("post-"):
                self.skip("unsupported_type")  # ads, deleted or ignored-member stubs
                continue
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


def thread_root(url: str) -> str | None:
    """The first page of the thread ``url`` belongs to (``…/t/slug.9/``), or None when
    it is not a thread route."""
    match = THREAD_ROUTE.match(url)
    return f"{match.group('root')}/" if match else None
