"""MD5, SHA-1 and SHA-256 of a stream in one pass, in fixed-size chunks.

Evidence files can be gigabytes: they are hashed while they are copied, never read whole.
MD5 and SHA-1 are kept only because forensic tools and hash lists still key on them;
integrity in a pack rests on SHA-256 and the signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

CHUNK = 1024 * 1024


@dataclass
class Digests:
    """Running hashes and byte count of one file."""

    size: int = 0
    _md5: hashlib._Hash = field(default_factory=hashlib.md5)
    _sha1: hashlib._Hash = field(default_factory=hashlib.sha1)
    _sha256: hashlib._Hash = field(default_factory=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._md5.update(chunk)
        self._sha1.update(chunk)
        self._sha256.update(chunk)

    def as_dict(self) -> dict[str, int | str]:
        return {"size": self.size, "md5": self._md5.hexdigest(),
                "sha1": self._sha1.hexdigest(), "sha256": self._sha256.hexdigest()}


def copy_hashing(source: BinaryIO, sink: Callable[[bytes], object] | None = None) -> Digests:
    """Hash ``source`` chunk by chunk, passing each chunk to ``sink`` when given."""
    digests = Digests()
    while chunk := source.read(CHUNK):
        digests.update(chunk)
        if sink is not None:
            sink(chunk)
    return digests


def sha256_stream(source: BinaryIO) -> tuple[str, int]:
    """(SHA-256 hex, size) of a stream, without MD5/SHA-1 (verification is about SHA-256)."""
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
