"""The append-only, hash-chained audit trail (format: docs/formats/audit-log.md).

Each record carries ``prev_hash`` (the previous record's ``hash``) and its own ``hash``,
a SHA-256 over its canonical JSON, so editing or removing any record breaks the chain at
that point. Records are numbered (``seq``) and their document id is the zero-padded
number; appending uses ``op_type=create`` on the next id, so of two concurrent writers
exactly one wins a number and the other retries on the new tip — Elasticsearch itself
serialises appends, across processes and hosts, without a lock service. A small "head"
document remembers the newest record only to save appenders a walk; it is written with
external versioning so it never moves backwards, and verification uses it to notice a
truncated tail.

Other pages (liaison exports, admin settings) record events through :func:`record`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from harmwatch.contract import utcnow
from harmwatch.csvcells import SafeWriter
from harmwatch.settings import Settings
from review_ui.indices import audit_alias, audit_head_alias

GENESIS_HASH = "0" * 64
HEAD_ID = "head"
HASHED_FIELDS = ("seq", "at", "actor", "role", "action", "target", "ip", "user_agent",
                 "details", "prev_hash")
_MAX_ATTEMPTS = 200


class AuditError(RuntimeError):
    """The audit trail could not be appended to.

    Views and reveals are recorded *before* content is served, so a failure withholds the
    content; decisions are recorded right after their conditional write succeeds.
    """


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where."""

    username: str
    role: str | None = None
    ip: str | None = None
    user_agent: str | None = None


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the hashed fields (sorted keys, no spaces, UTF-8)."""
    body = {name: record.get(name) for name in HASHED_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def doc_id(seq: int) -> str:
    return f"{seq:016d}"


def _tip(client: Elasticsearch, settings: Settings) -> tuple[int, str]:
    """The newest record's (seq, hash): start at the head hint, walk forward by realtime GET."""
    try:
        head = client.get(index=audit_head_alias(settings), id=HEAD_ID)["_source"]
        seq, last_hash = int(head["seq"]), head["hash"]
    except NotFoundError:
        seq, last_hash = 0, GENESIS_HASH
    while True:
        try:
            nxt = client.get(index=audit_alias(settings), id=doc_id(seq + 1))["_source"]
        except NotFoundError:
            return seq, last_hash
        seq, last_hash = int(nxt["seq"]), nxt["hash"]


def record(
    client: Elasticsearch, settings: Settings, actor: Actor, action: str,
    target: str | None = None, details: dict[str, Any] | None = None, *,
    refresh: bool = False,
) -> dict[str, Any]:
    """Append one record and return it; raises :class:`AuditError` if it cannot.

    ``refresh`` waits until the record is searchable (up to a second), for records that a
    search must count at once, such as failed logins.
    """
    for _ in range(_MAX_ATTEMPTS):
        seq, prev_hash = _tip(client, settings)
        entry: dict[str, Any] = {
            "seq": seq + 1, "at": _iso(utcnow()), "actor": actor.username, "role": actor.role,
            "action": action, "target": target, "ip": actor.ip,
            "user_agent": (actor.user_agent or "")[:300] or None,
            "details": details or {}, "prev_hash": prev_hash,
        }
        entry["hash"] = record_hash(entry)
        try:
            client.create(index=audit_alias(settings), id=doc_id(seq + 1), document=entry,
                          refresh="wait_for" if refresh else None)
        except ConflictError:
            continue
        _advance_head(client, settings, entry)
        return entry
    raise AuditError("could not append to the audit trail: too much contention")


def _advance_head(client: Elasticsearch, settings: Settings, entry: dict[str, Any]) -> None:
    # A ConflictError means a later record already moved the head further.
    with contextlib.suppress(ConflictError):
        client.index(index=audit_head_alias(settings), id=HEAD_ID, version=entry["seq"],
                     version_type="external",
                     document={"seq": entry["seq"], "hash": entry["hash"], "at": entry["at"]})


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def iter_records(client: Elasticsearch, settings: Settings,
                 batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every record in ``seq`` order, paged with search_after (bounded memory)."""
    client.indices.refresh(index=audit_alias(settings))
    after: list[Any] | None = None
    while True:
        page = client.search(index=audit_alias(settings), size=batch, sort=[{"seq": "asc"}],
                             search_after=after, query={"match_all": {}})["hits"]["hits"]
        yield from (hit["_source"] for hit in page)
        if len(page) < batch:
            return
        after = page[-1]["sort"]


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None


def verify(client: Elasticsearch, settings: Settings) -> VerifyResult:
    """Check every record's hash, numbering and link; name the first broken record."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for entry in iter_records(client, settings):
        problem = _check(entry, expected_seq, prev_hash)
        if problem:
            return VerifyResult(False, checked, expected_seq, problem)
        checked += 1
        expected_seq, prev_hash = expected_seq + 1, entry["hash"]
    try:
        head = client.get(index=audit_head_alias(settings), id=HEAD_ID)["_source"]
    except NotFoundError:
        head = None
    if head and int(head["seq"]) >= expected_seq:
        return VerifyResult(False, checked, expected_seq,
                            f"records {expected_seq}..{head['seq']} are missing (truncated)")
    return VerifyResult(True, checked)


def _check(entry: dict[str, Any], expected_seq: int, prev_hash: str) -> str | None:
    seq = entry.get("seq")
    if seq != expected_seq:
        return f"record {expected_seq} is missing (next present is {seq})"
    if entry.get("prev_hash") != prev_hash:
        return "prev_hash does not match the previous record's hash"
    if record_hash(entry) != entry.get("hash"):
        return "hash does not match the record's content (edited)"
    return None


def search_records(
    client: Elasticsearch, settings: Settings, *, actor: str | None = None,
    action: str | None = None, target: str | None = None, since: str | None = None,
    until: str | None = None, size: int = 100, before_seq: int | None = None,
) -> list[dict[str, Any]]:
    """Newest-first page of records matching the filters (admins' audit browser)."""
    filters: list[dict[str, Any]] = []
    for name, value in (("actor", actor), ("action", action), ("target", target)):
        if value:
            filters.append({"term": {name: value}})
    if since or until:
        filters.append({"range": {"at": {k: v for k, v in (("gte", since), ("lte", until))
                                         if v}}})
    return [hit["_source"] for hit in client.search(
        index=audit_alias(settings), size=size, sort=[{"seq": "desc"}],
        search_after=[before_seq] if before_seq else None,
        query={"bool": {"filter": filters}},
    )["hits"]["hits"]]


EXPORT_COLUMNS = ("seq", "at", "actor", "role", "action", "target", "ip", "user_agent",
                  "details", "prev_hash", "hash")


def export_lines(client: Elasticsearch, settings: Settings, fmt: str) -> Iterator[str]:
    """The whole chain as JSON Lines (verifiable offline) or CSV, streamed."""
    if fmt == "csv":
        yield ",".join(EXPORT_COLUMNS) + "\r\n"
    for entry in iter_records(client, settings):
        if fmt == "csv":
            out = io.StringIO()
            row = {**entry, "details": json.dumps(entry.get("details"), ensure_ascii=False,
                                                   sort_keys=True)}
            SafeWriter(out).writerow([row.get(c) for c in EXPORT_COLUMNS])
            yield out.getvalue()
        else:
            yield json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"


def verify_lines(lines: Iterator[str]) -> VerifyResult:
    """Verify an exported JSON Lines chain without Elasticsearch (an auditor's copy)."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        problem = _check(entry, expected_seq, prev_hash)
        if problem:
            return VerifyResult(False, checked, expected_seq, problem)
        checked += 1
        expected_seq, prev_hash = expected_seq + 1, entry["hash"]
    return VerifyResult(True, checked)
