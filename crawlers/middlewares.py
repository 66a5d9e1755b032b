"""Downloader middlewares for safety and politeness, each one small and replaceable.

* :class:`SSRFGuardMiddleware` keeps the crawler on the public internet: crawled pages
  are untrusted and could link or redirect it to internal services.
* :class:`HostPauseMiddleware` honours ``Retry-After`` and rate-limit headers by pausing
  the whole host, not just the one request, before Scrapy's RetryMiddleware retries.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import socket
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.resolver import dnscache

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddress(IgnoreRequest):
    """A request refused by the SSRF guard; the message names the host and address."""


class AllowList:
    """Hosts, addresses and networks (CIDR) that may be reached even though not public."""

    def __init__(self, entries: list[str]) -> None:
        self.hosts = set()
        self.networks = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower())

    def allows(self, host: str, address: IPAddress) -> bool:
        return host.lower() in self.hosts or any(address in net for net in self.networks)


def is_public(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 unwrapped)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(host: str) -> list[IPAddress]:
    """Every address the host resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


class SSRFGuardMiddleware:
    """Refuses non-HTTP schemes and hosts resolving to private, loopback, link-local or
    otherwise non-public addresses, unless allow-listed.

    It checks every request, so redirects (which Scrapy re-schedules as new requests),
    robots.txt and media fetches are all covered. Against DNS answers that change
    between this check and the connection (DNS rebinding), the checked IPv4 address is
    pinned in Scrapy's DNS cache, which the downloader's resolver reads first, and the
    address each response actually came from is checked again.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.allow = AllowList(crawler.settings.getlist("HARMWATCH_ALLOW_HOSTS"))
        self._resolved: dict[str, list[IPAddress]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SSRFGuardMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            self._refuse(request, f"scheme {url.scheme!r} is not crawled")
        host = url.hostname
        if host not in self._resolved:
            try:
                self._resolved[host] = await asyncio.to_thread(resolve, host)
            except OSError as exc:
                self._refuse(request, f"cannot resolve {host} ({exc})")
        addresses = self._resolved[host]
        for address in addresses:
            self._check(request, host, address)
        _pin(host, addresses)

    def process_response(self, request: Request, response: Response) -> Response:
        host = urlsplit(request.url).hostname or ""
        if response.ip_address is not None:
            self._check(request, host, response.ip_address)
        return response

    def _check(self, request: Request, host: str, address: IPAddress) -> None:
        if not is_public(address) and not self.allow.allows(host, address):
            self._refuse(request, f"{host} resolves to non-public address {address}")

    def _refuse(self, request: Request, why: str) -> None:
        self.crawler.stats.inc_value("harmwatch/ssrf_blocked")
        logger.warning("SSRF guard refused %s: %s", request.url, why)
        raise BlockedAddress(f"SSRF guard: {why}")


def _pin(host: str, addresses: list[IPAddress]) -> None:
    """Make the downloader connect to an address we checked, not a fresh DNS answer."""
    ipv4 = [a for a in addresses if a.version == 4]
    if ipv4 and str(ipv4[0]) != host:
        dnscache[host] = str(ipv4[0])


def retry_after_seconds(value: str, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def rate_limit_reset_seconds(value: str, now: float) -> float | None:
    """Seconds until an ``X-RateLimit-Reset`` (ISO 8601 time, as Mastodon sends, or epoch)."""
    value = value.strip()
    try:
        if value.replace(".", "", 1).isdigit():
            stamp = float(value)
        else:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            stamp = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        return None
    return max(0.0, stamp - now)


class HostPauseMiddleware:
    """Pauses a host after 429/503 with ``Retry-After``, or when its rate-limit headers
    say the allowance is spent, so no request to it starts before the pause ends."""

    RATE_LIMIT_RESERVE = 1

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_pause = crawler.settings.getfloat("HARMWATCH_MAX_PAUSE", 120.0)
        self._resume_at: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostPauseMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        wait = self._resume_at.get(urlsplit(request.url).netloc, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    def process_response(self, request: Request, response: Response) -> Response:
        pause = self._pause_for(response)
        if pause:
            host = urlsplit(request.url).netloc
            pause = min(pause, self.max_pause)
            self._resume_at[host] = max(self._resume_at.get(host, 0.0), time.monotonic() + pause)
            self.crawler.stats.inc_value("harmwatch/host_pauses")
            logger.info("pausing %s for %.1fs (HTTP %s)", host, pause, response.status)
        return response

    def _pause_for(self, response: Response) -> float | None:
        now = time.time()
        header = _header(response, "Retry-After")
        if response.status in (429, 503) and header:
            return retry_after_seconds(header, now)
        remaining, reset = _header(response, "X-RateLimit-Remaining"), _header(
            response, "X-RateLimit-Reset"
        )
        if remaining and reset and remaining.isdigit() and int(remaining) <= self.RATE_LIMIT_RESERVE:
            return rate_limit_reset_seconds(reset, now)
        return None


def _header(response: Response, name: str) -> str | None:
    value: Any = response.headers.get(name)
    return value.decode("latin-1") if value else None
