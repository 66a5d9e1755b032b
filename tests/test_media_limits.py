"""Media limits an attacker can reach: the review UI's preview and the hash commands.

A crawled image is attacker-chosen. The preview must refuse what the analyzer refuses
(declared size above ``Limits.max_pixels``) before decoding a pixel, and decode the rest
reduced (JPEG draft, box reduce), not at full size; ``harmwatch hash`` and ``match`` must
report each bad file on one line and go on with the rest.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from classifiers.media.hashing import DEFAULT_LIMITS, hash_image
from review_ui import media

# Peak memory the preview may add for an 8000x8000 image. Decoding it in full at RGB with
# the copies the old code made took 735 MB (JPEG, RGB PNG) and 552 MB (palette PNG); now
# about 6 MB, 246 MB (a PNG cannot be decoded reduced: 4 bytes a pixel) and 74 MB.
PEAK_MB = {"jpeg": 100, "rgb png": 300, "palette png": 150}


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), 7 if mode in ("P", "L", "1") else (7, 8, 9)).save(out, "PNG")
    return out.getvalue()


def _jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 60, 30)).save(out, "JPEG", quality=50)
    return out.getvalue()


def test_preview_refuses_above_the_analyzers_pixel_limit_before_decoding():
    side = int(DEFAULT_LIMITS.max_pixels ** 0.5) + 100  # 8100 x 8100 = 65.6 MP
    with pytest.raises(media.UnsupportedMedia, match="too_many_pixels"):
        media.preview(_png(side, side), blur=True, grayscale=True)


def _preview_peak_mb(path: Path) -> int:
    """The preview's peak memory in a fresh process, from the kernel's high-water mark.

    VmHWM, not ru_maxrss: a child inherits its parent's ru_maxrss across exec, so a large
    pytest process would hide any peak below its own size.
    """
    script = (
        "import re, sys\n"
        "from review_ui import media\n"
        "def hwm():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1))\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = hwm()\n"
        "media.preview(data, True, True)\n"
        "print((hwm() - before) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          text=True, check=True, timeout=120)
    return int(done.stdout.strip())


@pytest.mark.parametrize("kind", sorted(PEAK_MB))
def test_preview_of_a_64_megapixel_image_is_decoded_reduced(tmp_path, kind):
    path = tmp_path / "big"
    path.write_bytes({"jpeg": lambda: _jpeg(8000, 8000), "rgb png": lambda: _png(8000, 8000),
                      "palette png": lambda: _png(8000, 8000, "P")}[kind]())
    assert _preview_peak_mb(path) < PEAK_MB[kind]


@pytest.mark.parametrize("mode", ["P", "1", "L", "RGBA"])
def test_large_images_in_any_mode_are_previewed_and_hashed(mode):
    """Box reduce refuses palette and 1-bit images: they are converted first, not refused."""
    data = _png(1600, 1200, mode)
    with Image.open(io.BytesIO(media.preview(data, blur=False, grayscale=False))) as shown:
        assert max(shown.size) == media.PREVIEW_SIZE
    assert hash_image(data).first.pdq


def test_preview_keeps_the_exif_orientation():
    image = Image.new("RGB", (1200, 600), (200, 10, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    with Image.open(io.BytesIO(media.preview(out.getvalue(), False, False))) as shown:
        assert shown.width < shown.height
