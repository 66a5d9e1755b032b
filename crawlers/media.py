"""Recognising media from its bytes, never from the URL or the server's Content-Type.

A crawled server can lie about what it sends; the analyzer downstream decodes images,
so anything that is not a well-formed image is refused here and recorded with why.
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image

from harmwatch.contract import MediaItem

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"BM", 0, "image/bmp"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"ftyp", 4, "video/mp4"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
    (b"MZ", 0, "application/x-msdownload"),
    (b"\x7fELF", 0, "application/x-elf"),
)


def sniff(data: bytes) -> str:
    """The content type told by the first bytes; text or unknown otherwise."""
    for magic, offset, kind in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if kind == "image/webp" and not data.startswith(b"RIFF"):
                continue
            return kind
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "text/html"
    if head.startswith(b"<svg") or b"<svg" in head[:256]:
        return "image/svg+xml"
    return "application/octet-stream"


def image_problem(data: bytes) -> str | None:
    """Why these bytes are not a complete, decodable image, or None if they are."""
    kind = sniff(data)
    if not kind.startswith("image/") or kind == "image/svg+xml":
        return f"not an image (sniffed {kind})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        return f"undecodable {kind} ({exc})"
    return None


def describe(url: str, data: bytes) -> MediaItem:
    """The media record of downloaded bytes (hashes always, blob ref added by the caller)."""
    return MediaItem(
        url=url,
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        content_type=sniff(data),
        size=len(data),
    )
