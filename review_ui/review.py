"""The review queue, claims, decisions, notes and reveals on ``items`` documents.

Every write is conditional on the document's ``_seq_no``/``_primary_term`` as read, so two
analysts racing for one item cannot both succeed: the loser gets :class:`Conflict`.
Claims carry an expiry; an expired claim is free for anyone. The queue is always one
Elasticsearch query (thresholds applied at query time) paged with ``search_after``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from harmwatch.contract import CATEGORIES, utcnow
from harmwatch.documents import QUEUE_SORT, URGENT, get_thresholds, items_alias, queue_filter
from harmwatch.search import fold
from harmwatch.settings import Settings
from review_ui.errors import Conflict, NotVisible, ReviewError
from review_ui.permissions import DECIDABLE_STATUSES, VISIBLE_STATUSES

PAGE_SIZE = 50
ACTIONS = {"confirm": "confirmed", "dismiss": "dismissed", "escalate": "escalated"}
SEVERITIES = ("low", "medium", "high", "critical")
# Fields the queue list needs; the big stored-only fields never leave Elasticsearch.
QUEUE_FIELDS = ["item_id", "source", "language", "author.name", "title", "text", "top_category",
                "max_score", "has_match", "match_severity", "urgent", "risk", "crawled_at",
                "status", "claim", "media_count", "url", "decision.status"]
ITEM_EXCLUDES = ["analysed", "text_folded"]


@dataclass
class QueueFilters:
    category: str | None = None
    source: str | None = None
    language: str | None = None
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    assignee: str | None = None
    q: str | None = None
    cursor: str | None = None
    size: int = PAGE_SIZE


@dataclass
class QueuePage:
    items: list[dict[str, Any]]
    total: int
    total_is_exact: bool
    next_cursor: str | None
    thresholds: dict[str, float] = field(default_factory=dict)


def encode_cursor(sort_values: list[Any]) -> str:
    raw = json.dumps(sort_values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The search_after values of a cursor; refuses anything but one plain scalar per sort
    key (a cursor from before a change of :data:`QUEUE_SORT` is refused, not misread)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReviewError("invalid cursor") from exc
    if (not isinstance(values, list) or len(values) != len(QUEUE_SORT)
            or not all(isinstance(v, (int, float, str)) for v in values)):
        raise ReviewError("invalid cursor")
    return values


def default_status(role: str) -> str:
    return "escalated" if role == "liaison" else "new"


def queue_query(thresholds: dict[str, float], filters: QueueFilters, role: str,
                username: str) -> dict[str, Any]:
    """The Elasticsearch query of the queue as one role sees it with these filters."""
    status = filters.status or default_status(role)
    if status not in VISIBLE_STATUSES[role]:
        raise ReviewError(f"status {status!r} is not available")
    must: list[dict[str, Any]] = [queue_filter(thresholds), {"term": {"status": status}}]
    if filters.category:
        if filters.category not in CATEGORIES:
            raise ReviewError(f"unknown category {filters.category!r}")
        over: dict[str, Any] = {"range": {f"scores.{filters.category}": {
            "gte": thresholds[filters.category]}}}
        if filters.category == "self_harm":  # urgent items are the self-harm path
            over = {"bool": {"should": [over, URGENT], "minimum_should_match": 1}}
        must.append(over)
    for name, value in (("source", filters.source), ("language", filters.language)):
        if value:
            must.append({"term": {name: value}})
    if filters.date_from or filters.date_to:
        bounds = {}
        if filters.date_from:
            bounds["gte"] = filters.date_from.isoformat()
        if filters.date_to:
            bounds["lt"] = (filters.date_to + timedelta(days=1)).isoformat()
        must.append({"range": {"crawled_at": bounds}})
    if filters.assignee:
        who = username if filters.assignee == "me" else filters.assignee
        must += [{"term": {"claim.user": who}},
                 {"range": {"claim.expires_at": {"gt": utcnow().isoformat()}}}]
    query: dict[str, Any] = {"bool": {"filter": must}}
    if filters.q and filters.q.strip():
        query["bool"]["must"] = [{"match": {"text_folded": {
            "query": fold(filters.q.strip()), "operator": "and"}}}]
    return query


def search_queue(client: Elasticsearch, settings: Settings, filters: QueueFilters, role: str,
                 username: str) -> QueuePage:
    thresholds = get_thresholds(client, settings)
    size = max(1, min(filters.size, 200))
    result = client.search(
        index=items_alias(settings), query=queue_query(thresholds, filters, role, username),
        sort=QUEUE_SORT, size=size + 1, source_includes=QUEUE_FIELDS,
        search_after=decode_cursor(filters.cursor) if filters.cursor else None,
        track_total_hits=10_000,
    )
    hits = result["hits"]["hits"]
    has_more = len(hits) > size
    hits = hits[:size]
    total = result["hits"]["total"]
    return QueuePage(
        items=[_summary(h["_source"]) for h in hits], total=total["value"],
        total_is_exact=total["relation"] == "eq",
        next_cursor=encode_cursor(hits[-1]["sort"]) if has_more and hits else None,
        thresholds=thresholds,
    )


def _summary(source: dict[str, Any]) -> dict[str, Any]:
    text = source.get("text") or ""
    return {**source, "excerpt": text[:240], "claim": active_claim(source)}


def active_claim(source: dict[str, Any]) -> dict[str, Any] | None:
    claim = source.get("claim")
    if claim and claim.get("user") and claim.get("expires_at", "") > utcnow().isoformat():
        return claim
    return None


def _get(client: Elasticsearch, settings: Settings, item_id: str,
         role: str) -> dict[str, Any]:
    try:
        doc = client.get(index=items_alias(settings), id=item_id, source_excludes=ITEM_EXCLUDES)
    except NotFoundError as exc:
        raise NotVisible(item_id) from exc
    if doc["_source"].get("status", "new") not in VISIBLE_STATUSES[role]:
        raise NotVisible(item_id)
    return doc


def get_item(client: Elasticsearch, settings: Settings, item_id: str, role: str) -> dict[str, Any]:
    """The item's source (without the bulky stored copy) if this role may see it."""
    return _get(client, settings, item_id, role)["_source"]


def _update(client: Elasticsearch, settings: Settings, doc: dict[str, Any],
            changes: dict[str, Any], refresh: bool = False) -> None:
    try:
        client.update(index=items_alias(settings), id=doc["_id"], doc=changes,
                      if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"],
                      refresh=True if refresh else None)
    except ConflictError as exc:
        raise Conflict("the item changed meanwhile; reload it") from exc


def _check_decidable(source: dict[str, Any], role: str) -> None:
    if source.get("status", "new") not in DECIDABLE_STATUSES[role]:
        raise Conflict(f"the item is already {source.get('status')}")


def claim(client: Elasticsearch, settings: Settings, item_id: str, username: str, role: str,
          minutes: int | None = None) -> dict[str, Any]:
    """Hold the item (``settings.ui_claim_minutes`` unless given), renewing one's own claim.

    Refused with :class:`Conflict` while someone else's claim is unexpired.
    """
    minutes = settings.ui_claim_minutes if minutes is None else minutes
    doc = _get(client, settings, item_id, role)
    _check_decidable(doc["_source"], role)
    held = active_claim(doc["_source"])
    if held and held["user"] != username:
        raise Conflict(f"claimed by {held['user']}")
    new_claim = {"user": username,
                 "expires_at": (utcnow() + timedelta(minutes=minutes)).isoformat()}
    _update(client, settings, doc, {"claim": new_claim})
    return new_claim


def release(client: Elasticsearch, settings: Settings, item_id: str, username: str,
            role: str) -> None:
    doc = _get(client, settings, item_id, role)
    held = active_claim(doc["_source"])
    if held and held["user"] != username:
        raise Conflict(f"claimed by {held['user']}")
    _update(client, settings, doc, {"claim": None})


@dataclass
class Decision:
    action: str
    category: str | None = None
    severity: str | None = None
    note: str | None = None

    def validate(self) -> None:
        if self.action not in ACTIONS:
            raise ReviewError(f"action must be one of {', '.join(ACTIONS)}")
        if self.action == "confirm":
            if self.category not in CATEGORIES:
                raise ReviewError("confirming needs a category")
            if self.severity not in SEVERITIES:
                raise ReviewError("confirming needs a severity")
        if self.note and len(self.note) > 5000:
            raise ReviewError("note too long (5000 characters at most)")


def decide(client: Elasticsearch, settings: Settings, item_id: str, username: str, role: str,
           decision: Decision) -> dict[str, Any]:
    """Record a decision on an item the user has claimed; returns the stored decision."""
    decision.validate()
    doc = _get(client, settings, item_id, role)
    source = doc["_source"]
    _check_decidable(source, role)
    held = active_claim(source)
    if not held or held["user"] != username:
        raise Conflict("claim the item before deciding" if not held
                       else f"claimed by {held['user']}")
    now = utcnow().isoformat()
    stored = {"status": ACTIONS[decision.action], "user": username, "at": now,
              "category": decision.category if decision.action == "confirm" else None,
              "severity": decision.severity if decision.action == "confirm" else None,
              "note": decision.note or None}
    changes: dict[str, Any] = {"status": stored["status"], "decision": stored, "claim": None}
    if decision.note:
        changes["notes"] = [*(source.get("notes") or []),
                            {"user": username, "at": now, "text": decision.note}]
    _update(client, settings, doc, changes, refresh=True)
    return stored


def add_note(client: Elasticsearch, settings: Settings, item_id: str, username: str,
             role: str, text: str) -> dict[str, Any]:
    text = text.strip()
    if not text or len(text) > 5000:
        raise ReviewError("a note needs 1 to 5000 characters")
    for _ in range(10):
        doc = _get(client, settings, item_id, role)
        note = {"user": username, "at": utcnow().isoformat(), "text": text}
        try:
            _update(client, settings, doc, {"notes": [*(doc["_source"].get("notes") or []), note]})
            return note
        except Conflict:
            continue
    raise Conflict("the item is changing too often; try again")


def media_entry(source: dict[str, Any], index: int) -> dict[str, Any]:
    media = source.get("media") or []
    if not 0 <= index < len(media) or not media[index].get("blob_ref"):
        raise NotVisible(f"media {index}")
    return media[index]


def record_reveal(client: Elasticsearch, settings: Settings, item_id: str, username: str,
                  role: str, index: int) -> dict[str, Any]:
    """Append a reveal (who, when, which file) to the item; evidence packs report it."""
    for _ in range(10):
        doc = _get(client, settings, item_id, role)
        entry = media_entry(doc["_source"], index)
        reveal = {"user": username, "at": utcnow().isoformat(), "media_index": index,
                  "sha256": entry.get("sha256")}
        try:
            _update(client, settings, doc,
                    {"reveals": [*(doc["_source"].get("reveals") or []), reveal]})
            return reveal
        except Conflict:
            continue
    raise Conflict("the item is changing too often; try again")


def has_revealed(source: dict[str, Any], username: str, index: int) -> bool:
    return any(r.get("user") == username and r.get("media_index") == index
               for r in source.get("reveals") or [])


def related_items(client: Elasticsearch, settings: Settings, source: dict[str, Any], role: str,
                  size: int = 10) -> list[dict[str, Any]]:
    """Other flagged posts by the same author on the same source."""
    author = source.get("author") or {}
    if author.get("id"):
        who = {"term": {"author.id": author["id"]}}
    elif author.get("name"):
        who = {"term": {"author.name": author["name"]}}
    else:
        return []
    thresholds = get_thresholds(client, settings)
    query = {"bool": {
        "filter": [who, {"term": {"source": source["source"]}}, queue_filter(thresholds),
                   {"terms": {"status": list(VISIBLE_STATUSES[role])}}],
        "must_not": [{"term": {"post_key": source.get("post_key") or ""}}],
    }}
    hits = client.search(index=items_alias(settings), query=query, sort=QUEUE_SORT, size=size,
                         source_includes=QUEUE_FIELDS)["hits"]["hits"]
    return [_summary(h["_source"]) for h in hits]


def highlight_segments(text: str, rule_hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Split ``text`` into plain and rule-hit segments (the template escapes each one).

    Overlapping spans are merged; spans outside the text are ignored, so a bad offset
    can never slice markup into the page.
    """
    spans = sorted((int(h["start"]), int(h["end"]), h) for h in rule_hits
                   if isinstance(h.get("start"), int) and isinstance(h.get("end"), int)
                   and 0 <= h["start"] < h["end"] <= len(text))
    segments: list[dict[str, Any]] = []
    position = 0
    merged: list[tuple[int, int, list[dict[str, Any]]]] = []
    for start, end, hit in spans:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), [*last[2], hit])
        else:
            merged.append((start, end, [hit]))
    for start, end, hits in merged:
        if start > position:
            segments.append({"text": text[position:start], "hits": []})
        segments.append({"text": text[start:end], "hits": hits})
        position = end
    if position < len(text):
        segments.append({"text": text[position:], "hits": []})
    return segments


def parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise ReviewError(f"invalid date {value!r} (use YYYY-MM-DD)") from exc
