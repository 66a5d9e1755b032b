"""Small, pure pieces of the crawler: address checks, header parsing, byte sniffing,
text extraction, paging helpers."""

from __future__ import annotations

import ipaddress
import time

import pytest
from parsel import Selector

from crawlers.media import image_problem, sniff
from crawlers.middlewares import AllowList, is_public, rate_limit_reset_seconds, retry_after_seconds
from crawlers.spiders.base import html_to_text, node_text, parse_time
from crawlers.spiders.mastodon import next_link
from tests.crawlers_support import image_bytes


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.5.4",
                                     "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1",
                                     "fe80::1", "fc00::1", "::ffff:10.0.0.1", "224.0.0.1"])
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_allow_list_takes_hosts_addresses_and_networks() -> None:
    allow = AllowList(["127.0.0.1", "10.0.0.0/8", "intranet.local"])
    assert allow.allows("localhost", ipaddress.ip_address("127.0.0.1"))
    assert allow.allows("x", ipaddress.ip_address("10.9.9.9"))
    assert allow.allows("Intranet.Local", ipaddress.ip_address("192.168.0.1"))
    assert not allow.allows("x", ipaddress.ip_address("192.168.0.1"))


def test_retry_after_and_rate_limit_reset() -> None:
    now = time.time()
    assert retry_after_seconds("7", now) == 7
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert 28 <= retry_after_seconds(date, now) <= 31
    assert retry_after_seconds("soon", now) is None
    iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + 60))
    assert 58 <= rate_limit_reset_seconds(iso, now) <= 61
    assert rate_limit_reset_seconds(str(now + 5), now) == pytest.approx(5, abs=0.01)


def test_media_is_sniffed_from_bytes_not_names() -> None:
    png, jpeg = image_bytes("PNG"), image_bytes("JPEG", (200, 200))
    assert sniff(png) == "image/png" and sniff(jpeg) == "image/jpeg"
    assert image_problem(png) is None
    assert "not an image (sniffed text/html)" in image_problem(b"<html><body>hi</body></html>")
    assert "not an image (sniffed application/pdf)" in image_problem(b"%PDF-1.7 ...")
    assert image_problem(jpeg[: len(jpeg) // 2]).startswith("undecodable image/jpeg")


def test_text_keeps_line_breaks_and_skips_scripts() -> None:
    page = Selector(text="<div class=b><p>Xin <b>chào</b></p><script>x()</script>"
                         "<p>dòng   hai<br>ba</p></div>")
    assert node_text(page.css(".b")) == "Xin chào\ndòng hai\nba"
    assert html_to_text("<p>a</p><p>b &amp; c</p>") == "a\nb & c"
    assert html_to_text("plain") == "plain"


def test_times_are_always_timezone_aware() -> None:
    assert parse_time("2026-11-01T08:00:00Z").utcoffset().total_seconds() == 0
    assert parse_time("Mon, 02 Nov 2026 08:00:00 +0700").utcoffset().total_seconds() == 25200
    assert parse_time("2026-11-01T08:00:00").tzinfo is not None
    assert parse_time("yesterday") is None


def test_mastodon_link_header() -> None:
    header = ('<https://m.example/api/v1/timelines/tag/a?max_id=5>; rel="next", '
              '<https://m.example/api/v1/timelines/tag/a?min_id=9>; rel="prev"')
    assert next_link(header) == "https://m.example/api/v1/timelines/tag/a?max_id=5"
    assert next_link(None) is None


def test_mastodon_timeline_urls() -> None:
    from crawlers.spiders.mastodon import MastodonSpider
    from harmwatch.sources import MastodonSource

    def url(**fields: object) -> str:
        source = MastodonSource(id="m", kind="mastodon", instance="https://m.example/",
                                **fields)
        return MastodonSpider(source=source).timeline_url(max_id="42")

    assert url(hashtag="trẻ em".replace(" ", "")) == (
        "https://m.example/api/v1/timelines/tag/tr%E1%BA%BBem?limit=40&max_id=42")
    assert url(timeline="local") == (
        "https://m.example/api/v1/timelines/public?limit=40&local=true&max_id=42")
    assert url(timeline="public", page_size=20) == (
        "https://m.example/api/v1/timelines/public?limit=20&max_id=42")


def test_a_post_item_is_the_contract_message_validated_once_before_publishing() -> None:
    """Issue 14: the item carries the contract's CrawledPost itself (no mirrored fields);
    what a spider read wrongly is refused by the contract before it is published."""
    import pydantic

    from crawlers.items import MEDIA_REF_NOT_FETCHED, new_post
    from harmwatch.contract import CrawledPost, CrawlProvenance, utcnow

    provenance = CrawlProvenance(crawler="t", crawl_job_id="j", fetched_at=utcnow(),
                                 page_url="http://127.0.0.1/p")
    fields = dict(source="s", source_kind="generic", post_id="1", url="http://127.0.0.1/p#1",
                  text="xin chào", page_body=b"<html>", provenance=provenance)
    item = new_post(image_urls=["http://127.0.0.1/a.jpg"], media_refs=["http://127.0.0.1/v.mp4"],
                    **fields)
    item.update(version=2)
    message = item.validated()
    assert isinstance(message, CrawledPost) and message.version == 2
    assert [(m.url, m.error) for m in message.media] == [
        ("http://127.0.0.1/a.jpg", None), ("http://127.0.0.1/v.mp4", MEDIA_REF_NOT_FETCHED)]
    too_long = new_post(image_urls=[], media_refs=[], **{**fields, "post_id": "x" * 600})
    with pytest.raises(pydantic.ValidationError, match="post_id"):
        too_long.validated()
    with pytest.raises(TypeError, match="titel"):
        new_post(image_urls=[], media_refs=[], titel="typo", **fields)
