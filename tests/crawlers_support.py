"""Shared helpers of the crawler tests: a real HTTP fixture server on 127.0.0.1, sources
files, and reading back what a crawl published to the real Kafka.

The server serves ``tests/fixtures/sites`` as static files plus a few dynamic routes
(platform APIs with paging headers, slow/huge/limited pages, media of every kind).
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from PIL import Image

from harmwatch.contract import CrawledPost
from harmwatch.settings import Settings

SITES = Path(__file__).parent / "fixtures" / "sites"
REAL = Path(__file__).parent / "fixtures" / "real"
ROBOTS = "User-agent: *\nDisallow: /hostile/private/\n"


class Reply:
    def __init__(self, status: int = 200, body: bytes | str = b"",
                 content_type: str = "text/html; charset=utf-8",
                 headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = {"Content-Type": content_type, **(headers or {})}
        self.delay = delay


Route = Callable[[dict[str, list[str]], int], Reply]


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


class FixtureServer(ThreadingHTTPServer):
    """Static fixture files plus ``routes``; counts hits per path (for 429-then-200)."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections under a crawler's concurrency,
    # and each dropped SYN costs the client a 1 s retransmit: that would be measured.
    request_queue_size = 128

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.mutable: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def static(self, path: str) -> Reply:
        file = (SITES / path.lstrip("/")).resolve()
        if SITES.resolve() not in file.parents:
            return Reply(404, "outside the fixtures")
        if file.is_dir():
            file = file / "index.html"
        if not file.is_file():
            return Reply(404, "no such fixture")
        types = {".xml": "application/xml", ".json": "application/json"}
        return Reply(200, file.read_bytes(), types.get(file.suffix, "text/html; charset=utf-8"))


class _Handler(BaseHTTPRequestHandler):
    server: FixtureServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        self.server.hits[url.path] += 1
        route = self.server.routes.get(url.path) or _prefix_route(self.server, url.path)
        reply = (route(parse_qs(url.query), self.server.hits[url.path]) if route
                 else self.server.static(url.path))
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawler gave up first (timeouts, size limits): expected in tests

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silent: pytest shows the crawler's own output."""


def _prefix_route(server: FixtureServer, path: str) -> Route | None:
    for prefix, route in server.routes.items():
        if prefix.endswith("*") and path.startswith(prefix[:-1]):
            return lambda query, hits, r=route, p=path: r({**query, "_path": [p]}, hits)
    return None


# -- dynamic routes --------------------------------------------------------------------
def media_route(query: dict[str, list[str]], hits: int) -> Reply:
    name = query["_path"][0].rsplit("/", 1)[-1]
    if name == "truncated.jpg":
        data = image_bytes("JPEG", (256, 256), "orange")
        return Reply(200, data[: len(data) // 2], "image/jpeg")
    if name == "fake.png":
        return Reply(200, "<html><body>not an image</body></html>", "image/png")
    if name == "big.png":
        return Reply(200, b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000, "image/png")
    if name.endswith(".mp4"):
        return Reply(200, b"\0\0\0\x18ftypmp42" + b"\0" * 64, "video/mp4")
    fmt = "JPEG" if name.endswith(".jpg") else "PNG"
    return Reply(200, image_bytes(fmt, colour="navy" if "xf" in name else "teal"),
                 f"image/{fmt.lower()}")


def _post_page(post_id: str, text: str) -> str:
    return (f'<html><body><div class="post" data-id="{post_id}"><p class="text">{text}</p>'
            "</div></body></html>")


def hostile_routes(server: FixtureServer) -> None:
    routes = server.routes
    routes["/robots.txt"] = lambda q, h: Reply(200, ROBOTS, "text/plain")
    routes["/media/*"] = media_route
    routes["/hostile/huge"] = lambda q, h: Reply(
        200, _post_page("h-huge", "x" * 400_000))
    routes["/hostile/sluggish"] = lambda q, h: Reply(
        200, _post_page("h-sluggish", "slow but within the timeout"), delay=0.5)
    routes["/hostile/slow"] = lambda q, h: Reply(200, _post_page("h-slow", "too slow"), delay=3)
    routes["/hostile/limited"] = lambda q, h: (
        Reply(429, "slow down", headers={"Retry-After": "1"}) if h == 1
        else Reply(200, _post_page("h-limited", "served after Retry-After")))
    routes["/hostile/busy"] = lambda q, h: (
        Reply(503, "busy", headers={"Retry-After": "1"}) if h == 1
        else Reply(200, _post_page("h-busy", "served after 503")))
    routes["/hostile/away"] = lambda q, h: Reply(
        302, "", headers={"Location": "http://127.0.0.2:9/internal-admin"})


def editable_routes(server: FixtureServer) -> None:
    server.mutable["/edit/page"] = "first version of the post"
    server.routes["/edit/page"] = lambda q, h: Reply(
        200, _post_page("e-1", server.mutable["/edit/page"]))


def oversized_routes(server: FixtureServer) -> None:
    """A page whose second post is larger than a Kafka message may be (1 MB by default)."""
    huge = "z" * 1_500_000
    server.routes["/oversized"] = lambda q, h: Reply(
        200, '<html><body><div class="post" data-id="o-small"><p class="text">small</p></div>'
             f'<div class="post" data-id="o-huge"><p class="text">{huge}</p></div></body></html>')


def mastodon_routes(server: FixtureServer) -> None:
    page1 = json.loads((SITES / "mastodon" / "tag-page1.json").read_text())
    page2 = json.loads((SITES / "mastodon" / "tag-page2.json").read_text())

    def timeline(query: dict[str, list[str]], hits: int) -> Reply:
        max_id = query.get("max_id", [None])[0]
        statuses = {None: page1, page1[-1]["id"]: page2}.get(max_id, [])
        base = f"{server.url}/api/v1/timelines/tag/treem"
        headers = {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "250",
                   "X-RateLimit-Reset": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}
        if max_id is None:  # the allowance is spent after the first call: wait ~1 s
            reset = datetime.now(UTC) + timedelta(seconds=1)
            headers.update({"X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": reset.isoformat(timespec="milliseconds")})
        if statuses:
            headers["Link"] = (f'<{base}?limit=40&max_id={statuses[-1]["id"]}>; rel="next", '
                               f'<{base}?limit=40&min_id={statuses[0]["id"]}>; rel="prev"')
        return Reply(200, json.dumps(statuses), "application/json; charset=utf-8", headers)

    def public_timeline(query: dict[str, list[str]], hits: int) -> Reply:
        """The local timeline serves the first page, the federated one the second; no Link
        header, so the spider pages on by ``max_id`` until an empty page."""
        local = query.get("local", ["false"])[0] == "true"
        statuses = (page1 if local else page2) if "max_id" not in query else []
        return Reply(200, json.dumps(statuses), "application/json; charset=utf-8")

    server.routes["/api/v1/timelines/tag/treem"] = timeline
    server.routes["/api/v1/timelines/public"] = public_timeline


def telegram_routes(server: FixtureServer) -> None:
    def channel(query: dict[str, list[str]], hits: int) -> Reply:
        before = query.get("before", [None])[0]
        name = {None: "channel.html", "4": "channel-before-4.html"}.get(before)
        if name is None:
            return Reply(200, "<html><body><section class='tgme_channel_history'></section>"
                              "</body></html>")
        return server.static(f"/telegram/{name}")

    server.routes["/s/kenh_phuhuynh"] = channel


def real_routes(server: FixtureServer) -> None:
    """The captured files of ``tests/fixtures/real`` under ``/real/``, each with the
    Content-Type its manifest entry gives (the HTTP charset is part of some cases); the
    Mastodon capture answers the public timeline, then an empty page."""
    manifest = yaml.safe_load((REAL / "expected.yaml").read_text(encoding="utf-8"))
    types = {entry["file"]: entry.get("content_type", "application/xml")
             for entry in manifest["files"]}

    def static(query: dict[str, list[str]], hits: int) -> Reply:
        name = query["_path"][0].removeprefix("/real/")
        if name not in types:
            return Reply(404, "not in the manifest")
        return Reply(200, (REAL / name).read_bytes(), types[name])

    timeline = (REAL / "mastodon" / "public-timeline.json").read_bytes()
    server.routes["/real/*"] = static
    server.routes["/api/v1/timelines/public"] = lambda q, h: Reply(
        200, b"[]" if "max_id" in q else timeline, "application/json; charset=utf-8")


def start_fixture_server(*installers: Callable[[FixtureServer], None], port: int = 0
                         ) -> FixtureServer:
    server = FixtureServer(port)
    for install in installers:
        install(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- sources and settings ---------------------------------------------------------------
def write_sources(directory: Path, entries: list[dict[str, Any]]) -> Path:
    path = directory / f"sources-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump({"sources": entries}, allow_unicode=True), encoding="utf-8")
    return path


def crawl_settings(services: Settings, var_dir: Path, **changes: Any) -> Settings:
    """The session's isolated Kafka/ES settings with a private var dir for crawl state."""
    return services.model_copy(update={"var_dir": var_dir, "blob_dir": var_dir / "blobs",
                                       **changes})


FAST = {"HARMWATCH_PROGRESS_INTERVAL": 0, "AUTOTHROTTLE_ENABLED": False}


def published(settings: Settings, source: str, expect: int, timeout: float = 20.0
              ) -> list[CrawledPost]:
    """Messages of one source on ``topic_raw``, read from the beginning of every partition.

    Partitions are assigned directly (no consumer group), which skips the broker's group
    rebalance delay; reading stops once ``expect`` messages arrived and the topic is idle.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    found: list[CrawledPost] = []
    try:
        partitions = [TopicPartition(settings.topic_raw, p)
                      for p in consumer.partitions_for_topic(settings.topic_raw) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            for message in (m for records in batch.values() for m in records):
                if message.key.decode().startswith(f"{source}:"):
                    post = CrawledPost.model_validate_json(message.value)
                    assert message.key.decode() == post.key
                    found.append(post)
            if not batch and len(found) >= expect:
                break
    finally:
        consumer.close()
    return found


def main() -> None:
    """Serve every fixture site for a manual run (see docs/crawling.md):
    ``python -m tests.crawlers_support --port 8091``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=8091)
    port = parser.parse_args().port

    def media(server: FixtureServer) -> None:
        server.routes["/media/*"] = media_route

    server = start_fixture_server(media, hostile_routes, mastodon_routes, telegram_routes,
                                  port=port)
    print(f"Fixture sites at {server.url}/ (Ctrl-C to stop)", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
