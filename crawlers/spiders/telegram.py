"""Telegram public channel previews: ``t.me/s/<channel>``, paging back with ``?before=``.

Each message is a ``.tgme_widget_message`` with ``data-post="<channel>/<id>"``; older
messages come from ``?before=<smallest id on the page>`` until a page brings none.

What a message holds, besides its text: photos (albums repeat the caption in nested
markup, so text blocks are read once each), polls (question and options), stickers
(their emoji and image), videos and round videos (thumbnail as an image, the video as a
media reference), voice notes (a media reference) and link previews (title,
description, image). Quoted replies are another message's text and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from parsel import Selector
from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, node_text, parse_time
from harmwatch.contract import Author

_BACKGROUND_URL = re.compile(r"background-image:\s*url\(['\"]?([^'\")]+)['\"]?\)")
_DATA_POST = re.compile(r"[A-Za-z0-9_]+/\d+")


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# The message's own text blocks: not one nested in another (album captions), not the
# quoted message of a reply, not a link preview's (read separately).
_OWN_TEXT = (f".//*[{_has_class('tgme_widget_message_text')}]"
             f"[not(ancestor::*[{_has_class('tgme_widget_message_text')}])]"
             f"[not(ancestor::*[{_has_class('tgme_widget_message_reply')}])]"
             f"[not(ancestor::*[{_has_class('tgme_widget_message_link_preview')}])]")
_IMAGE_STYLES = (".tgme_widget_message_photo_wrap", ".tgme_widget_message_video_thumb",
                 ".tgme_widget_message_roundvideo_thumb", ".link_preview_image",
                 ".link_preview_right_image", "i.tgme_widget_message_sticker")


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
        messages = response.css(".tgme_widget_message[data-post]")
        if not messages and "before" not in response.meta:
            self.skip("page_without_posts")  # the newest page, empty: a changed layout?
        for message in messages:
            item = self._post(response, message)
            if item is None:
                self.skip("unsupported_type")
                continue
            ids.append(int(item.post.post_id.rsplit("/", 1)[-1]))
            yield item
        oldest = min(ids, default=None)
        previous = response.meta.get("before")
        if oldest is None or oldest <= 1 or (previous is not None and oldest >= previous):
            return
        request = self.page_request(self.page_url(oldest), self.parse, meta={"before": oldest})
        if request is not None:
            yield request

    def _post(self, response: Response, message: Selector) -> Any:
        data_post = message.attrib["data-post"]
        if not _DATA_POST.fullmatch(data_post):
            return None
        name = node_text(message.css(".tgme_widget_message_owner_name")) or None
        return self.make_post(
            response,
            data_post,
            message_text(message),
            url=message.css("a.tgme_widget_message_date::attr(href)").get(),
            thread_id=self.source.channel,
            author=Author(id=self.source.channel, name=name) if name else None,
            published_at=parse_time(
                message.css(".tgme_widget_message_date time::attr(datetime)").get()),
            image_urls=message_images(message),
            media_refs=message_media_refs(message),
        )


def message_text(message: Selector) -> str:
    """Caption or text (once), poll, sticker emoji and link preview, in that order."""
    blocks = [node_text(block) for block in message.xpath(_OWN_TEXT)]
    blocks.append(_poll_text(message))
    blocks += message.css(".tgme_widget_message_sticker_wrap [data-emoji]::attr(data-emoji),"
                          " .tgme_widget_message_sticker_wrap img::attr(alt)").getall()
    for preview in message.css(".tgme_widget_message_link_preview"):
        blocks += [node_text(preview.css(".link_preview_site_name")),
                   node_text(preview.css(".link_preview_title")),
                   node_text(preview.css(".link_preview_description"))]
    return "\n".join(dict.fromkeys(b.strip() for b in blocks if b and b.strip()))


def _poll_text(message: Selector) -> str:
    poll = message.css(".tgme_widget_message_poll")
    if not poll:
        return ""
    question = node_text(poll.css(".tgme_widget_message_poll_question"))
    options = [node_text(o) for o in poll.css(".tgme_widget_message_poll_option_text")]
    return "\n".join([question, *(f"- {o}" for o in options if o)])


def message_images(message: Selector) -> list[str]:
    """Photos, video thumbnails, link-preview images and sticker images."""
    urls = []
    for selector in _IMAGE_STYLES:
        for style in message.css(f"{selector}::attr(style)").getall():
            if match := _BACKGROUND_URL.search(style):
                urls.append(match.group(1))
    urls += message.css("i.tgme_widget_message_sticker::attr(data-webp),"
                        " img.tgme_widget_message_sticker::attr(src)").getall()
    return list(dict.fromkeys(urls))


def message_media_refs(message: Selector) -> list[str]:
    """Videos, round videos, video stickers and voice notes: referenced, not fetched."""
    urls = message.css("video.tgme_widget_message_video::attr(src),"
                       " video.tgme_widget_message_roundvideo::attr(src),"
                       " video.tgme_widget_message_videosticker::attr(src),"
                       " audio.tgme_widget_message_voice::attr(src)").getall()
    return list(dict.fromkeys(urls))
