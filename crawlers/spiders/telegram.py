"""Telegram public channel previews: ``t.me/s/<channel>``, paging back with ``?before=``.

Each message is a ``.tgme_widget_message`` with ``data-post="<channel>/<id>"``; older
messages come from ``?before=<smallest id on the page>`` until a page brings none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, node_text, parse_time
from harmwatch.contract import Author

_BACKGROUND_URL = re.compile(r"background-image:\s*url\(['\"]?([^'\")]+)['\"]?\)")


class TelegramSpider(SourceSpider):
    name = "telegram"

    def page_url(self, before: int | None = None) -> str:
        url = f"{self.source.base_url}/s/{self.source.channel}"
        return f"{url}?before={before}" if before else url

    async def start(self) -> Any:
        request = self.page_request(self.page_url(), self.parse)
        if request is not None:
            yield request

    def parse(self, response: Response) -> Iterator[Any]:
        self.count_page()
        ids = []
        for message in response.css(".tgme_widget_message[data-post]"):
            item = self._post(response, message)
            if item is not None:
                ids.append(int(item.post_id.rsplit("/", 1)[-1]))
                yield item
        oldest = min(ids, default=None)
        previous = response.meta.get("before")
        if oldest is None or oldest <= 1 or (previous is not None and oldest >= previous):
            return
        request = self.page_request(self.page_url(oldest), self.parse, meta={"before": oldest})
        if request is not None:
            yield request

    def _post(self, response: Response, message: Any) -> Any:
        data_post = message.attrib["data-post"]
        if not re.fullmatch(r"[A-Za-z0-9_]+/\d+", data_post):
            return None
        styles = message.css(".tgme_widget_message_photo_wrap::attr(style)").getall()
        images = [m.group(1) for s in styles if (m := _BACKGROUND_URL.search(s))]
        name = node_text(message.css(".tgme_widget_message_owner_name")) or None
        return self.make_post(
            response,
            data_post,
            node_text(message.css(".tgme_widget_message_text")),
            url=message.css("a.tgme_widget_message_date::attr(href)").get(),
            thread_id=self.source.channel,
            author=Author(id=self.source.channel, name=name) if name else None,
            published_at=parse_time(
                message.css(".tgme_widget_message_date time::attr(datetime)").get()),
            image_urls=images,
        )
