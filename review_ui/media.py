"""Serving crawled media and snapshots so that nothing hostile can run.

Media types are decided by sniffing the bytes against an allow-list of raster formats —
never by the crawled ``content_type`` or the URL — so an SVG or HTML file posing as an
image is refused. Previews are blurred and greyed *on the server*, so an unrevealed image
never reaches the reviewer's screen in full, whatever the browser does with CSS.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFilter, ImageOps

from classifiers.media.hashing import ImageRefused, display_frame

# Decoding limits (decompression bombs) are the analyzer's: classifiers.media.Limits.
PREVIEW_SIZE = 480
BLUR_RADIUS = 16
SNAPSHOT_LIMIT = 2 * 1024 * 1024

_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"GIF87a", 0, "image/gif", "gif"),
    (b"GIF89a", 0, "image/gif", "gif"),
    (b"WEBP", 8, "image/webp", "webp"),
)

# Headers for anything crawled: no sniffing, no script even if opened directly.
INERT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}


class UnsupportedMedia(ValueError):
    """Bytes that are not an allow-listed raster image."""


def sniff(data: bytes) -> tuple[str, str]:
    """(content type, extension) from magic bytes, or :class:`UnsupportedMedia`."""
    for magic, offset, content_type, extension in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic and (
                extension != "webp" or data[:4] == b"RIFF"):
            return content_type, extension
    raise UnsupportedMedia("not a PNG, JPEG, GIF or WebP image")


def preview(data: bytes, blur: bool, grayscale: bool) -> bytes:
    """A small JPEG of the first frame, blurred and/or greyed as the reviewer prefers."""
    frame = _frame(data, PREVIEW_SIZE)
    frame.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
    if grayscale:
        frame = ImageOps.grayscale(frame).convert("RGB")
    if blur:
        frame = frame.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=80)
    return out.getvalue()


def still(data: bytes) -> bytes:
    """The first frame as PNG (revealed animations when autoplay is off)."""
    out = io.BytesIO()
    _frame(data, None).save(out, format="PNG")
    return out.getvalue()


def _frame(data: bytes, side: int | None) -> Image.Image:
    """Frame 0, upright, reduced to about ``side``; refused (:class:`UnsupportedMedia`) when
    the bytes are not an allow-listed raster or exceed the analyzer's limits, so the UI
    never decodes what the analyzer would not."""
    sniff(data)
    try:
        return display_frame(data, side)
    except ImageRefused as exc:
        raise UnsupportedMedia(f"cannot decode the image ({exc})") from exc


def snapshot_text(data: bytes) -> str:
    """The crawl snapshot as text for display as plain text (never rendered as HTML)."""
    return data[:SNAPSHOT_LIMIT].decode("utf-8", errors="replace")
