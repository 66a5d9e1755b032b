"""Evidence at rest: media and snapshots of confirmed items, sealed with AES-256-GCM.

A sealed blob is stored in the ordinary blob store (under the SHA-256 of its ciphertext)
and the plaintext copy is deleted; the ``<prefix>-sealed`` index maps the plaintext
reference — still what items and packs name — to the sealed one. :func:`open_blob` reads
either transparently, so exports never care which they got, and checks the plaintext
SHA-256 while streaming.

Format (chunked, so gigabyte files never sit in memory): ``MAGIC`` + 16-char key id +
8-byte random nonce prefix, then chunks of ``<u32 length><ciphertext+tag>``. Chunk *i*
uses nonce ``prefix || i`` and authenticates the header, *i* and a last-chunk flag as
associated data, so reordering, truncating or splicing chunks fails to decrypt.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from elasticsearch import Elasticsearch, NotFoundError

from harmwatch.blobstore import BlobNotFound, BlobStore, parse_ref
from harmwatch.contract import utcnow
from harmwatch.documents import ensure_versioned_index, items_alias
from harmwatch.settings import Settings
from review_ui import audit
from review_ui.evidence.keys import evidence_key, key_id

MAGIC = b"HWSEAL1\n"
CHUNK = 1024 * 1024
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


def sealed_alias(settings: Settings) -> str:
    return settings.index_name("sealed")


def ensure_sealed_index(client: Elasticsearch, settings: Settings) -> None:
    ensure_versioned_index(client, sealed_alias(settings), SEALED_VERSION, SEALED_MAPPING, shards=1)


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
    header = source.read(len(MAGIC) + 16 + 8)
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


class _PlainReader:
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

    def __enter__(self) -> _PlainReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sealed_doc(client: Elasticsearch, settings: Settings, ref: str) -> dict[str, Any] | None:
    try:
        return client.get(index=sealed_alias(settings), id=parse_ref(ref))["_source"]
    except NotFoundError:
        return None


def open_blob(client: Elasticsearch, settings: Settings, store: BlobStore, ref: str) -> BinaryIO:
    """The plaintext of ``ref``, from the store directly or by decrypting its sealed copy."""
    if store.exists(ref):
        return store.open(ref)
    sealed = _sealed_doc(client, settings, ref)
    if sealed is None:
        raise BlobNotFound(f"no blob {ref}, plain or sealed")
    return _PlainReader(store.open(sealed["sealed_ref"]), evidence_key(settings), ref)  # type: ignore[return-value]


def seal_blob(client: Elasticsearch, settings: Settings, store: BlobStore, ref: str,
              item_id: str) -> bool:
    """Encrypt one plaintext blob into the store, check it decrypts, then delete the plaintext."""
    if not store.exists(ref):
        return False
    key = evidence_key(settings)
    with tempfile.TemporaryFile(dir=settings.var_dir) as tmp:
        with store.open(ref) as plain:
            encrypt_stream(plain, tmp, key)
        tmp.seek(0)
        sealed_ref = store.put_stream(tmp)
    with _PlainReader(store.open(sealed_ref), key, ref) as check:
        while check.read():
            pass
    client.index(index=sealed_alias(settings), id=parse_ref(ref),
                 document={"plain_ref": ref, "sealed_ref": sealed_ref, "key_id": key_id(key),
                           "size": store.size(sealed_ref), "sealed_at": utcnow(),
                           "item_id": item_id})
    store.delete(ref)
    return True


def item_refs(item: dict[str, Any]) -> list[str]:
    """Every blob an item names: its media and its page snapshot."""
    refs = [m["blob_ref"] for m in item.get("media") or [] if m.get("blob_ref")]
    return refs + ([item["snapshot_ref"]] if item.get("snapshot_ref") else [])


def seal_confirmed(client: Elasticsearch, settings: Settings, store: BlobStore,
                   actor: audit.Actor) -> int:
    """Seal the blobs of every confirmed item that still has plaintext; returns how many."""
    ensure_sealed_index(client, settings)
    sealed, after = 0, None
    while True:
        hits = client.search(index=items_alias(settings), size=200,
                             query={"term": {"status": "confirmed"}},
                             source_includes=["item_id", "media.blob_ref", "snapshot_ref"],
                             sort=[{"item_id": "asc"}], search_after=after)["hits"]["hits"]
        for hit in hits:
            item = hit["_source"]
            count = sum(seal_blob(client, settings, store, ref, item["item_id"])
                        for ref in item_refs(item))
            if count:
                audit.record(client, settings, actor, "evidence_seal", item["item_id"],
                             {"blobs": count})
            sealed += count
        if len(hits) < 200:
            return sealed
        after = hits[-1]["sort"]


def purge_blob(client: Elasticsearch, settings: Settings, store: BlobStore, ref: str) -> bool:
    """Delete a blob's plaintext and sealed copies and its sealed record (retention)."""
    deleted = store.delete(ref)
    sealed = _sealed_doc(client, settings, ref)
    if sealed is not None:
        deleted = store.delete(sealed["sealed_ref"]) or deleted
        client.delete(index=sealed_alias(settings), id=parse_ref(ref))
    return deleted
