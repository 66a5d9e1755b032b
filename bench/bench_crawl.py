"""Crawl throughput: pages/s and posts/s from a local synthetic forum into the real Kafka.

    .venv/bin/python -m bench.bench_crawl             # appends to bench/RESULTS.md

A generated forum (``--threads`` threads × ``--pages`` pages × 20 posts, on 127.0.0.1)
is crawled by the generic spider into an isolated topic of the running broker, once
without media and once with one PNG per post (downloaded, sniffed, decoded, hashed and
stored in a temporary blob store). Each crawl is a fresh process with fresh crawl state,
so every post is published; the rate is measured over Scrapy's own elapsed time (process
start-up excluded). Politeness delays are off for the measurement (``download_delay 0``,
AutoThrottle off, 8 concurrent requests), so this is the pipeline's ceiling, not how fast
harmwatch crawls a real site.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml
from PIL import Image

from crawlers.runner import crawl
from harmwatch.kafka import admin_client
from harmwatch.settings import Settings, load_settings

POSTS_PER_PAGE = 20
SELECTORS = {"follow": "a.thread::attr(href)", "post": "article", "post_id": "::attr(id)",
             "text": "p", "images": "img::attr(src)", "next_page": "a.next::attr(href)"}


def _pngs(count: int) -> list[bytes]:
    """Distinct 128×128 PNGs (~5 KB), made before the clock starts: every post's image is
    new bytes, so each one is really hashed, decoded and written to the blob store."""
    base = Image.radial_gradient("L").resize((128, 128)).convert("RGB")
    out = []
    for n in range(count):
        image = base.copy()
        image.putpixel((n % 128, (n // 128) % 128), (n % 256, 255 - n % 256, 7))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


class Forum(ThreadingHTTPServer):
    """The synthetic forum: pages are made on request, each post has its own image."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections under a crawler's concurrency,
    # and each dropped SYN costs the client a 1 s retransmit: that would be measured.
    request_queue_size = 128

    def __init__(self, threads: int, pages: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.threads, self.pages = threads, pages
        self.pngs = _pngs(threads * pages * POSTS_PER_PAGE)

    def png(self, post_id: str) -> bytes:
        thread, page, n = (int(part) for part in post_id.split("-"))
        return self.pngs[(thread * self.pages + page - 1) * POSTS_PER_PAGE + n]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Forum

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path.startswith("/img/"):
            return self._send(self.server.png(url.path[5:].removesuffix(".png")), "image/png")
        if url.path.startswith("/t/"):
            query = parse_qs(url.query, keep_blank_values=True)
            return self._send(self._thread(url.path, query).encode(), "text/html")
        media = "?media" if url.query == "media" else ""
        links = "".join(f'<a class="thread" href="/t/{t}{media}">t{t}</a>'
                        for t in range(self.server.threads))
        return self._send(f"<html><body>{links}</body></html>".encode(), "text/html")

    def _thread(self, path: str, query: dict[str, list[str]]) -> str:
        thread, page = int(path.split("/")[2]), int(query.get("page", ["1"])[0])
        media = "media" in query
        posts = []
        for n in range(POSTS_PER_PAGE):
            pid = f"{thread}-{page}-{n}"
            img = f'<img src="/img/{pid}.png">' if media else ""
            posts.append(f'<article id="{pid}"><p>Bài viết số {pid}: lịch họp phụ huynh '
                         f"và thông báo của nhà trường về tuần lễ an toàn.</p>{img}</article>")
        more = f'<a class="next" href="{path}?page={page + 1}{"&media" if media else ""}">›</a>' \
            if page < self.server.pages else ""
        return f"<html><body>{''.join(posts)}{more}</body></html>"

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silent: per-request logging would distort the measurement."""


def run_once(forum: Forum, media: bool, base: Settings, tmp: Path) -> tuple[float, float]:
    """(pages/s, posts/s) of one crawl with fresh state."""
    var = tmp / uuid.uuid4().hex
    settings = base.model_copy(update={"var_dir": var, "blob_dir": var / "blobs"})
    start = f"{forum.url}/" if not media else f"{forum.url}/?media"
    entry = {"id": "bench", "kind": "generic", "start_urls": [start], "obey_robots": False,
             "media": media, "allow_hosts": ["127.0.0.1"],
             "limits": {"download_delay": 0, "concurrency_per_domain": 8, "max_pages": 100000},
             "selectors": SELECTORS}
    sources = tmp / f"sources-{uuid.uuid4().hex[:6]}.yaml"
    sources.write_text(yaml.safe_dump({"sources": [entry]}), encoding="utf-8")
    [summary] = crawl(["bench"], settings=settings, sources_files=[sources], quiet=True,
                      scrapy={"AUTOTHROTTLE_ENABLED": False, "HARMWATCH_PROGRESS_INTERVAL": 0,
                              "CONCURRENT_REQUESTS": 16})
    expected = forum.threads * forum.pages * POSTS_PER_PAGE
    if (summary.posts, summary.media) != (expected, expected if media else 0) \
            or summary.publish_failed:
        raise RuntimeError(f"bench crawl published {summary.posts} posts and stored "
                           f"{summary.media} images; expected {expected} of each: {summary}")
    return summary.pages / summary.seconds, summary.posts / summary.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()

    forum = Forum(args.threads, args.pages)
    threading.Thread(target=forum.serve_forever, daemon=True).start()
    run_id = uuid.uuid4().hex[:8]
    base = load_settings(topic_raw=f"bench-{run_id}.posts.raw",
                         topic_flagged=f"bench-{run_id}.posts.flagged",
                         topic_dead=f"bench-{run_id}.posts.dead", topic_partitions=3)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
            for media in (False, True):
                rates = []
                for _ in range(args.runs):
                    rates.append(run_once(forum, media, base, Path(tmp)))
                    print(f"  {'media' if media else 'text'} run: {rates[-1][0]:.1f} pages/s, "
                          f"{rates[-1][1]:.1f} posts/s", flush=True)
                pages = statistics.median(r[0] for r in rates)
                posts = statistics.median(r[1] for r in rates)
                label = "with media (a distinct 5 KB PNG per post)" if media else "text only"
                rows.append(f"| {label} | {pages:.1f} | {posts:.1f} |")
                print(rows[-1], flush=True)
    finally:
        forum.shutdown()
        _drop_topics(base, run_id)
    total = args.threads * args.pages
    body = (f"Generic spider, synthetic forum on 127.0.0.1: {args.threads} threads × "
            f"{args.pages} pages × {POSTS_PER_PAGE} posts = {total * POSTS_PER_PAGE} posts, "
            f"{total + 1} pages; real Kafka (acks=all), blob store on local disk; "
            f"politeness off (no delay, AutoThrottle off, 8 per domain); "
            f"median of {args.runs} runs, Scrapy elapsed time.\n\n"
            "| crawl | pages/s | posts/s |\n|---|---|---|\n" + "\n".join(rows))
    print(body)
    if not args.no_append:
        from bench._results import append_results

        append_results("Crawl throughput (generic spider → Kafka)",
                       ".venv/bin/python -m bench.bench_crawl", body)
    return 0


def _drop_topics(settings: Settings, run_id: str) -> None:
    admin = admin_client(settings)
    try:
        ours = [t for t in admin.list_topics() if t.startswith(f"bench-{run_id}")]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()


if __name__ == "__main__":
    raise SystemExit(main())
