"""Evidence at rest (AES-256-GCM, chunked) and retention with audited deletion."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from datetime import timedelta

import pytest

from harmwatch import sealing
from harmwatch.blobstore import BlobNotFound, get_blob_store
from harmwatch.contract import utcnow
from harmwatch.sealing import evidence_key
from harmwatch.search import es_client
from review_ui import audit
from review_ui.evidence import atrest, cases, retention
from review_ui.evidence.pack import export_case
from review_ui.evidence.verify import verify_pack
from tests.evidence_support import account, make_item, synthetic_png

KEY = os.urandom(32)


def _roundtrip(data: bytes, key: bytes = KEY) -> bytes:
    sealed = io.BytesIO()
    sealing.encrypt_stream(io.BytesIO(data), sealed, KEY)
    return b"".join(sealing.decrypt_chunks(io.BytesIO(sealed.getvalue()), key))


@pytest.mark.parametrize("size", [0, 1, sealing.CHUNK, sealing.CHUNK * 2 + 7])
def test_sealing_round_trips_any_size(size):
    data = os.urandom(size)
    assert _roundtrip(data) == data
    sealed = io.BytesIO()
    sealing.encrypt_stream(io.BytesIO(data), sealed, KEY)
    assert sealing.plain_size(len(sealed.getvalue())) == size


def _sealed(size: int) -> bytes:
    out = io.BytesIO()
    sealing.encrypt_stream(io.BytesIO(os.urandom(size)), out, KEY)
    return out.getvalue()


def test_altered_truncated_or_wrong_key_fails():
    sealed = bytearray(_sealed(sealing.CHUNK + 10))
    sealed[100] ^= 1
    with pytest.raises(sealing.SealError, match="chunk 0"):
        b"".join(sealing.decrypt_chunks(io.BytesIO(bytes(sealed)), KEY))
    whole = _sealed(sealing.CHUNK + 10)
    first_chunk_end = len(sealing.MAGIC) + 24 + 4 + sealing.CHUNK + 16
    with pytest.raises(sealing.SealError, match="chunk 0"):  # last chunk dropped
        b"".join(sealing.decrypt_chunks(io.BytesIO(whole[:first_chunk_end]), KEY))
    with pytest.raises(sealing.SealError, match="different evidence key"):
        b"".join(sealing.decrypt_chunks(io.BytesIO(whole), os.urandom(32)))


def test_configured_key_is_used_and_checked(services):
    key = base64.b64encode(KEY).decode()
    assert evidence_key(services.model_copy(update={"evidence_key": key})) == KEY
    with pytest.raises(RuntimeError, match="HARMWATCH_EVIDENCE_KEY"):
        evidence_key(services.model_copy(update={"evidence_key": "c2hvcnQ="}))


@pytest.fixture(scope="module")
def env(services, tmp_path_factory):
    settings = services.model_copy(update={
        "var_dir": tmp_path_factory.mktemp("atrest-var"),
        "blob_dir": tmp_path_factory.mktemp("atrest-blobs")})
    client = es_client(settings)
    cases.ensure_case_indices(client, settings)
    return client, settings, get_blob_store(settings, client)


@pytest.mark.integration
def test_confirmed_media_are_sealed_and_still_export(env, tmp_path):
    client, settings, store = env
    admin = account(client, settings, "admin5", "admin")
    item = make_item(client, settings, store, media=[synthetic_png(201)])
    escalated = make_item(client, settings, store, status="escalated", media=[synthetic_png(202)])
    assert atrest.seal_confirmed(client, settings, store, admin) >= 2
    ref = item["media"][0]["blob_ref"]
    assert not store.plain.exists(ref) and store.is_sealed(ref)  # the plaintext is gone
    escalated_ref = escalated["media"][0]["blob_ref"]
    assert store.plain.exists(escalated_ref) and not store.is_sealed(escalated_ref)
    with store.open(ref) as handle:
        assert handle.read() and handle.read() == b""
    case = cases.create_case(client, settings, admin, cases.CaseFields("sealed"))
    cases.add_items(client, settings, admin, case["case_id"], [item["item_id"]])
    pack = tmp_path / "p.zip"
    with pack.open("wb") as target:
        export_case(client, settings, case["case_id"], target, admin)
    assert verify_pack(pack).ok
    with zipfile.ZipFile(pack) as archive:
        media = [n for n in archive.namelist() if "/media/" in n]
        assert archive.read(media[0])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.integration
def test_retention_deletes_closed_cases_evidence_and_audits_it(env):
    client, settings, store = env
    admin = account(client, settings, "admin5", "admin")
    gone = make_item(client, settings, store, media=[synthetic_png(301)])
    shared = make_item(client, settings, store, media=[synthetic_png(302)])
    # Blobs are content-addressed: another item with the same image shares its blob.
    twin = make_item(client, settings, store, media=[synthetic_png(303)])
    twin_of_open = make_item(client, settings, store, media=[synthetic_png(303)])
    closed = cases.create_case(client, settings, admin, cases.CaseFields("old"))
    cases.add_items(client, settings, admin, closed["case_id"],
                    [gone["item_id"], shared["item_id"], twin["item_id"]])
    cases.set_status(client, settings, admin, closed["case_id"], "closed")
    still_open = cases.create_case(client, settings, admin, cases.CaseFields("current"))
    cases.add_items(client, settings, admin, still_open["case_id"],
                    [shared["item_id"], twin_of_open["item_id"]])
    dry = retention.apply_retention(client, settings, store, admin, {"closed": 0})
    assert closed["case_id"] in dry.due_cases and dry.deleted_blobs == 0
    run = retention.apply_retention(client, settings, store, admin, {"closed": 0}, dry_run=False)
    # gone's image and snapshot, and twin's snapshot; never a blob an open case still needs.
    assert run.deleted_blobs == 3 and shared["item_id"] in run.kept_items
    with pytest.raises(BlobNotFound):
        store.open(gone["media"][0]["blob_ref"])
    assert store.exists(shared["media"][0]["blob_ref"])
    assert store.exists(twin["media"][0]["blob_ref"])
    client.indices.refresh(index=settings.index_name("audit"))
    deletion = audit.search_records(client, settings, action="evidence_delete",
                                    target=gone["item_id"])
    assert deletion and deletion[0]["details"]["case_id"] == closed["case_id"]
    assert cases.get_case(client, settings, closed["case_id"])["purged_at"]


def test_retention_periods_by_status():
    now = utcnow()
    closed = {"status": "closed", "created_at": now.isoformat(),
              "closed_at": (now - timedelta(days=10)).isoformat()}
    assert retention.is_due(closed, {"closed": 5}, now)
    assert not retention.is_due(closed, {"closed": 30}, now)
    assert not retention.is_due({**closed, "status": "open", "updated_at": closed["closed_at"]},
                                retention.DEFAULT_RETENTION_DAYS, now)


def _plain_path(settings, ref: str):
    digest = ref.removeprefix("sha256:")
    return settings.resolved_blob_dir / digest[:2] / digest[2:4] / digest


@pytest.mark.integration
def test_a_sealed_blob_crawled_again_is_never_written_in_plaintext(env):
    """Blobs are named by content: the crawler putting a confirmed image again used to write
    the plaintext back beside the sealed copy, until the next ``harmwatch evidence seal``."""
    client, settings, store = env
    admin = account(client, settings, "admin5", "admin")
    image = synthetic_png(401)
    item = make_item(client, settings, store, media=[image])
    atrest.seal_confirmed(client, settings, store, admin)
    ref = item["media"][0]["blob_ref"]
    assert not _plain_path(settings, ref).exists()
    crawler = get_blob_store(settings)  # what the crawler, analyzer and UI each get
    assert crawler.put(image) == ref
    assert crawler.put_stream(io.BytesIO(image)) == ref
    assert not _plain_path(settings, ref).exists(), "plaintext written back beside the seal"
    assert crawler.exists(ref) and crawler.size(ref) == len(image)
    assert crawler.get(ref) == image  # every reader decrypts in the one place
    with crawler.open(ref) as handle:
        assert handle.read() == image


def test_the_seal_index_is_made_sure_of_once_per_process(services, monkeypatch):
    """Issue 14: every Confirm sealed through ``ensure_sealed_index``, which re-sent the
    index template (a cluster-state update) on each click."""
    calls = []
    real = sealing.ensure_versioned_index
    monkeypatch.setattr(sealing, "ensure_versioned_index",
                        lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    monkeypatch.setattr(sealing, "_SEALED_INDEX_READY", set())
    client = es_client(services)
    for _ in range(3):
        sealing.ensure_sealed_index(client, services)
    assert calls == [sealing.sealed_alias(services)]
    assert client.indices.exists_alias(name=sealing.sealed_alias(services))
