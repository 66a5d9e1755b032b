"""An item's (or a case's) custody log: its records from the UI's hash-chained audit trail.

Read through :func:`review_ui.audit.search_records`, the audit module's query function, so
the pack shows exactly what an admin sees in the audit browser: who viewed, revealed,
decided, added to a case and exported, when and from where. Each record keeps its
``hash`` and ``prev_hash``, so it can be matched against an exported audit chain.
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
