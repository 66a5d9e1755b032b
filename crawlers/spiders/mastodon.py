"""Mastodon's public API: a hashtag timeline or an instance's public/local timeline.

``GET /api/v1/timelines/tag/:hashtag`` or ``/api/v1/timelines/public[?local=true]``
return Status objects newest first; older pages come from the ``Link: <…>; rel="next"``
header (``max_id``), falling back to the smallest id on the page. Rate-limit headers
(``X-RateLimit-Remaining``/``-Reset``) are honoured by ``HostPauseMiddleware``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from scrapy.http import Response

from crawlers.spiders.base import SourceSpider, html_to_text, parse_time
from harmwatch.contract import Author

_EXTENSION_KINDS = {**dict.fromkeys(("jpg", "jpeg", "png", "gif", "webp", "avif", "bmp"),
                                    "image"),
                    **dict.fromkeys(("mp4", "webm", "mov", "m4v"), "video")}
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of an RFC 8288 Link header."""
    match = _LINK_NEXT.search(header or "")
    return match.group(1) if match else None


class MastodonSpider(SourceSpider):
    name = "mastodon"

    def timeline_url(self, max_id: str | None = None) -> str:
        source = self.source
        params: dict[str, Any] = {"limit": source.page_size}
        if source.timeline == "hashtag":
            path = f"/api/v1/timelines/tag/{quote(source.hashtag, safe='')}"
        else:
            path = "/api/v1/timelines/public"
            if source.timeline == "local":
                params["local"] = "true"
        if max_id:
            params["max_id"] = max_id
        return f"{source.instance}{path}?{urlencode(params)}"

    async def start(self) -> Any:
        request = self.page_request(self.timeline_url(), self.parse,
                                    headers={"Accept": "application/json"})
        if request is not None:
            yield request

    def parse(self, response: Response) -> Iterator[Any]:
        self.count_page()
        try:
            statuses = json.loads(response.body)
        except ValueError:
            self.crawler.stats.inc_value("harmwatch/errors")
            self.logger.warning("%s: not JSON", response.url)
            return
        if not isinstance(statuses, list):
            self.crawler.stats.inc_value("harmwatch/errors")
            self.logger.warning("%s: JSON but not a list of statuses", response.url)
            return
        readable = [s for s in statuses if isinstance(s, dict) and s.get("id")]
        if len(readable) < len(statuses):
            self.skip("unsupported_type", len(statuses) - len(readable))
        statuses = readable
        if not statuses:
            return
        for status in statuses:
            yield self._post(response, status.get("reblog") or status)
        link = response.headers.get("Link")
        url = next_link(link.decode("latin-1") if link else None)
        oldest = min((s["id"] for s in statuses), key=lambda i: (len(i), i))
        request = self.page_request(url or self.timeline_url(oldest), self.parse,
                                    headers={"Accept": "application/json"})
        if request is not None:
            yield request

    def _post(self, response: Response, status: dict[str, Any]) -> Any:
        account = status.get("account") or {}
        spoiler = status.get("spoiler_text") or ""
        text = html_to_text(status.get("content") or "")
        images, refs = self._attachments(status.get("media_attachments") or [])
        return self.make_post(
            response,
            status["id"],
            f"{spoiler}\n{text}".strip(),
            url=status.get("url") or status.get("uri"),
            author=Author(id=account.get("id"), name=account.get("acct"),
                          url=account.get("url")) if account else None,
            published_at=parse_time(status.get("created_at")),
            edited_at=parse_time(status.get("edited_at")),
            language_hint=status.get("language"),
            image_urls=images,
            media_refs=refs,
        )

    def _attachments(self, attachments: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        """Image URLs to fetch, and video/audio URLs to reference.

        Servers that could not process a remote file mark it ``unknown`` and leave only
        its ``remote_url``: kept when that URL names an image or a video by its
        extension. Anything else is counted as skipped ``unsupported_media``.
        """
        images, refs = [], []
        for media in attachments:
            url = media.get("url") or media.get("remote_url")
            kind = media.get("type")
            if kind == "unknown":
                # The local URL of an unprocessed file is often an extension-less proxy.
                url, kind = next(((u, k) for u in (media.get("url"), media.get("remote_url"))
                                  if u and (k := _kind_by_extension(u))), (url, None))
            if url and kind == "image":
                images.append(url)
            elif url and kind in ("video", "gifv", "audio"):
                refs.append(url)
            else:
                self.skip("unsupported_media")
        return images, refs


def _kind_by_extension(url: str) -> str | None:
    suffix = url.lower().split("?", 1)[0].rsplit(".", 1)[-1]
    return _EXTENSION_KINDS.get(suffix)
