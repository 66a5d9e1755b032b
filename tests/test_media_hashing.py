"""Hashing of ordinary and hostile images (all synthetic: drawn, noise or scikit-image)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data as skdata

from classifiers.media.hashing import ImageRefused, Limits, hash_image, media_hashes
from harmwatch.contract import MediaHashes


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kwargs)
    return out.getvalue()


def _hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skdata.astronaut())


def test_still_image_has_every_hash(astronaut: Image.Image) -> None:
    data = _encode(astronaut, "PNG")
    hashes = hash_image(data)
    assert hashes.crypto.sha256 == hashlib.sha256(data).hexdigest()
    assert hashes.crypto.md5 == hashlib.md5(data).hexdigest()
    assert hashes.crypto.sha1 == hashlib.sha1(data).hexdigest()
    assert (hashes.format, hashes.width, hashes.height, hashes.frame_count) == ("PNG", 512, 512, 1)
    frame = hashes.first
    assert len(frame.pdq) == 64 and len(frame.phash) == 16 and len(frame.dhash) == 16
    assert frame.pdq_quality >= 50
    assert len(frame.pdq_variants) == 8 and frame.pdq_variants[0] == frame.pdq
    contract = hashes.to_contract()
    assert isinstance(contract, MediaHashes)
    assert MediaHashes.model_validate(contract.model_dump()) == contract


def test_pdq_variant_matches_rotated_copy(astronaut: Image.Image) -> None:
    original = hash_image(_encode(astronaut, "PNG")).first
    rotated = hash_image(_encode(astronaut.transpose(Image.Transpose.ROTATE_90), "PNG")).first
    assert min(_hamming(rotated.pdq, v) for v in original.pdq_variants) <= 31
    assert _hamming(rotated.pdq, original.pdq) > 31


def test_jpeg_draft_decoding_keeps_hashes_close() -> None:
    """A 12 MP photo is hashed from a reduced decode; the hashes must barely move."""
    small = Image.fromarray(skdata.astronaut())
    big = small.resize((4000, 3000), Image.Resampling.BICUBIC)
    fast = hash_image(_encode(big, "JPEG", quality=90))
    full = hash_image(_encode(big, "JPEG", quality=90), Limits(work_side=10_000))
    assert (fast.width, fast.height) == (4000, 3000)
    assert _hamming(fast.first.pdq, full.first.pdq) <= 16
    assert _hamming(fast.first.phash, full.first.phash) <= 4


def test_animated_gif_samples_frames() -> None:
    frames = []
    for i in range(30):
        img = Image.new("RGB", (96, 96), "white")
        ImageDraw.Draw(img).rectangle((i * 2, i * 3, i * 2 + 40, i * 3 + 20), fill=(200, 0, 0))
        frames.append(img)
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    hashes = hash_image(data, Limits(sample_frames=5))
    assert hashes.frame_count == 30
    assert [f.index for f in hashes.frames if not f.trimmed] == [0, 7, 14, 22, 29]
    assert len({f.pdq for f in hashes.frames}) > 1


def test_animated_webp_samples_frames() -> None:
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(4)]
    data = _encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    hashes = hash_image(data)
    assert hashes.format == "WEBP" and hashes.frame_count == 4
    assert [f.index for f in hashes.frames] == [0, 1, 2, 3]


def test_animation_budget_caps_reachable_frames() -> None:
    frames = [Image.new("RGB", (100, 100), (i * 20, 0, 0)) for i in range(12)]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    hashes = hash_image(data, Limits(sample_frames=8, animation_pixel_budget=40_000))
    assert max(f.index for f in hashes.frames) <= 3


def _png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny real PNG whose IHDR claims a huge size (CRC fixed so it parses)."""
    data = bytearray(_encode(Image.new("L", (1, 1)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (40_000, 10), (9_000, 9_000)])
def test_declared_size_is_refused_before_decoding(width: int, height: int) -> None:
    with pytest.raises(ImageRefused) as info:
        hash_image(_png_with_declared_size(width, height))
    assert info.value.reason == "too_many_pixels"


def test_real_decompression_bomb_is_refused() -> None:
    bomb = _encode(Image.new("1", (9000, 9000)), "PNG", optimize=True)
    assert len(bomb) < 200_000  # a few KB that would inflate to 81 megapixels
    with pytest.raises(ImageRefused) as info:
        hash_image(bomb)
    assert info.value.reason == "too_many_pixels"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_file_is_refused(astronaut: Image.Image, fmt: str) -> None:
    data = _encode(astronaut, fmt)
    with pytest.raises(ImageRefused) as info:
        hash_image(data[: len(data) // 2])
    assert info.value.reason in {"truncated", "corrupt"}


@pytest.mark.parametrize(
    ("payload", "reasons"),
    [
        (b"", {"empty"}),
        (b"<!doctype html><html><body>404</body></html>", {"not_an_image"}),
        (bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8)), {"not_an_image"}),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, {"not_an_image", "corrupt", "truncated"}),
    ],
)
def test_non_images_are_refused(payload: bytes, reasons: set[str]) -> None:
    with pytest.raises(ImageRefused) as info:
        hash_image(payload)
    assert info.value.reason in reasons


def test_exotic_formats_are_not_parsed(astronaut: Image.Image) -> None:
    with pytest.raises(ImageRefused) as info:
        hash_image(_encode(astronaut, "TIFF"))
    assert info.value.reason == "not_an_image"


def test_byte_limit() -> None:
    data = _encode(Image.new("RGB", (64, 64), "blue"), "PNG")
    with pytest.raises(ImageRefused) as info:
        hash_image(data, Limits(max_bytes=len(data) - 1))
    assert info.value.reason == "too_many_bytes"


def test_media_hashes_never_raises_and_keeps_byte_hashes() -> None:
    payload = b"GIF89a" + b"\x00" * 10
    result = media_hashes(payload)
    assert result.error and result.pdq is None
    assert result.sha256 == hashlib.sha256(payload).hexdigest()
    assert media_hashes(b"").error.startswith("empty")


def test_flat_image_has_low_pdq_quality() -> None:
    """PDQ quality is what lets banks ignore featureless images (quality < 50)."""
    flat = hash_image(_encode(Image.new("RGB", (200, 200), (90, 90, 90)), "PNG"))
    assert flat.first.pdq_quality < 50


def test_padded_copy_also_hashed_without_its_border(astronaut: Image.Image) -> None:
    """Padding defeats PDQ and pHash; the trimmed copy's hashes find the original again."""
    original = hash_image(_encode(astronaut, "PNG")).first
    padded = Image.new("RGB", (700, 700), (255, 255, 255))
    padded.paste(astronaut, (94, 94))
    hashes = hash_image(_encode(padded, "JPEG", quality=90))
    assert [f.trimmed for f in hashes.frames] == [False, True]
    assert _hamming(hashes.first.pdq, original.pdq) > 31
    assert _hamming(hashes.frames[1].pdq, original.pdq) <= 31
    assert _hamming(hashes.frames[1].phash, original.phash) <= 8
    assert not any(f.trimmed for f in hash_image(_encode(astronaut, "JPEG")).frames)
