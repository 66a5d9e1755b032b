"""The hash algorithms a bank entry can carry, and how each one is compared.

Mirrors python-threatexchange's split between *signal types* (what a hash is, how it is
validated and compared) and *storage* (where entries live): everything that depends on
the algorithm is here, so the store and the formats stay algorithm-agnostic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

Algorithm = Literal["md5", "sha1", "sha256", "pdq", "phash"]


@dataclass(frozen=True)
class Signal:
    """One hash algorithm: its width, and whether it matches exactly or by distance."""

    name: Algorithm
    bits: int
    perceptual: bool
    default_threshold: int = 0

    @property
    def hex_len(self) -> int:
        return self.bits // 4


SIGNALS: dict[str, Signal] = {
    "md5": Signal("md5", 128, perceptual=False),
    "sha1": Signal("sha1", 160, perceptual=False),
    "sha256": Signal("sha256", 256, perceptual=False),
    # PDQ: Meta's published operating point is distance <= 31 with quality >= 50.
    "pdq": Signal("pdq", 256, perceptual=True, default_threshold=31),
    # 64-bit pHash: see docs/robustness.md for the recall / false-positive trade-off.
    "phash": Signal("phash", 64, perceptual=True, default_threshold=8),
}
ALGORITHMS: tuple[Algorithm, ...] = ("md5", "sha1", "sha256", "pdq", "phash")
PERCEPTUAL: tuple[Algorithm, ...] = ("pdq", "phash")
DEFAULT_PDQ_MIN_QUALITY = 50

_HEX = re.compile(r"^[0-9a-f]+$")


class InvalidHash(ValueError):
    """A hash value that is not well-formed hex of the algorithm's width."""


# imagehash's crop-resistant hash: not a searchable signal but a confirmation, stored on
# entries made from images we hold (the confirmed bank) and checked only for a query whose
# pHash came within CROP_RESISTANT_SHORTLIST of such an entry without matching it. The
# figures are the ones measured in docs/robustness.md.
CROP_RESISTANT = "crop_resistant"
CROP_RESISTANT_SHORTLIST = 20
CROP_RESISTANT_HAMMING = 10
CROP_RESISTANT_MIN_REGIONS = 2
_MAX_REGIONS = 256


def normalise_crop_resistant(value: str) -> str:
    """Comma-separated 16-hex-digit region hashes, lowercase, or :class:`InvalidHash`."""
    regions = [r.strip().lower() for r in value.split(",") if r.strip()]
    if not regions or len(regions) > _MAX_REGIONS or not all(
            len(r) == 16 and _HEX.match(r) for r in regions):
        raise InvalidHash(f"crop_resistant: {value[:80]!r} is not 1-{_MAX_REGIONS} "
                          "comma-separated 16-hex-digit region hashes")
    return ",".join(regions)


def crop_resistant_regions(query: str, entry: str) -> int:
    """How many of the query's regions lie within CROP_RESISTANT_HAMMING of an entry region."""
    a = _regions(query)
    b = _regions(entry)
    distances = np.bitwise_count(a[:, None] ^ b[None, :])
    return int(np.sum(distances.min(axis=1) <= CROP_RESISTANT_HAMMING))


def _regions(value: str) -> np.ndarray:
    return np.array([int(r, 16) for r in value.split(",")], dtype=np.uint64)


def normalise(algorithm: str, value: str) -> str:
    """Lowercase, stripped hex of the right length, or :class:`InvalidHash`.

    Lists arrive from many tools: upper-case hex (Project VIC), ``0x`` prefixes, stray
    whitespace. Normalising once at import keeps every later comparison a plain equality.
    """
    signal = SIGNALS[algorithm]
    text = value.strip().lower().removeprefix("0x")
    if len(text) != signal.hex_len or not _HEX.match(text):
        raise InvalidHash(f"{algorithm}: {value!r} is not {signal.hex_len} hex digits")
    return text

