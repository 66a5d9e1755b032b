"""What every harmwatch spider shares: the source, the page budget, error counting,
and building a :class:`PostItem` with the provenance of the response it came from."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import scrapy
from parsel import Selector, SelectorList
from scrapy.http import Response
from twisted.python.failure import Failure

from crawlers.items import SKIP_PREFIX, PostItem, new_post
from harmwatch.contract import CrawlProvenance, utcnow

logger = logging.getLogger(__name__)
_SPACE = re.compile(r"[ \t\r\f\v]+")


class SourceSpider(scrapy.Spider):
    """A spider bound to one entry of the sources file."""

    def __init__(self, source: Any, **kwargs: Any) -> None:
        super().__init__(name=self.name, **kwargs)
        self.source = source
        self._pages_requested = 0

    async def start(self) -> Any:
        """Each start URL of the source, through the safety checks, parsed by ``parse``.

        Spiders whose first page is built from the source (an account, a channel) or
        parsed differently (a forum index) override this.
        """
        for url in self.source.start_urls:
            request = self.page_request(url, self.parse)
            if request is not None:
                yield request

    # -- requests -----------------------------------------------------------------
    def page_request(self, url: str, callback: Callable[..., Any], **kwargs: Any
                     ) -> scrapy.Request | None:
        """A request for one more page, or None once the source's page budget is spent."""
        if self._pages_requested >= self.source.limits.max_pages:
            self.crawler.stats.inc_value("harmwatch/page_budget_reached")
            self.skip("page_budget")
            return None
        self._pages_requested += 1
        return scrapy.Request(url, callback=callback, errback=self.on_error, **kwargs)

    def follow_all(self, urls: Iterable[str], response: Response,
                   callback: Callable[..., Any]) -> Iterable[scrapy.Request]:
        for url in urls:
            request = self.page_request(response.urljoin(url), callback)
            if request is None:
                return
            yield request

    def on_error(self, failure: Failure) -> None:
        """Count a failed page (after retries) instead of letting it vanish in the log."""
        self.crawler.stats.inc_value("harmwatch/errors")
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        logger.warning("page %s failed: %s", url, failure.getErrorMessage())

    def count_page(self) -> None:
        self.crawler.stats.inc_value("harmwatch/pages")

    def skip(self, reason: str, count: int = 1) -> None:
        """Count something not turned into a post, with why: nothing is dropped silently.

        The reasons end up in the crawl summary and the crawl-stats document
        (see :data:`crawlers.extensions.SKIP_PREFIX`).
        """
        self.crawler.stats.inc_value(f"{SKIP_PREFIX}{reason}", count)

    # -- items --------------------------------------------------------------------
    def make_post(self, response: Response, post_id: str, text: str, **fields: Any) -> PostItem:
        """A post read from ``response``, with the evidence of where and when.

        ``fields`` are contract fields (``title``, ``author``, ``published_at``...) plus
        ``image_urls`` and ``media_refs`` (URLs relative to the page are resolved).
        """
        return new_post(
            source=self.source.id,
            source_kind=self.source.kind,
            post_id=str(post_id),
            text=text,
            url=fields.pop("url", None) or response.url,
            language_hint=fields.pop("language_hint", None) or self.source.language,
            page_body=response.body,
            image_urls=[response.urljoin(u) for u in fields.pop("image_urls", []) if u],
            media_refs=[response.urljoin(u) for u in fields.pop("media_refs", []) if u],
            provenance=CrawlProvenance(
                crawler=self.name,
                crawl_job_id=self.crawler.settings.get("HARMWATCH_JOB_ID", ""),
                fetched_at=utcnow(),
                page_url=response.url,
                http_status=response.status,
                response_headers=_headers(response),
                server_ip=str(response.ip_address) if response.ip_address else None,
                user_agent=self.crawler.settings.get("USER_AGENT"),
            ),
            **fields,
        )


def _headers(response: Response) -> dict[str, str]:
    return {
        key.decode("latin-1"): b", ".join(values).decode("latin-1")
        for key, values in response.headers.items()
    }


# -- parsing helpers shared by the spiders -----------------------------------------
def select(scope: Selector | SelectorList, expr: str) -> SelectorList:
    """CSS by default; XPath when the expression starts with ``xpath:``."""
    if expr.startswith("xpath:"):
        return scope.xpath(expr.removeprefix("xpath:"))
    return scope.css(expr)


_BLOCK_TAGS = {"br", "p", "div", "li", "tr", "blockquote", "h1", "h2", "h3", "h4", "h5",
               "h6", "pre", "ul", "ol", "table", "article", "section", "header", "footer",
               "aside", "nav", "figure", "figcaption", "dl", "dt", "dd", "hr", "details",
               "summary", "caption", "thead", "tbody", "tfoot", "main", "address"}
# Cells of a row stay on one line but must not run together ("Tải nhanhDự phòng").
_CELL_TAGS = {"td", "th"}
_SKIP_TAGS = {"script", "style", "template", "noscript"}


def _element_text(element: Any, parts: list[str]) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _SKIP_TAGS or not tag:
        return
    if tag in _BLOCK_TAGS:
        parts.append("\n")
    elif tag in _CELL_TAGS:
        parts.append(" ")
    parts.append(element.text or "")
    for child in element:
        _element_text(child, parts)
        parts.append(child.tail or "")
    if tag in _BLOCK_TAGS:
        parts.append("\n")
    elif tag in _CELL_TAGS:
        parts.append(" ")


def node_text(nodes: SelectorList | Selector) -> str:
    """Readable text of elements (or the strings themselves): line breaks kept for
    block elements, scripts skipped, runs of spaces collapsed."""
    parts: list[str] = []
    for node in nodes if isinstance(nodes, SelectorList) else [nodes]:
        if isinstance(node.root, str):
            parts.append(node.root)
        else:
            _element_text(node.root, parts)
        parts.append("\n")
    lines = (_SPACE.sub(" ", line).strip() for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment (feed descriptions, Mastodon ``content``)."""
    if not fragment or "<" not in fragment:
        return (fragment or "").strip()
    return node_text(Selector(text=f"<div>{fragment}</div>").xpath("//body/div"))


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 or RFC 822 (feeds) times, always timezone-aware; None if unparseable."""
    if not value:
        return None
    value = value.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
