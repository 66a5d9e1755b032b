"""The blob store: content-addressed bytes (media, page snapshots, evidence).

Blobs are named by the sha256 of their content (``sha256:<hex>``), so a blob is
written once however often it is crawled, and a reference proves its own integrity.
:class:`BlobStore` is the narrow interface every stage uses; :class:`FilesystemBlobStore`
implements it over a directory. An S3-compatible store can implement the same methods.
:func:`get_blob_store` wraps it in :class:`harmwatch.sealing.SealingBlobStore`, which keeps
sealed evidence sealed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from harmwatch.settings import Settings, get_settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from harmwatch.sealing import SealingBlobStore

REF_PREFIX = "sha256:"
_CHUNK = 1024 * 1024


class BlobError(RuntimeError):
    """A blob could not be stored or read; the message says why."""


class BlobTooLarge(BlobError):
    pass


class BlobNotFound(BlobError):
    pass


class BlobStore(Protocol):
    """What stages may do with blobs. Nothing else is part of the contract."""

    def put(self, data: bytes) -> str: ...

    def put_stream(self, stream: BinaryIO) -> str: ...

    def get(self, ref: str) -> bytes: ...

    def open(self, ref: str) -> BinaryIO: ...

    def exists(self, ref: str) -> bool: ...

    def size(self, ref: str) -> int: ...

    def delete(self, ref: str) -> bool: ...


def ref_for(data: bytes) -> str:
    return REF_PREFIX + hashlib.sha256(data).hexdigest()


def parse_ref(ref: str) -> str:
    """The hex digest of a reference, refusing anything that could escape the store."""
    if not ref.startswith(REF_PREFIX):
        raise BlobError(f"not a blob reference: {ref!r} (expected 'sha256:<64 hex>')")
    digest = ref[len(REF_PREFIX) :]
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise BlobError(f"not a blob reference: {ref!r} (expected 'sha256:<64 hex>')")
    return digest


class FilesystemBlobStore:
    """Blobs as files ``<root>/ab/cd/<sha256>``, written atomically (temp file + rename)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, ref: str) -> Path:
        digest = parse_ref(ref)
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        if len(data) > self.max_bytes:
            raise BlobTooLarge(f"blob of {len(data)} bytes exceeds the limit of {self.max_bytes}")
        ref = ref_for(data)
        path = self._path(ref)
        if not path.exists():
            self._write_atomically(path, [data])
        return ref

    def put_stream(self, stream: BinaryIO) -> str:
        """Store a stream without holding it in memory (evidence exports, large media)."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        total = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := stream.read(_CHUNK):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise BlobTooLarge(f"blob exceeds the limit of {self.max_bytes} bytes")
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            ref = REF_PREFIX + digest.hexdigest()
            path = self._path(ref)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, path)
            return ref
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)

    def _write_atomically(self, path: Path, chunks: list[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)

    def get(self, ref: str) -> bytes:
        with self.open(ref) as handle:
            return handle.read()

    def open(self, ref: str) -> BinaryIO:
        try:
            return open(self._path(ref), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError as exc:
            raise BlobNotFound(f"no blob {ref} in {self.root}") from exc

    def exists(self, ref: str) -> bool:
        return self._path(ref).is_file()

    def size(self, ref: str) -> int:
        try:
            return self._path(ref).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(f"no blob {ref} in {self.root}") from exc

    def delete(self, ref: str) -> bool:
        try:
            self._path(ref).unlink()
            return True
        except FileNotFoundError:
            return False


def get_blob_store(settings: Settings | None = None,
                   client: Elasticsearch | None = None) -> SealingBlobStore:
    """The store every stage uses: the filesystem store behind the sealing wrapper, so a
    sealed blob is read decrypted and never written in plaintext again (harmwatch.sealing).
    ``client``: an Elasticsearch client to reuse; else one is made when first needed."""
    from harmwatch.sealing import SealingBlobStore

    settings = settings or get_settings()
    plain = FilesystemBlobStore(settings.resolved_blob_dir, settings.blob_max_bytes)
    return SealingBlobStore(plain, settings, client)
