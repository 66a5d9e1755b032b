"""Evidence at rest: blobs of confirmed items sealed with AES-256-GCM, behind the blob store.

:class:`SealingBlobStore` wraps the plain store and is what :func:`get_blob_store` hands
every stage, so every reader and writer goes through this one place:

* ``seal(ref)`` encrypts a blob into the store (under the SHA-256 of its ciphertext),
  checks it decrypts, records plain -> sealed in the ``<prefix>-sealed`` index and deletes
  the plaintext;
* ``put`` of bytes whose blob is sealed writes nothing: blobs are named by content, so a
  confirmed image crawled again would otherwise put its plaintext back beside the seal;
* ``open``/``get`` of a sealed blob decrypt it, checking the plaintext SHA-256 while
  streaming; ``exists``/``size`` answer for the plaintext; ``delete`` removes both copies
  and the record (retention).

Format (chunked, so gigabyte files never sit in memory): ``MAGIC`` + 16-char key id +
8-byte random nonce prefix, then chunks of ``<u32 length><ciphertext+tag>``. Chunk *i*
uses nonce ``prefix || i`` and authenticates the header, *i* and a last-chunk flag as
associated data, so reordering, truncating or splicing chunks fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from harmwatch.blobstore import BlobError, BlobNotFound, BlobStore, parse_ref, ref_for
from harmwatch.contract import utcnow
from harmwatch.documents import ensure_versioned_index
from harmwatch.settings import Settings

MAGIC = b"HWSEAL1\n"
HEADER_BYTES = len(MAGIC) + 16 + 8
CHUNK = 1024 * 1024
_CHUNK_OVERHEAD = 4 + 16  # length prefix + GCM tag
AES_KEY_BYTES = 32
SEALED_VERSION = 1
SEALED_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "plain_ref": {"type": "keyword"}, "sealed_ref": {"type": "keyword"},
        "key_id": {"type": "keyword"}, "size": {"type": "long"},
        "sealed_at": {"type": "date"}, "item_id": {"type": "keyword"},
    },
}


class SealError(RuntimeError):
    """A sealed blob failed to decrypt or to match its plaintext hash: tampering or wrong key."""


class EvidenceKeyError(RuntimeError):
    """A configured key is unreadable or of the wrong kind; the message names the setting."""


# -- keys ----------------------------------------------------------------------------


def evidence_dir(settings: Settings) -> Path:
    return settings.var_dir / "evidence"


def write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600, refusing to overwrite one written concurrently."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def evidence_key(settings: Settings) -> bytes:
    """The AES-256-GCM key for media at rest (settings, else generated into var/)."""
    if settings.evidence_key:
        encoded = settings.evidence_key.encode()
    else:
        path = evidence_dir(settings) / "evidence-key"
        if not path.exists():
            write_secret(path, base64.b64encode(secrets.token_bytes(AES_KEY_BYTES)))
        encoded = path.read_bytes().strip()
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise EvidenceKeyError("HARMWATCH_EVIDENCE_KEY: not valid base64") from exc
    if len(key) != AES_KEY_BYTES:
        raise EvidenceKeyError(f"HARMWATCH_EVIDENCE_KEY: expected {AES_KEY_BYTES} bytes, got {len(key)}")
    return key


def key_id(key: bytes) -> str:
    """A short non-secret name for an AES key, stored with each sealed blob (rotation)."""
    return hashlib.sha256(b"harmwatch-evidence-key-id:" + key).hexdigest()[:16]


# -- the sealed format ---------------------------------------------------------------


def _aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">IB", index, int(last))


def encrypt_stream(source: BinaryIO, sink: BinaryIO, key: bytes) -> None:
    """Write the sealed form of ``source`` to ``sink``, one chunk in memory at a time."""
    header = MAGIC + key_id(key).encode() + secrets.token_bytes(8)
    aead, prefix = AESGCM(key), header[-8:]
    sink.write(header)
    index, chunk = 0, source.read(CHUNK)
    while True:
        following = source.read(CHUNK) if chunk else b""
        last = not following
        sealed = aead.encrypt(prefix + struct.pack(">I", index), chunk, _aad(header, index, last))
        sink.write(struct.pack(">I", len(sealed)) + sealed)
        if last:
            return
        index, chunk = index + 1, following


def decrypt_chunks(source: BinaryIO, key: bytes) -> Iterator[bytes]:
    """The plaintext of a sealed stream, chunk by chunk; raises :class:`SealError` on any fault."""
    header = source.read(HEADER_BYTES)
    if not header.startswith(MAGIC):
        raise SealError("not a sealed evidence blob")
    if header[len(MAGIC):len(MAGIC) + 16].decode() != key_id(key):
        raise SealError("sealed with a different evidence key")
    aead, prefix, index = AESGCM(key), header[-8:], 0
    length = source.read(4)
    while length:
        sealed = source.read(struct.unpack(">I", length)[0])
        length = source.read(4)
        try:
            yield aead.decrypt(prefix + struct.pack(">I", index), sealed,
                               _aad(header, index, not length))
        except InvalidTag as exc:
            raise SealError(f"chunk {index} fails authentication (altered or truncated)") from exc
        index += 1
    if index == 0:
        raise SealError("sealed blob is empty (truncated)")


def plain_size(sealed_size: int) -> int:
    """The plaintext length of a sealed blob of ``sealed_size`` bytes (every chunk but the
    last is full, and there is at least one), so ``size`` needs no decryption."""
    body = sealed_size - HEADER_BYTES
    chunks = max(1, -(-body // (CHUNK + _CHUNK_OVERHEAD)))
    return body - chunks * _CHUNK_OVERHEAD


class PlainReader:
    """File-like view of a sealed blob's plaintext that checks its SHA-256 at the end."""

    def __init__(self, handle: BinaryIO, key: bytes, plain_ref: str) -> None:
        self._handle, self._chunks = handle, decrypt_chunks(handle, key)
        self._digest, self._expected = hashlib.sha256(), parse_ref(plain_ref)

    def read(self, size: int = -1) -> bytes:
        """All the rest when ``size`` < 0; else the next decrypted chunk (at most one chunk,
        whatever ``size``); b'' at the end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(1), b""))
        chunk = next(self._chunks, b"")
        if chunk:
            self._digest.update(chunk)
        elif self._digest.hexdigest() != self._expected:
            raise SealError("decrypted content does not match its SHA-256 reference")
        return chunk

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> PlainReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the index of sealed blobs ---------------------------------------------------------


def sealed_alias(settings: Settings) -> str:
    return settings.index_name("sealed")


# (Elasticsearch URL, alias) pairs whose index this process has already made sure of.
_SEALED_INDEX_READY: set[tuple[str, str]] = set()


def ensure_sealed_index(client: Elasticsearch, settings: Settings) -> None:
    """Create the seal index (or add to its mapping) once per process, not on every seal:
    an analyst's Confirm seals the item's media, and re-sending the index template on
    each click cost a cluster-state update per decision."""
    key = (settings.es_url, sealed_alias(settings))
    if key in _SEALED_INDEX_READY:
        return
    ensure_versioned_index(client, sealed_alias(settings), SEALED_VERSION, SEALED_MAPPING, shards=1)
    _SEALED_INDEX_READY.add(key)


# -- the store ---------------------------------------------------------------------------


class SealingBlobStore:
    """A :class:`BlobStore` over ``plain`` in which a sealed blob stays sealed.

    The Elasticsearch client is made on first need, so a stage that only writes new blobs
    connects only when a blob is not already in the plain store.
    """

    def __init__(self, plain: BlobStore, settings: Settings,
                 client: Elasticsearch | None = None) -> None:
        self.plain = plain
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            from harmwatch.search import es_client

            self._client = es_client(self.settings)
        return self._client

    def sealed_record(self, ref: str) -> dict[str, Any] | None:
        """The sealed index's record of ``ref`` (plain -> sealed ref, key id), or None."""
        try:
            return self.client.get(index=sealed_alias(self.settings), id=parse_ref(ref))["_source"]
        except NotFoundError:  # no such record, or nothing ever sealed (no index)
            return None
        except (ApiError, TransportError) as exc:
            # Fail closed: a writer that cannot tell must not write what may be sealed.
            raise BlobError(f"cannot tell whether {ref} is sealed: {exc}") from exc

    # writers

    def put(self, data: bytes) -> str:
        ref = ref_for(data)
        if self.plain.exists(ref) or self.sealed_record(ref) is not None:
            return ref
        return self.plain.put(data)

    def put_stream(self, stream: BinaryIO) -> str:
        """Spooled to a temporary file first: whether the blob is sealed is known only once
        its hash is, and a sealed blob's plaintext must not reach the store even briefly."""
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=self.settings.var_dir) as spool:
            digest = hashlib.sha256()
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
            ref = "sha256:" + digest.hexdigest()
            if self.sealed_record(ref) is not None:
                return ref
            spool.seek(0)
            return self.plain.put_stream(spool)

    # readers

    def _sealed_ref(self, ref: str) -> str:
        """The ref of the sealed copy of a blob that has no plaintext, or BlobNotFound."""
        record = self.sealed_record(ref)
        if record is None:
            raise BlobNotFound(f"no blob {ref}, plain or sealed")
        return record["sealed_ref"]

    def open(self, ref: str) -> BinaryIO:
        if self.plain.exists(ref):
            return self.plain.open(ref)
        sealed = self.plain.open(self._sealed_ref(ref))
        return PlainReader(sealed, evidence_key(self.settings), ref)  # type: ignore[return-value]

    def get(self, ref: str) -> bytes:
        with self.open(ref) as handle:
            return handle.read()

    def exists(self, ref: str) -> bool:
        return self.plain.exists(ref) or self.sealed_record(ref) is not None

    def size(self, ref: str) -> int:
        if self.plain.exists(ref):
            return self.plain.size(ref)
        return plain_size(self.plain.size(self._sealed_ref(ref)))

    def is_sealed(self, ref: str) -> bool:
        return self.sealed_record(ref) is not None

    # sealing and deleting

    def seal(self, ref: str, item_id: str) -> bool:
        """Encrypt one plaintext blob into the store, check it decrypts, record it, then
        delete the plaintext; False when there is no plaintext (already sealed, or gone)."""
        if not self.plain.exists(ref):
            return False
        ensure_sealed_index(self.client, self.settings)
        key = evidence_key(self.settings)
        with tempfile.TemporaryFile(dir=self.settings.var_dir) as tmp:
            with self.plain.open(ref) as plain:
                encrypt_stream(plain, tmp, key)
            tmp.seek(0)
            sealed_ref = self.plain.put_stream(tmp)
        with PlainReader(self.plain.open(sealed_ref), key, ref) as check:
            while check.read():
                pass
        self.client.index(index=sealed_alias(self.settings), id=parse_ref(ref),
                          document={"plain_ref": ref, "sealed_ref": sealed_ref,
                                    "key_id": key_id(key), "size": self.plain.size(sealed_ref),
                                    "sealed_at": utcnow(), "item_id": item_id})
        self.plain.delete(ref)
        return True

    def delete(self, ref: str) -> bool:
        """Delete the plaintext, the sealed copy and its record (retention)."""
        deleted = self.plain.delete(ref)
        record = self.sealed_record(ref)
        if record is not None:
            deleted = self.plain.delete(record["sealed_ref"]) or deleted
            self.client.delete(index=sealed_alias(self.settings), id=parse_ref(ref))
        return deleted
