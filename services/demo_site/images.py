"""Synthetic demo images: gradients and shapes drawn with Pillow, generated on demand.

Deterministic per name (seeded), so the same URL always serves the same bytes and
the crawler's content hashes stay stable between runs.
"""

from __future__ import annotations

import hashlib
import io
import random
from functools import lru_cache

from PIL import Image, ImageDraw

SIZE = (320, 200)


def _draw(name: str) -> Image.Image:
    rng = random.Random(hashlib.sha256(name.encode()).digest())
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(image)
    for y in range(SIZE[1]):
        t = y / (SIZE[1] - 1)
        draw.line([(0, y), (SIZE[0], y)],
                  fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    for _ in range(rng.randrange(3, 8)):
        x0, y0 = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
        x1, y1 = x0 + rng.randrange(20, 120), y0 + rng.randrange(20, 90)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x0, y0, x1, y1], fill=colour)
    return image


@lru_cache(maxsize=64)
def render(name: str) -> tuple[bytes, str]:
    """The bytes and content type of a named image; the extension picks PNG or JPEG."""
    buffer = io.BytesIO()
    if name.endswith(".png"):
        _draw(name).save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    _draw(name).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), "image/jpeg"
