"""Safe decoding and every hash harmwatch computes for one image.

Crawled bytes are hostile by default: they may be a decompression bomb, a truncated
upload, an HTML error page saved as ``.jpg``, or an animation with thousands of frames.
:func:`hash_image` checks the byte size and the declared dimensions *before* decoding,
decodes only as much of the image as the perceptual hashes need, and turns every decoder
failure into :class:`ImageRefused` with a machine-readable reason, so one bad file never
takes the analyzer down.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal

import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageChops, UnidentifiedImageError

from harmwatch.contract import MediaHashes

RefusalReason = Literal[
    "empty",
    "too_many_bytes",
    "not_an_image",
    "too_many_pixels",
    "truncated",
    "corrupt",
]

# Formats crawled pages actually carry. Exotic decoders (TIFF, PSD, ICO, ...) are refused
# because each one adds attack surface and none is worth it for web images.
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")

# Order of the eight PDQ dihedral variants, as pdqhash returns them.
PDQ_VARIANT_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)


class ImageRefused(ValueError):
    """The bytes were not hashed; ``reason`` says why in one stable word."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RefusalReason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """Hard limits applied before and during decoding.

    ``max_pixels`` is checked against the *declared* size, before any pixel is decoded,
    which is what defeats decompression bombs. ``work_side`` is the smallest side the
    perceptual hashes are computed at: PDQ and pHash downsample to 64x64 and 32x32
    anyway, so decoding a 12 MP JPEG at full size only burns CPU. 384 keeps PDQ within
    a few bits (mean 6 on photographs) of a full-resolution hash, which is what lists
    built with Meta's reference hasher contain, at a quarter of the cost of 768.
    """

    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 64_000_000
    max_side: int = 30_000
    work_side: int = 384
    sample_frames: int = 8
    animation_pixel_budget: int = 200_000_000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class CryptoHashes:
    md5: str
    sha1: str
    sha256: str


@dataclass(frozen=True)
class FrameHashes:
    """Perceptual hashes of one decoded frame (the only frame of a still image)."""

    index: int
    pdq: str
    pdq_quality: int
    pdq_variants: tuple[str, ...]  # eight, in PDQ_VARIANT_NAMES order; [0] == pdq
    phash: str
    dhash: str
    trimmed: bool = False  # hashes of the frame with its uniform border cut away


@dataclass(frozen=True)
class ImageHashes:
    """Everything known about one image's identity: bytes hashes and per-frame hashes."""

    crypto: CryptoHashes
    format: str
    width: int
    height: int
    frame_count: int
    frames: tuple[FrameHashes, ...] = field(default_factory=tuple)

    @property
    def first(self) -> FrameHashes:
        return self.frames[0]

    @property
    def sha256(self) -> str:
        return self.crypto.sha256

    def to_contract(self) -> MediaHashes:
        """The first frame's hashes as the ``posts.flagged`` message carries them."""
        return MediaHashes(
            sha256=self.crypto.sha256,
            md5=self.crypto.md5,
            sha1=self.crypto.sha1,
            pdq=self.first.pdq,
            pdq_quality=self.first.pdq_quality,
            phash=self.first.phash,
            dhash=self.first.dhash,
        )


def crypto_hashes(data: bytes) -> CryptoHashes:
    """MD5, SHA-1 and SHA-256 of the bytes (what hash lists of known files key on)."""
    return CryptoHashes(
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha1=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def hash_image(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ImageHashes:
    """All hashes of one image, or :class:`ImageRefused` with the reason.

    Animated GIF/WebP: frame 0 plus an even sample of later frames (``limits.sample_frames``
    in all), each hashed on its own, since abuse material is often hidden mid-animation.
    When frame 0 has a uniform border (padding added to dodge matching), the frame
    without it is hashed too (``trimmed=True``): PDQ and pHash otherwise miss nearly all
    padded copies (docs/robustness.md).
    """
    if not data:
        raise ImageRefused("empty", "no bytes")
    if len(data) > limits.max_bytes:
        raise ImageRefused("too_many_bytes", f"{len(data)} bytes > {limits.max_bytes}")
    crypto = crypto_hashes(data)
    with _open(data, limits) as img:
        # Read before decoding: JPEG draft mode changes img.size to the reduced size.
        width, height, image_format = img.size[0], img.size[1], str(img.format)
        frame_count = getattr(img, "n_frames", 1)
        frames = tuple(_hash_frames(_frames(img, limits)))
    return ImageHashes(
        crypto=crypto,
        format=image_format,
        width=width,
        height=height,
        frame_count=frame_count,
        frames=frames,
    )


def crop_resistant_hash(data: bytes, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """imagehash's crop-resistant hash of frame 0 (comma-joined region dHashes), or None.

    The image is cut into regions by brightness and each region hashed, so a copy cropped
    by 5-10 % still shares regions with the original where PDQ and pHash no longer match
    (docs/robustness.md). About 100 ms an image: computed for confirmed items, and for a
    query only when its pHash came near such an item. Raises :class:`ImageRefused` like
    :func:`hash_image`; None for an image with no region at all (a flat colour).
    """
    with _open(data, limits) as img:
        ((_, rgb),) = _frames(img, replace(limits, sample_frames=1))
        multihash = imagehash.crop_resistant_hash(rgb)
    return str(multihash) if multihash.segment_hashes else None


def media_hashes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> MediaHashes:
    """Contract-ready hashes that never raise: a refused image keeps its byte hashes.

    The byte hashes are still worth matching (a bank may list the exact file) and worth
    keeping as evidence, so a refusal only empties the perceptual fields.
    """
    try:
        return hash_image(data, limits).to_contract()
    except ImageRefused as exc:
        crypto = crypto_hashes(data) if data else None
        return MediaHashes(
            sha256=crypto.sha256 if crypto else None,
            md5=crypto.md5 if crypto else None,
            sha1=crypto.sha1 if crypto else None,
            error=str(exc),
        )


@contextmanager
def _open(data: bytes, limits: Limits) -> Iterator[Image.Image]:
    """Open the bytes with only the allowed parsers; every PIL failure becomes a refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError as exc:
            raise ImageRefused(
                "not_an_image", f"not one of the accepted formats {ALLOWED_FORMATS}"
            ) from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused("too_many_pixels", str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - any header parser failure is a refusal
            raise _decode_refusal(exc) from exc
    with img:
        _check_header(img, limits)
        yield img


def _check_header(img: Image.Image, limits: Limits) -> None:
    """Refuse on the declared size, before a single pixel is decoded."""
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRefused("corrupt", f"declared size {width}x{height}")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        raise ImageRefused(
            "too_many_pixels",
            f"declared {width}x{height} exceeds {limits.max_pixels} pixels or side "
            f"{limits.max_side}",
        )


def _decode_refusal(exc: BaseException) -> ImageRefused:
    if isinstance(exc, MemoryError):
        return ImageRefused("too_many_pixels", "decoder ran out of memory")
    message = str(exc) or type(exc).__name__
    if "truncat" in message.lower() or isinstance(exc, EOFError):
        return ImageRefused("truncated", message)
    return ImageRefused("corrupt", f"{type(exc).__name__}: {message}")


def _frames(img: Image.Image, limits: Limits) -> Iterator[tuple[int, Image.Image]]:
    """Yield (frame index, RGB frame at working size) for frame 0 and a sample of the rest."""
    for index in _frame_sample(img, limits):
        try:
            if index:
                img.seek(index)
            yield index, _decode_rgb(img, limits.work_side)
        except ImageRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on bad data
            raise _decode_refusal(exc) from exc


def _frame_sample(img: Image.Image, limits: Limits) -> list[int]:
    """Frame 0 and evenly spaced later frames, within the animation decoding budget.

    GIF seeking decodes every frame before the target, so the reachable range is capped
    by ``animation_pixel_budget`` rather than by the frame count an attacker declares.
    """
    count = getattr(img, "n_frames", 1) if getattr(img, "is_animated", False) else 1
    if count <= 1 or limits.sample_frames <= 1:
        return [0]
    frame_pixels = max(1, img.size[0] * img.size[1])
    reachable = max(1, min(count, limits.animation_pixel_budget // frame_pixels))
    picks = np.linspace(0, reachable - 1, num=min(limits.sample_frames, reachable))
    return sorted({int(round(p)) for p in picks})


def _decode_rgb(img: Image.Image, side: int | None) -> Image.Image:
    """Decode the current frame to RGB, reduced to about ``side`` on its short side (None:
    full size), for speed and memory.

    JPEG's draft mode makes the decoder itself skip DCT detail (1/2, 1/4, 1/8 scale), the
    single biggest saving on camera photos; other formats are box-reduced after decoding,
    palette and 1-bit images (which ``reduce`` refuses) band by band, so no full-size RGB
    copy of a 64 MP palette PNG is ever made.
    """
    if side and img.format == "JPEG" and not getattr(img, "is_animated", False):
        img.draft("RGB", (side, side))
    img.load()
    factor = min(img.size) // side if side else 1
    if factor < 2:
        return img if img.mode == "RGB" else img.convert("RGB")
    try:
        frame = img.reduce(factor)
    except ValueError:  # "image has wrong mode": P, 1, I;16
        return _reduce_in_bands(img, factor)
    return frame if frame.mode == "RGB" else frame.convert("RGB")


_BAND_ROWS = 256


def _reduce_in_bands(img: Image.Image, factor: int) -> Image.Image:
    """RGB box reduction of an image whose mode ``reduce`` refuses, a band of rows at a time."""
    width, height = img.size[0] // factor, img.size[1] // factor
    out = Image.new("RGB", (width, height))
    step = max(1, _BAND_ROWS // factor) * factor
    for top in range(0, height * factor, step):
        band = img.crop((0, top, width * factor, min(top + step, height * factor)))
        out.paste(band.convert("RGB").reduce(factor), (0, top // factor))
    return out


_ORIENTATION = 0x0112
_TRANSPOSE = {2: (Image.Transpose.FLIP_LEFT_RIGHT,), 3: (Image.Transpose.ROTATE_180,),
              4: (Image.Transpose.FLIP_TOP_BOTTOM,), 5: (Image.Transpose.TRANSPOSE,),
              6: (Image.Transpose.ROTATE_270,), 7: (Image.Transpose.TRANSVERSE,),
              8: (Image.Transpose.ROTATE_90,)}


def display_frame(data: bytes, side: int | None, limits: Limits = DEFAULT_LIMITS) -> Image.Image:
    """Frame 0 as RGB, reduced to about ``side`` (None: full size), turned upright per EXIF.

    For showing an image (the review UI's preview and still): it refuses exactly what the
    analyzer refuses (:class:`ImageRefused`, on the declared size before any pixel is
    decoded) and decodes reduced, so a hostile 64 MP image costs a preview little.
    """
    with _open(data, limits) as img:
        orientation = img.getexif().get(_ORIENTATION, 1)
        try:
            frame = _decode_rgb(img, side)
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on bad data
            raise _decode_refusal(exc) from exc
    for method in _TRANSPOSE.get(orientation, ()):
        frame = frame.transpose(method)
    return frame


def _hash_frames(frames: Iterator[tuple[int, Image.Image]]) -> Iterator[FrameHashes]:
    for index, rgb in frames:
        yield _hash_frame(index, rgb)
        trimmed = trim_border(rgb) if index == 0 else None
        if trimmed is not None:
            yield _hash_frame(index, trimmed, trimmed=True)


def trim_border(rgb: Image.Image, tolerance: int = 24) -> Image.Image | None:
    """The image without its uniform border (the top-left pixel's colour), or None.

    One difference image and a bounding box: cheap. Borders under 2% of the size do not
    count (JPEG ringing at an edge is not padding), nor does a "border" that would leave
    less than a quarter of a side (that is a mostly flat image, not a padded one).
    """
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    mask = ImageChops.difference(rgb, background).convert("L").point(
        lambda v: 255 if v > tolerance else 0)
    box = mask.getbbox()
    if box is None:
        return None
    width, height = rgb.size
    left, top, right, bottom = box
    if max(left, width - right) < 0.02 * width and max(top, height - bottom) < 0.02 * height:
        return None
    if right - left < width // 4 or bottom - top < height // 4:
        return None
    return rgb.crop(box)


def _hash_frame(index: int, rgb: Image.Image, trimmed: bool = False) -> FrameHashes:
    pixels = np.asarray(rgb, dtype=np.uint8)
    gray = rgb.convert("L")  # what imagehash would convert to, done once for both
    vectors, quality = pdqhash.compute_dihedral(pixels)
    variants = tuple(pdq_vector_to_hex(v) for v in vectors)
    return FrameHashes(
        index=index,
        pdq=variants[0],
        pdq_quality=int(quality),
        pdq_variants=variants,
        phash=str(imagehash.phash(gray)),
        dhash=str(imagehash.dhash(gray)),
        trimmed=trimmed,
    )


def pdq_vector_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256-element bit vector to the standard 64-hex-digit PDQ string."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()
