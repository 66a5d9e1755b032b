"""Small helpers shared by the admin pages: templates, redirects, downloads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from review_ui.context import Ctx
from review_ui.rendering import render

STREAM_CHUNK = 256 * 1024

# The admin section's own tabs: (route name, label), in the order shown.
TABS: list[tuple[str, str]] = [
    ("admin_dashboard", "Dashboard"),
    ("admin_thresholds", "Thresholds"),
    ("admin_banks", "Banks"),
    ("admin_sources", "Sources"),
    ("admin_users", "Users"),
]


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Render ``admin/<name>`` with the admin tabs; everything else comes from ``render``."""
    return render(request, f"admin/{name}", {"tabs": TABS, **context}, status_code=status_code)


def redirect(url: str, **params: str | int) -> RedirectResponse:
    """303 to an admin page, with a short status message in the query string."""
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
    return RedirectResponse(f"{url}?{query}" if query else url, status_code=303)


def download(body: bytes, media_type: str, filename: str, *, inline: bool = False) -> Response:
    """A file response; ``inline`` for images shown on a page, else an attachment."""
    disposition = "inline" if inline else "attachment"
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'{disposition}; filename="{filename}"'})


def download_stream(handle: IO[bytes], media_type: str, filename: str) -> StreamingResponse:
    """An attachment streamed from an open file, which is closed once it has been sent."""
    def chunks() -> Iterator[bytes]:
        with handle:
            yield from iter(lambda: handle.read(STREAM_CHUNK), b"")

    return StreamingResponse(chunks(), media_type=media_type,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def ctx(request: Request) -> Ctx:
    return Ctx.of(request)
