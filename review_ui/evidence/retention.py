"""Retention of evidence: how long a case's media and snapshots are kept, by case status.

Open and exported cases are kept (an investigation may still need the originals); a
closed case's blobs are deleted a set number of days after closing, unless another case
that is still within its period holds the same item. Items' metadata stays in
Elasticsearch — only the bytes go. Every deletion is an audit record naming the blobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from harmwatch.blobstore import BlobStore
from harmwatch.contract import utcnow
from harmwatch.documents import items_alias
from harmwatch.settings import Settings
from review_ui import audit
from review_ui.evidence import cases
from review_ui.evidence.atrest import item_refs

# Days after the status was reached; None keeps the evidence for as long as the status lasts.
DEFAULT_RETENTION_DAYS: dict[str, int | None] = {"open": None, "exported": None, "closed": 730}


@dataclass
class RetentionRun:
    due_cases: list[str] = field(default_factory=list)
    deleted_blobs: int = 0
    kept_items: list[str] = field(default_factory=list)


def _status_since(case: dict[str, Any]) -> str:
    return {"open": case.get("updated_at"), "exported": case.get("exported_at"),
            "closed": case.get("closed_at")}[case["status"]] or case["created_at"]


def is_due(case: dict[str, Any], days: dict[str, int | None], now: datetime) -> bool:
    period = days.get(case["status"])
    if period is None or case.get("purged_at"):
        return False
    return datetime.fromisoformat(_status_since(case)) + timedelta(days=period) <= now


def _all_cases(client: Elasticsearch, settings: Settings) -> list[dict[str, Any]]:
    hits = client.search(index=cases.cases_alias(settings), size=10_000,
                         query={"match_all": {}}, source_excludes=["exports"])
    return [hit["_source"] for hit in hits["hits"]["hits"]]


def apply_retention(client: Elasticsearch, settings: Settings, store: BlobStore,
                    actor: audit.Actor, days: dict[str, int | None] | None = None,
                    dry_run: bool = True) -> RetentionRun:
    """Find cases past their period; unless ``dry_run``, delete their blobs and audit it."""
    days = {**DEFAULT_RETENTION_DAYS, **(days or {})}
    now = utcnow()
    every = _all_cases(client, settings)
    due = [c for c in every if is_due(c, days, now)]
    protected = {i for c in every if c not in due for i in c.get("item_ids", [])}
    # Blobs are content-addressed: an image may be shared with an item still in use.
    protected_refs = {ref for _, item in _item_blobs(client, settings, sorted(protected))
                      for ref in item_refs(item)}
    run = RetentionRun(due_cases=[c["case_id"] for c in due])
    for case in due:
        run.kept_items += [i for i in case.get("item_ids", []) if i in protected]
        if dry_run:
            continue
        doomed = [i for i in case.get("item_ids", []) if i not in protected]
        for item_id, item in _item_blobs(client, settings, doomed):
            refs = [ref for ref in item_refs(item) if ref not in protected_refs]
            run.deleted_blobs += _purge_item(client, settings, store, actor, case, item_id, refs)
        if not dry_run:
            client.update(index=cases.cases_alias(settings), id=case["case_id"],
                          doc={"purged_at": now.isoformat()}, refresh=True)
            audit.record(client, settings, actor, "evidence_retention", case["case_id"],
                         {"status": case["status"], "period_days": days[case["status"]]})
    return run


def _item_blobs(client: Elasticsearch, settings: Settings,
                item_ids: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(item id, its blob references) for the items that exist, a batch at a time."""
    for start in range(0, len(item_ids), 200):
        docs = client.mget(index=items_alias(settings), ids=item_ids[start:start + 200],
                           source_includes=["media.blob_ref", "snapshot_ref"])["docs"]
        yield from ((d["_id"], d["_source"]) for d in docs if d.get("found"))


def _purge_item(client: Elasticsearch, settings: Settings, store: BlobStore, actor: audit.Actor,
                case: dict[str, Any], item_id: str, refs: list[str]) -> int:
    deleted = [ref for ref in refs if store.delete(ref)]  # plaintext, sealed copy, record
    audit.record(client, settings, actor, "evidence_delete", item_id,
                 {"case_id": case["case_id"], "blobs": deleted, "reason": "retention"})
    return len(deleted)
