"""Export a case as an evidence pack: a streamed ZIP, signed and time-stamp-requested.

Every file is hashed (MD5, SHA-1, SHA-256) while it is written, one chunk in memory at
a time, so a pack of gigabytes costs megabytes of RAM. The manifest, written last, lists
every file with its size and SHA-256; ``manifest.sig`` is a detached Ed25519 signature
over the manifest's exact bytes and ``manifest.tsq`` an RFC 3161 request for its hash.
Layout and field meanings: docs/formats/evidence-pack.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from elasticsearch import Elasticsearch

from harmwatch.blobstore import BlobNotFound, BlobStore, get_blob_store, parse_ref
from harmwatch.contract import utcnow
from harmwatch.csvcells import SafeWriter
from harmwatch.documents import items_alias
from harmwatch.settings import Settings
from review_ui import __version__, audit
from review_ui.evidence import cases, custody, summary, timestamp, vics
from review_ui.evidence.hashing import CHUNK, Digests, copy_hashing
from review_ui.evidence.keys import fingerprint, load_signing_key, public_key_pem
from review_ui.evidence.verify import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PUBLIC_KEY_FILE,
    SIGNATURE,
    TSQ,
    TSR,
)

TOOL = {"name": "harmwatch", "version": __version__}
KINDS = ("full", "metadata-only")
_MGET_BATCH = 50
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
               "image/webp": ".webp", "image/bmp": ".bmp", "video/mp4": ".mp4",
               "video/webm": ".webm"}
HASH_COLUMNS = ("path", "in_pack", "item_id", "kind", "size", "md5", "sha1", "sha256", "pdq",
                "source_url")


class EvidenceError(RuntimeError):
    """The pack cannot be made faithfully (e.g. a stored blob no longer matches its hash)."""


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with a 'Z', to the second: what police systems parse without surprise."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class PackWriter:
    """A ZIP being written, remembering each listed file's size and hashes for the manifest."""

    def __init__(self, target: BinaryIO, when: datetime) -> None:
        self.zip = zipfile.ZipFile(target, "w", allowZip64=True)
        self.date_time = when.astimezone(UTC).timetuple()[:6]
        self.files: list[dict[str, Any]] = []
        self.total = 0

    def _info(self, path: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o444 << 16
        return info

    def add_stream(self, path: str, source: BinaryIO, compress: bool = False) -> dict[str, Any]:
        with self.zip.open(self._info(path, compress), "w", force_zip64=True) as out:
            digests = copy_hashing(source, out.write)
        return self._listed(path, digests)

    def add_bytes(self, path: str, data: bytes, compress: bool = True) -> dict[str, Any]:
        digests = Digests()
        digests.update(data)
        self.zip.writestr(self._info(path, compress), data)
        return self._listed(path, digests)

    def add_unlisted(self, path: str, data: bytes) -> None:
        """Files about the manifest (signature, time-stamp) that it cannot list itself."""
        self.zip.writestr(self._info(path, compress=False), data)

    def _listed(self, path: str, digests: Digests) -> dict[str, Any]:
        entry = {"path": path, **digests.as_dict()}
        self.files.append(entry)
        self.total += digests.size
        return entry

    def close(self) -> None:
        self.zip.close()


class _Prefixed:
    """A stream with its first chunk already read (to sniff a file type before copying)."""

    def __init__(self, first: bytes, rest: BinaryIO) -> None:
        self._first, self._rest = first, rest

    def read(self, size: int = -1) -> bytes:
        if self._first:
            chunk, self._first = self._first, b""
            return chunk
        return self._rest.read(size)


def _snapshot_extension(first: bytes) -> str:
    head = first[:512].lstrip().lower()
    if head.startswith((b"{", b"[")):
        return ".json"
    if head.startswith(b"<?xml") or b"<rss" in head or b"<feed" in head:
        return ".xml"
    return ".html" if head.startswith(b"<") else ".bin"


@dataclass
class ExportResult:
    pack_id: str
    kind: str
    manifest_sha256: str
    files: int
    bytes: int
    items: int
    missing_items: list[str]
    timestamp: str
    withheld_items: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Export:
    """State of one export in progress; only small per-item records are kept in memory."""

    client: Elasticsearch
    settings: Settings
    store: BlobStore
    writer: PackWriter
    metadata_only: bool
    started: datetime
    vics_media: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def blob(self, ref: str, path_for: Any) -> dict[str, Any] | None:
        """Copy (or, metadata-only, just hash) one blob; None when the store no longer has it.

        ``path_for(first_chunk)`` names the file, so a snapshot's type can be sniffed.
        """
        try:
            handle = self.store.open(ref)  # decrypted when sealed (harmwatch.sealing)
        except BlobNotFound:
            return None
        with handle:
            first = handle.read(CHUNK)
            stream = _Prefixed(first, handle)
            path = path_for(first)
            if self.metadata_only:
                entry = {"path": path, **copy_hashing(stream).as_dict(), "in_pack": False}
            else:
                entry = {**self.writer.add_stream(path, stream), "in_pack": True}
        if entry["sha256"] != parse_ref(ref):
            raise EvidenceError(f"blob {ref} does not match its own hash: the store is corrupt")
        return entry


def _views(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    return [{"user": r.get("user"), "at": r.get("at")} for r in item.get("reveals") or []
            if r.get("media_index") == index]


def _media_files(ex: _Export, item: dict[str, Any]) -> list[dict[str, Any]]:
    files = []
    base = f"items/{item['item_id']}"
    for index, media in enumerate(item.get("media") or []):
        views = _views(item, index)
        described = {"kind": "media", "index": index, "source_url": media.get("url"),
                     "blob_ref": media.get("blob_ref"), "content_type": media.get("content_type"),
                     "pdq": media.get("pdq"), "pdq_quality": media.get("pdq_quality"),
                     "phash": media.get("phash"), "dhash": media.get("dhash"),
                     "crawl_error": media.get("error"), "human_viewed": bool(views),
                     "views": views}
        entry = None
        if media.get("blob_ref"):
            ext = _EXTENSIONS.get(media.get("content_type") or "", ".bin")
            name = f"{base}/media/{index:02d}-{parse_ref(media['blob_ref'])[:16]}{ext}"
            entry = ex.blob(media["blob_ref"], lambda _first, name=name: name)
        if entry is None:
            entry = {"path": None, "in_pack": False, "size": media.get("size"),
                     "md5": media.get("md5"), "sha1": media.get("sha1"),
                     "sha256": media.get("sha256"),
                     "missing": "not fetched" if not media.get("blob_ref") else
                     "no longer in the blob store"}
        files.append({**described, **entry})
    return files


def _snapshot_file(ex: _Export, item: dict[str, Any]) -> dict[str, Any] | None:
    ref = item.get("snapshot_ref")
    if not ref:
        return None
    entry = ex.blob(ref, lambda first: f"items/{item['item_id']}/snapshot"
                    f"{_snapshot_extension(first)}")
    described = {"kind": "snapshot", "blob_ref": ref, "source_url": item.get("url")}
    if entry is None:
        return {**described, "path": None, "in_pack": False, "sha256": parse_ref(ref),
                "missing": "no longer in the blob store"}
    return {**described, **entry}


def _metadata(item: dict[str, Any], files: list[dict[str, Any]],
              custody_log: list[dict[str, Any]]) -> dict[str, Any]:
    analysed = item.get("analysed") or {}
    post = analysed.get("post") or {}
    text = analysed.get("text") or {}
    return {
        "item_id": item["item_id"], "post_key": item.get("post_key"),
        "source": item.get("source"), "source_kind": item.get("source_kind"),
        "post_id": item.get("post_id"), "version": item.get("version"),
        "url": item.get("url"), "thread_id": item.get("thread_id"),
        "thread_title": item.get("thread_title"), "author": item.get("author"),
        "published_at": item.get("published_at"), "edited_at": post.get("edited_at"),
        "language": item.get("language"), "title": item.get("title"), "text": item.get("text"),
        "content_hash": post.get("content_hash"),
        "capture": post.get("provenance") or {"fetched_at": item.get("crawled_at")},
        "files": files,
        "bank_matches": item.get("matches") or [],
        "classification": {
            "scores": item.get("scores"), "model_version": item.get("model_version"),
            "rules_version": item.get("rules_version"), "rule_hits": item.get("rule_hits") or [],
            "analyzer_version": analysed.get("analyzer_version"),
            "analyzed_at": item.get("analyzed_at"), "risk": item.get("risk"),
            "reasons": item.get("reasons") or [], "text_language": text.get("language"),
        },
        "review": {"status": item.get("status"), "decision": item.get("decision"),
                   "notes": item.get("notes") or [], "reveals": item.get("reveals") or []},
        "custody": custody_log,
    }


def _export_item(ex: _Export, item: dict[str, Any], log: list[dict[str, Any]]) -> dict[str, Any]:
    """Write one item's files and metadata; return its summary row."""
    files = _media_files(ex, item)
    snapshot = _snapshot_file(ex, item)
    if snapshot:
        files.append(snapshot)
    document = _metadata(item, files, log)
    meta = ex.writer.add_bytes(f"items/{item['item_id']}/metadata.json", _json(document))
    for described in [*files, {**meta, "kind": "metadata", "in_pack": True}]:
        ex.rows.append(_hash_row(item, described))
        if described["kind"] == "media" and described.get("md5") and described.get("sha1"):
            ex.vics_media.append(vics.media_entry(len(ex.vics_media) + 1, item, described,
                                                  iso(ex.started)))
    return {"item_id": item["item_id"], "url": item.get("url"),
            "captured_at": item.get("crawled_at"), "status": item.get("status"),
            "category": (item.get("decision") or {}).get("category") or item.get("top_category"),
            "media_count": len(item.get("media") or []),
            "match_count": len(item.get("matches") or []),
            "viewed": any(f.get("human_viewed") for f in files)}


def _hash_row(item: dict[str, Any], described: dict[str, Any]) -> dict[str, Any]:
    row = {name: described.get(name) for name in HASH_COLUMNS}
    row.update(item_id=item["item_id"], in_pack="yes" if described.get("in_pack") else "no")
    return row


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


def _items(client: Elasticsearch, settings: Settings, item_ids: list[str]
           ) -> Iterator[tuple[str, dict[str, Any] | None, list[dict[str, Any]]]]:
    """Each item's full document (stored analysis included) and custody log, by batches."""
    for start in range(0, len(item_ids), _MGET_BATCH):
        batch = item_ids[start:start + _MGET_BATCH]
        logs = custody.custody_logs(client, settings, batch)
        for doc in client.mget(index=items_alias(settings), ids=batch)["docs"]:
            yield doc["_id"], doc["_source"] if doc.get("found") else None, logs[doc["_id"]]


def _hashes_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\r\n")
    writer.writerow(HASH_COLUMNS)
    writer.writerows([row.get(name) for name in HASH_COLUMNS] for row in rows)
    return out.getvalue().encode("utf-8")


def export_case(client: Elasticsearch, settings: Settings, case_id: str, target: BinaryIO,
                actor: audit.Actor, *, metadata_only: bool = False,
                language: str = "en", store: BlobStore | None = None) -> ExportResult:
    """Write the pack of ``case_id`` to ``target``, record it in the audit trail, mark the case."""
    case = cases.get_case(client, settings, case_id)
    if case["status"] == "closed":
        raise cases.CaseError("a closed case cannot be exported")
    key = load_signing_key(settings)
    started = utcnow()
    custody.refresh(client, settings)
    ex = _Export(client, settings, store or get_blob_store(settings, client), PackWriter(target, started),
                 metadata_only, started)
    kind = KINDS[1] if metadata_only else KINDS[0]
    summaries, missing, withheld = [], [], []
    for item_id, item, log in _items(client, settings, case["item_ids"]):
        if item is None:
            missing.append(item_id)
        elif cases.withheld(item):  # dismissed since it joined the case: not evidence
            withheld.append(item_id)
        else:
            summaries.append(_export_item(ex, item, log))
    ex.writer.add_bytes("case.json", _json({
        "case": {k: v for k, v in case.items() if k != "exports"},
        "custody": custody.custody_log(client, settings, case_id)}))
    public_pem = public_key_pem(key)
    key_fp = fingerprint(key.public_key())
    context = {"case": case, "organisation": settings.evidence_organisation,
               "exported_by": actor.username, "exported_at": iso(started), "kind": kind,
               "tool": TOOL, "items": summaries, "missing": missing, "withheld": withheld,
               "fingerprint": key_fp}
    ex.writer.add_bytes("summary.html", summary.render_summary(language, context))
    ex.writer.add_bytes("vics.json", _json(vics.document(case, ex.vics_media, TOOL,
                                                         settings.evidence_organisation)))
    ex.writer.add_bytes("hashes.csv", _hashes_csv(ex.rows))
    ex.writer.add_bytes(PUBLIC_KEY_FILE, public_pem)
    pack_id = str(uuid.uuid4())
    manifest = _json({
        "format": FORMAT, "format_version": FORMAT_VERSION, "pack_id": pack_id, "kind": kind,
        "tool": TOOL, "organisation": settings.evidence_organisation,
        "exported_by": {"username": actor.username, "role": actor.role},
        "export_started_at": iso(started), "created_at": iso(utcnow()), "language": language,
        "case": {k: case.get(k) for k in ("case_id", "title", "reference", "agency", "officer",
                                          "status", "created_at", "created_by")},
        "items": [s["item_id"] for s in summaries], "missing_items": missing,
        "withheld_items": withheld,
        "signature": {"algorithm": "Ed25519", "file": SIGNATURE,
                      "public_key_file": PUBLIC_KEY_FILE, "public_key_sha256": key_fp},
        "timestamp": {"request": TSQ, "token": TSR, "hash_algorithm": "sha256",
                      "authority": settings.evidence_tsa_url},
        "files": [{k: f[k] for k in ("path", "size", "sha256")} for f in ex.writer.files],
    })
    ex.writer.add_unlisted(MANIFEST, manifest)
    ex.writer.add_unlisted(SIGNATURE, key.sign(manifest))
    stamp = _timestamp(ex, settings, manifest)
    ex.writer.close()
    result = ExportResult(pack_id, kind, hashlib.sha256(manifest).hexdigest(), len(ex.writer.files) + 1,
                          ex.writer.total, len(summaries), missing, stamp,
                          warnings=ex.warnings, withheld_items=withheld)
    _record_export(client, settings, actor, case_id, result, language)
    return result


def _timestamp(ex: _Export, settings: Settings, manifest: bytes) -> str:
    """Store the RFC 3161 request, and the token when an authority is configured and answers."""
    request = timestamp.build_request(manifest)
    ex.writer.add_unlisted(TSQ, request)
    if not settings.evidence_tsa_url:
        return "request only (no time-stamp authority configured)"
    try:
        token = timestamp.request_token(settings.evidence_tsa_url, request)
        timestamp.verify(token, request, manifest)
    except (OSError, timestamp.TimestampError) as exc:
        ex.warnings.append(f"time-stamp authority failed: {exc}; the request is in the pack")
        return f"request only (authority failed: {exc})"
    ex.writer.add_unlisted(TSR, token)
    return "token from " + settings.evidence_tsa_url


def _record_export(client: Elasticsearch, settings: Settings, actor: audit.Actor, case_id: str,
                   result: ExportResult, language: str) -> None:
    details = {"pack_id": result.pack_id, "kind": result.kind, "language": language,
               "manifest_sha256": result.manifest_sha256, "files": result.files,
               "bytes": result.bytes, "items": result.items, "timestamp": result.timestamp,
               "withheld_items": result.withheld_items}
    audit.record(client, settings, actor, "evidence_export", case_id, details)
    cases.set_status(client, settings, actor, case_id, "exported",
                     export={**details, "at": iso(utcnow()), "by": actor.username})
