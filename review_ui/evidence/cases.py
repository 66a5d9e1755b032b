"""Liaison cases in Elasticsearch: which confirmed or escalated items go to police together.

A case lives in its own versioned index behind ``<prefix>-cases`` (same convention as
:mod:`harmwatch.documents`). Every change is a conditional write (``if_seq_no``), so two
officers editing one case never lose each other's work, and every change is recorded in
the audit trail by the caller-supplied :class:`~review_ui.audit.Actor`.

An item that stops being confirmed or escalated after joining a case (an admin dismisses
an escalation) stays in the case's ``item_ids`` — the case's history is not rewritten —
but is *withheld* (:func:`withheld`): the case page shows only its id, and exports leave
out its files and metadata and list its id under ``withheld_items``. Should it be
confirmed or escalated again, it comes back. The check is made each time a case is shown
or exported, never stored.

Status moves ``open → exported → closed``. Changing the items of an exported case
returns it to ``open``: the pack already handed over no longer describes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from harmwatch.contract import utcnow
from harmwatch.documents import ensure_versioned_index, items_alias
from harmwatch.settings import Settings
from review_ui import audit
from review_ui.indices import ensure_ui_indices

CASES_VERSION = 1
CASE_STATUSES = ("open", "exported", "closed")
# Items a case may hold: what analysts passed on to liaison.
CASEABLE_ITEM_STATUSES = ("confirmed", "escalated")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("exported", "closed"),
    "exported": ("exported", "open", "closed"),
    "closed": (),
}
MAX_ITEMS = 10_000

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}

CASES_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": CASES_VERSION},
    "properties": {
        "case_id": _KEYWORD,
        "title": {"type": "text", "fields": {"raw": _KEYWORD}},
        "reference": _KEYWORD,
        "agency": _KEYWORD,
        "officer": _KEYWORD,
        "notes": {"type": "text"},
        "item_ids": _KEYWORD,
        "status": _KEYWORD,
        "created_at": _DATE,
        "created_by": _KEYWORD,
        "updated_at": _DATE,
        "updated_by": _KEYWORD,
        "exported_at": _DATE,
        "closed_at": _DATE,
        "exports": {"type": "object", "enabled": False},
        "purged_at": _DATE,
    },
}


class CaseError(ValueError):
    """A case request that cannot be honoured; the message says why."""


class CaseNotFound(CaseError):
    pass


@dataclass
class CaseFields:
    """What a liaison officer types when opening a case."""

    title: str
    reference: str = ""
    agency: str = ""
    officer: str = ""
    notes: str = ""

    def validate(self) -> None:
        if not self.title.strip():
            raise CaseError("a case needs a title")
        for name in ("title", "reference", "agency", "officer"):
            if len(getattr(self, name)) > 500:
                raise CaseError(f"{name} is longer than 500 characters")
        if len(self.notes) > 20_000:
            raise CaseError("notes are longer than 20,000 characters")


def cases_alias(settings: Settings) -> str:
    return settings.index_name("cases")


def ensure_case_indices(client: Elasticsearch, settings: Settings) -> None:
    """The cases index plus everything the UI's audit trail needs (idempotent)."""
    ensure_ui_indices(client, settings)
    ensure_versioned_index(client, cases_alias(settings), CASES_VERSION, CASES_MAPPING, shards=1)


def _record(client: Elasticsearch, settings: Settings, actor: audit.Actor, action: str,
            case_id: str, **details: Any) -> None:
    audit.record(client, settings, actor, action, case_id, details)


def create_case(client: Elasticsearch, settings: Settings, actor: audit.Actor,
                fields: CaseFields) -> dict[str, Any]:
    fields.validate()
    now = utcnow().isoformat()
    case = {"case_id": uuid.uuid4().hex[:16], "title": fields.title.strip(),
            "reference": fields.reference.strip(), "agency": fields.agency.strip(),
            "officer": fields.officer.strip(), "notes": fields.notes, "item_ids": [],
            "status": "open", "created_at": now, "created_by": actor.username,
            "updated_at": now, "updated_by": actor.username, "exports": []}
    client.create(index=cases_alias(settings), id=case["case_id"], document=case,
                  refresh=True)
    _record(client, settings, actor, "case_create", case["case_id"], title=case["title"],
            reference=case["reference"], agency=case["agency"], officer=case["officer"])
    return case


def _get_doc(client: Elasticsearch, settings: Settings, case_id: str) -> dict[str, Any]:
    try:
        return client.get(index=cases_alias(settings), id=case_id)
    except NotFoundError as exc:
        raise CaseNotFound(f"no case {case_id!r}") from exc


def get_case(client: Elasticsearch, settings: Settings, case_id: str) -> dict[str, Any]:
    return _get_doc(client, settings, case_id)["_source"]


def list_cases(client: Elasticsearch, settings: Settings, status: str | None = None,
               size: int = 200) -> list[dict[str, Any]]:
    """Newest cases first (without their item lists, which can be long)."""
    query = {"term": {"status": status}} if status else {"match_all": {}}
    hits = client.search(index=cases_alias(settings), query=query, size=size,
                         sort=[{"created_at": "desc"}], source_excludes=["item_ids", "exports"],
                         track_total_hits=False)["hits"]["hits"]
    return [hit["_source"] for hit in hits]


def _update(client: Elasticsearch, settings: Settings, case_id: str, actor: audit.Actor,
            change: Any) -> dict[str, Any]:
    """Apply ``change(case) -> changes`` as a conditional write, retrying on a race."""
    for _ in range(20):
        doc = _get_doc(client, settings, case_id)
        changes = change(doc["_source"])
        changes.update(updated_at=utcnow().isoformat(), updated_by=actor.username)
        try:
            client.update(index=cases_alias(settings), id=case_id, doc=changes,
                          if_seq_no=doc["_seq_no"], if_primary_term=doc["_primary_term"],
                          refresh=True)
        except ConflictError:
            continue
        return {**doc["_source"], **changes}
    raise CaseError("the case is changing too often; try again")


def _caseable(client: Elasticsearch, settings: Settings, item_ids: list[str]) -> list[str]:
    """Refuse ids that do not exist or that analysts have not confirmed or escalated."""
    found = client.mget(index=items_alias(settings), ids=item_ids, source_includes=["status"])
    problems = []
    for doc in found["docs"]:
        if not doc.get("found"):
            problems.append(f"{doc['_id']}: no such item")
        elif doc["_source"].get("status") not in CASEABLE_ITEM_STATUSES:
            problems.append(f"{doc['_id']}: is {doc['_source'].get('status')}, "
                            "not confirmed or escalated")
    if problems:
        raise CaseError("cannot add " + "; ".join(problems))
    return item_ids


def withheld(item: dict[str, Any]) -> bool:
    """Whether a case's item may no longer be shown or exported with it.

    Checked at every showing and export (not when the item was added): an item analysts
    no longer stand behind — dismissed after its escalation — is not evidence, whoever
    looks, admins included.
    """
    return item.get("status") not in CASEABLE_ITEM_STATUSES


def _editable(case: dict[str, Any]) -> None:
    if case["status"] == "closed":
        raise CaseError("the case is closed")


def add_items(client: Elasticsearch, settings: Settings, actor: audit.Actor, case_id: str,
              item_ids: list[str]) -> dict[str, Any]:
    wanted = _caseable(client, settings, list(dict.fromkeys(i.strip() for i in item_ids if i.strip())))

    def change(case: dict[str, Any]) -> dict[str, Any]:
        _editable(case)
        merged = list(dict.fromkeys([*case["item_ids"], *wanted]))
        if len(merged) > MAX_ITEMS:
            raise CaseError(f"a case holds at most {MAX_ITEMS} items")
        return {"item_ids": merged, "status": "open"}

    case = _update(client, settings, case_id, actor, change)
    _record(client, settings, actor, "case_add_items", case_id, item_ids=wanted)
    return case


def remove_items(client: Elasticsearch, settings: Settings, actor: audit.Actor, case_id: str,
                 item_ids: list[str]) -> dict[str, Any]:
    unwanted = set(item_ids)

    def change(case: dict[str, Any]) -> dict[str, Any]:
        _editable(case)
        return {"item_ids": [i for i in case["item_ids"] if i not in unwanted], "status": "open"}

    case = _update(client, settings, case_id, actor, change)
    _record(client, settings, actor, "case_remove_items", case_id, item_ids=sorted(unwanted))
    return case


def set_status(client: Elasticsearch, settings: Settings, actor: audit.Actor, case_id: str,
               status: str, export: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move a case along ``open → exported → closed`` (an export also records the pack)."""
    if status not in CASE_STATUSES:
        raise CaseError(f"unknown status {status!r}; one of {', '.join(CASE_STATUSES)}")

    def change(case: dict[str, Any]) -> dict[str, Any]:
        if status not in TRANSITIONS[case["status"]]:
            raise CaseError(f"a case that is {case['status']} cannot become {status}")
        now = utcnow().isoformat()
        changes: dict[str, Any] = {"status": status}
        if status == "exported":
            changes["exported_at"] = now
            changes["exports"] = [*case.get("exports", []), *([export] if export else [])]
        if status == "closed":
            changes["closed_at"] = now
        return changes

    case = _update(client, settings, case_id, actor, change)
    if export is None:
        _record(client, settings, actor, "case_status", case_id, status=status)
    return case
