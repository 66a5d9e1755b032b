"""The demo forum's HTTP server: stdlib ``http.server``, threaded, 127.0.0.1 only.

Pages: ``/`` (thread list), ``/t/<id>-<slug>?page=N`` (five posts a page, ``rel=next``
links), ``/media/<name>`` (synthetic images), ``/robots.txt`` (disallows ``/admin/``).
"""

from __future__ import annotations

import html
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from services.demo_site import images
from services.demo_site.content import PAGE_SIZE, THREADS, DemoPost, DemoThread

ROBOTS = "User-agent: *\nDisallow: /admin/\n"
EPOCH = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head><body>"
        "<header><a href=\"/\">Diễn đàn Phụ huynh &amp; Học sinh (demo)</a></header>"
        f"<main>{body}</main>"
        "<footer>Synthetic demo data. Tổng đài bảo vệ trẻ em: 111.</footer></body></html>"
    )


def render_index() -> str:
    rows = "".join(
        f'<li class="thread"><a class="thread-link" href="/t/{t.thread_id}-{t.slug}">'
        f"{html.escape(t.title)}</a> <span class=\"count\">{len(t.posts)}</span></li>"
        for t in THREADS
    )
    return _page("Diễn đàn demo", f'<h1>Chủ đề</h1><ul class="threads">{rows}</ul>'
                 '<p><a href="/admin/">admin</a></p>')


def _render_post(post: DemoPost) -> str:
    when = (EPOCH + timedelta(hours=post.post_id)).isoformat()
    imgs = "".join(
        f'<img class="attachment" src="/media/{html.escape(name)}" alt="">' for name in post.images
    )
    user = html.escape(post.author)
    return (
        f'<article class="post" id="post-{post.post_id}" data-post-id="{post.post_id}">'
        f'<a class="permalink" href="#post-{post.post_id}">#{post.post_id}</a>'
        f'<span class="author">{user}</span> <time datetime="{when}">{when[:10]}</time>'
        f'<div class="body" lang="{post.lang}">{html.escape(post.text)}</div>{imgs}</article>'
    )


def render_thread(thread: DemoThread, page: int) -> str | None:
    pages = max(1, -(-len(thread.posts) // PAGE_SIZE))
    if not 1 <= page <= pages:
        return None
    chunk = thread.posts[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    base = f"/t/{thread.thread_id}-{thread.slug}"
    nav = f'<a class="next" rel="next" href="{base}?page={page + 1}">Trang sau</a>' \
        if page < pages else ""
    body = (
        f'<h1 class="thread-title" data-thread-id="{thread.thread_id}">'
        f"{html.escape(thread.title)}</h1>"
        + "".join(_render_post(p) for p in chunk)
        + f'<nav class="pages">Trang {page}/{pages} {nav}</nav>'
    )
    return _page(thread.title, body)


def _find_thread(path: str) -> DemoThread | None:
    ident = path.removeprefix("/t/").split("-", 1)[0]
    return next((t for t in THREADS if str(t.thread_id) == ident), None)


class DemoHandler(BaseHTTPRequestHandler):
    server_version = "harmwatch-demo/1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path == "/":
            self._send(200, render_index().encode(), "text/html; charset=utf-8")
        elif url.path == "/robots.txt":
            self._send(200, ROBOTS.encode(), "text/plain")
        elif url.path.startswith("/t/") and (thread := _find_thread(url.path)):
            page = parse_qs(url.query).get("page", ["1"])[0]
            text = render_thread(thread, int(page)) if page.isdigit() else None
            if text is None:
                self._send(404, b"no such page", "text/plain")
            else:
                self._send(200, text.encode(), "text/html; charset=utf-8")
        elif url.path.startswith("/media/"):
            data, ctype = images.render(url.path.removeprefix("/media/"))
            self._send(200, data, ctype)
        elif url.path.startswith("/admin/"):
            self._send(403, b"forbidden", "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet by default: the crawler's own progress is what the demo shows."""


class DemoSite(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections under a crawler's concurrency,
    # and each dropped SYN costs the client a 1 s retransmit: that would be measured.
    request_queue_size = 128

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start_demo_site(port: int = 8090, host: str = "127.0.0.1") -> DemoSite:
    """Serve the demo forum in a background thread; call ``.shutdown()`` to stop it."""
    server = DemoSite((host, port), DemoHandler)
    threading.Thread(target=server.serve_forever, name="demo-site", daemon=True).start()
    return server
