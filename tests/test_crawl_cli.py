"""The ``harmwatch crawl`` command's parts that need no crawl: listing, refusing bad
sources files, the scheduler's timing, and the SSRF guard on single requests."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from scrapy import Request
from scrapy.resolver import dnscache
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawlers.cli import due_sources, seconds_until_next
from crawlers.middlewares import BlockedAddress, SSRFGuardMiddleware, is_public
from harmwatch.cli import main
from harmwatch.sources import load_sources
from tests.crawlers_support import write_sources

ENTRIES = [
    {"id": "fast", "kind": "rss", "start_urls": ["https://a.example/rss"], "interval": "1m"},
    {"id": "slow", "kind": "rss", "start_urls": ["https://b.example/rss"], "interval": "1h"},
    {"id": "off", "kind": "rss", "start_urls": ["https://c.example/rss"], "enabled": False},
]


def test_list_shows_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_sources(tmp_path, ENTRIES)
    assert main(["crawl", "--list", "--sources-file", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fast" in out and "disabled" in out


def test_bad_sources_file_and_unknown_source_exit_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_sources(tmp_path, [{"id": "x", "kind": "rss"}])
    assert main(["crawl", "x", "--sources-file", str(bad)]) == 2
    assert "entry 1 (id 'x'): field 'start_urls'" in capsys.readouterr().err
    good = write_sources(tmp_path, ENTRIES)
    assert main(["crawl", "nope", "--sources-file", str(good)]) == 2
    assert "unknown or missing source nope" in capsys.readouterr().err


def test_scheduler_runs_enabled_sources_at_their_intervals(tmp_path: Path) -> None:
    sources = {s.id: s for s in load_sources(write_sources(tmp_path, ENTRIES))}
    next_due: dict[str, float] = {}
    assert due_sources(sources, next_due, now=0.0) == ["fast", "slow"]
    next_due.update({"fast": 60.0, "slow": 3600.0})
    assert due_sources(sources, next_due, now=30.0) == []
    assert seconds_until_next(sources, next_due, now=30.0) == 30.0
    assert due_sources(sources, next_due, now=61.0) == ["fast"]


def _guard(allow: list[str]) -> SSRFGuardMiddleware:
    crawler = get_crawler(settings_dict={"HARMWATCH_ALLOW_HOSTS": allow})
    crawler._stats = MemoryStatsCollector(crawler)  # set by Scrapy only once a crawl starts
    return SSRFGuardMiddleware(crawler)


@pytest.mark.parametrize("address", ["10.0.0.8", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "fd00::8", "::ffff:10.0.0.8", "224.0.0.1"])
def test_private_and_special_addresses_are_not_public(address: str) -> None:
    # Checked on the address alone: no request to a private range is ever built here.
    assert not is_public(ipaddress.ip_address(address))


def test_a_global_address_is_public() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))


@pytest.mark.parametrize("url", ["http://[fd00::8]/", "http://[::1]:8080/", "file:///etc/passwd",
                                 "http://169.254.169.254/latest/meta-data/", "ftp://a.example/"])
def test_ssrf_guard_refuses(url: str) -> None:
    with pytest.raises(BlockedAddress):
        asyncio.run(_guard(["127.0.0.1"]).process_request(Request(url)))


def test_ssrf_guard_allows_the_allow_list_and_pins_the_checked_address() -> None:
    dnscache.pop("localhost", None)
    asyncio.run(_guard(["127.0.0.1"]).process_request(Request("http://localhost:9/")))
    assert dnscache["localhost"] == "127.0.0.1"
    with pytest.raises(BlockedAddress):
        asyncio.run(_guard([]).process_request(Request("http://localhost:9/")))
