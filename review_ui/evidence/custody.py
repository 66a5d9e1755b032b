"""An item's (or a case's) custody log: its records from the UI's hash-chained audit trail.

A case's log is read through :func:`review_ui.audit.search_records`, the audit module's
query function, so the pack shows what an admin sees in the audit browser. Items' logs
are read a batch of items per query from the same index (``review_ui.indices``), with the
same fields and order: one query per item cost ~20 ms each, two thirds of the time of a
1,000-item export. Each record keeps its ``hash`` and ``prev_hash``, so it can be matched
against an exported audit chain.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from harmwatch.settings import Settings
from review_ui import audit
from review_ui.indices import audit_alias

PAGE = 500


def refresh(client: Elasticsearch, settings: Settings) -> None:
    """Make records appended a moment ago searchable before an export reads them."""
    client.indices.refresh(index=audit_alias(settings))


def custody_log(client: Elasticsearch, settings: Settings, target: str) -> list[dict[str, Any]]:
    """Every audit record about ``target``, oldest first."""
    newest_first: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        page = audit.search_records(client, settings, target=target, size=PAGE,
                                    before_seq=before)
        newest_first.extend(page)
        if len(page) < PAGE:
            return newest_first[::-1]
        before = page[-1]["seq"]


def custody_logs(client: Elasticsearch, settings: Settings,
                 targets: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every audit record about each of ``targets``, oldest first, in one paged query."""
    logs: dict[str, list[dict[str, Any]]] = {target: [] for target in targets}
    after: list[Any] | None = None
    while True:
        page = client.search(index=audit_alias(settings), size=PAGE, sort=[{"seq": "asc"}],
                             search_after=after,
                             query={"bool": {"filter": [{"terms": {"target": targets}}]}},
                             )["hits"]["hits"]
        for hit in page:
            logs[hit["_source"]["target"]].append(hit["_source"])
        if len(page) < PAGE:
            return logs
        after = page[-1]["sort"]
