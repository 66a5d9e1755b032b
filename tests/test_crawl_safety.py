"""Politeness and safety against a misbehaving fixture site: robots.txt, the SSRF guard
(redirects and links to private addresses), size limits, timeouts, 429/503 with
Retry-After, malformed HTML, and media that is not what it claims to be."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlers.extensions import CrawlSummary
from crawlers.runner import crawl
from harmwatch.contract import CrawledPost
from harmwatch.settings import Settings
from tests.crawlers_support import (
    FAST,
    FixtureServer,
    crawl_settings,
    hostile_routes,
    published,
    start_fixture_server,
    write_sources,
)

pytestmark = pytest.mark.integration

SELECTORS = {"post": "div.post", "post_id": "::attr(data-id)", "text": ".text",
             "images": "img::attr(src)", "follow": "a.page::attr(href)"}


@pytest.fixture(scope="module")
def hostile() -> Iterator[FixtureServer]:
    server = start_fixture_server(hostile_routes)
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def hostile_crawl(services: Settings, hostile: FixtureServer,
                  tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[CrawlSummary, dict[str, CrawledPost], float]:
    """One crawl of the whole hostile site (a crawl is seconds; the checks share it)."""
    tmp = tmp_path_factory.mktemp("hostile")
    settings = crawl_settings(services, tmp, crawler_allow_hosts=["127.0.0.1"])
    sources = write_sources(tmp, [{
        "id": "t-hostile", "kind": "generic", "start_urls": [f"{hostile.url}/hostile/"],
        "limits": {"download_delay": 0, "download_timeout": 1.5, "concurrency_per_domain": 4,
                   "max_response_size": "100KiB", "max_media_size": "100KiB"},
        "selectors": SELECTORS}])
    started = time.monotonic()
    [summary] = crawl(["t-hostile"], settings=settings, sources_files=[sources],
                      scrapy={**FAST, "RETRY_TIMES": 2})
    elapsed = time.monotonic() - started
    posts = {p.post_id: p for p in published(settings, "t-hostile", summary.posts)}
    return summary, posts, elapsed


def test_robots_txt_is_obeyed(hostile_crawl, hostile: FixtureServer) -> None:
    summary, posts, _ = hostile_crawl
    assert summary.robots_disallowed >= 1
    assert "h-private" not in posts
    assert hostile.hits["/hostile/private/secret.html"] == 0
    assert hostile.hits["/robots.txt"] >= 1


def test_redirects_and_links_to_private_addresses_are_blocked(hostile_crawl) -> None:
    summary, posts, _ = hostile_crawl
    # /hostile/away redirects to 127.0.0.2 and the index links to [::1]: loopback addresses
    # outside the allow-list (only 127.0.0.1 is allowed), refused like any private address.
    # They stay on this machine even if the guard ever regressed; the private ranges
    # themselves (10/8, 169.254/16, ...) are checked without any traffic in test_crawl_cli.py.
    assert summary.ssrf_blocked >= 2
    assert not any("127.0.0.2" in p.url or "[::1]" in p.url for p in posts.values())


def test_huge_and_too_slow_pages_are_given_up_and_counted(hostile_crawl,
                                                          hostile: FixtureServer) -> None:
    summary, posts, _ = hostile_crawl
    assert "h-huge" not in posts and "h-slow" not in posts
    assert "h-sluggish" in posts  # slow but within the timeout
    assert hostile.hits["/hostile/slow"] == 3  # first try plus RETRY_TIMES=2
    assert summary.errors >= 3  # huge, slow, the blocked redirect


def test_429_and_503_are_retried_after_retry_after(hostile_crawl,
                                                   hostile: FixtureServer) -> None:
    _, posts, elapsed = hostile_crawl
    assert posts["h-limited"].text == "served after Retry-After"
    assert posts["h-busy"].text == "served after 503"
    assert hostile.hits["/hostile/limited"] == 2 and hostile.hits["/hostile/busy"] == 2
    assert elapsed >= 1.0


def test_malformed_html_still_yields_posts(hostile_crawl) -> None:
    _, posts, _ = hostile_crawl
    assert {"h-malformed-1", "h-malformed-2", "h-malformed-3"} <= posts.keys()
    assert posts["h-malformed-3"].text.startswith("Inside a broken table")


def test_media_is_checked_by_its_bytes(hostile_crawl) -> None:
    summary, posts, _ = hostile_crawl
    media = {m.url.rsplit("/", 1)[-1]: m for m in posts["h-index"].media}
    assert list(media) == ["ok.png", "truncated.jpg", "fake.png", "big.png"]
    assert media["ok.png"].blob_ref and media["ok.png"].error is None
    assert media["truncated.jpg"].blob_ref is None
    assert media["truncated.jpg"].error.startswith("undecodable image/jpeg")
    assert media["truncated.jpg"].sha256 and media["truncated.jpg"].md5
    assert media["fake.png"].blob_ref is None
    assert media["fake.png"].error == "not an image (sniffed text/html)"
    assert media["big.png"].blob_ref is None and media["big.png"].error
    assert (summary.media, summary.media_refused, summary.media_failed) == (1, 2, 1)


def test_loopback_is_refused_without_an_allow_list(services: Settings, hostile: FixtureServer,
                                                   tmp_path: Path) -> None:
    settings = crawl_settings(services, tmp_path, crawler_allow_hosts=[])
    sources = write_sources(tmp_path, [{
        "id": "t-ssrf", "kind": "generic", "start_urls": [f"{hostile.url}/hostile/"],
        "limits": {"download_delay": 0}, "selectors": SELECTORS}])
    before = sum(hostile.hits.values())
    [summary] = crawl(["t-ssrf"], settings=settings, sources_files=[sources], scrapy=FAST)
    assert summary.posts == 0 and summary.pages == 0
    assert summary.ssrf_blocked >= 1 and summary.errors >= 1
    assert sum(hostile.hits.values()) == before  # not a single request reached it
