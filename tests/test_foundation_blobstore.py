"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import io

import pytest

from harmwatch.blobstore import BlobError, BlobNotFound, BlobTooLarge, FilesystemBlobStore


@pytest.fixture()
def store(tmp_path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs", max_bytes=1024)


def test_put_names_blobs_by_sha256_and_deduplicates(store):
    ref = store.put(b"hello")
    assert ref == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == ref
    assert store.get(ref) == b"hello"
    assert store.size(ref) == 5
    assert store.exists(ref)


def test_stream_put_matches_bytes_put(store):
    assert store.put_stream(io.BytesIO(b"abc" * 100)) == store.put(b"abc" * 100)


def test_size_limit_is_enforced_and_leaves_nothing_behind(store):
    with pytest.raises(BlobTooLarge):
        store.put(b"x" * 1025)
    with pytest.raises(BlobTooLarge):
        store.put_stream(io.BytesIO(b"x" * 5000))
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("ref", ["sha256:../../etc/passwd", "md5:abc", "sha256:" + "G" * 64])
def test_references_cannot_escape_the_store(store, ref):
    with pytest.raises(BlobError):
        store.get(ref)


def test_missing_and_deleted_blobs(store):
    ref = store.put(b"gone soon")
    assert store.delete(ref)
    assert not store.delete(ref)
    with pytest.raises(BlobNotFound):
        store.get(ref)
