"""Exporting analysts' decisions from the REAL Elasticsearch, with the indexer's mapping."""

from __future__ import annotations

import pytest

from harmwatch.documents import ensure_indices, items_alias
from harmwatch.search import es_client
from models.retrain import fetch_decisions

pytestmark = pytest.mark.integration


def test_decisions_are_read_from_the_items_index(services):
    # An items index of its own: other tests record decisions in the session's one.
    settings = services.model_copy(update={"es_index_prefix": f"{services.es_index_prefix}-textdec"})
    client = es_client(settings)
    ensure_indices(client, settings)
    alias = items_alias(settings)
    docs = {
        "a": {"text": "em bn tuổi r? đừng nói vs bme", "status": "confirmed",
              "decision": {"status": "confirmed", "category": "grooming"}},
        "b": {"text": "Họp phụ huynh sáng Chủ nhật", "status": "dismissed",
              "decision": {"status": "dismissed"}},
        "c": {"text": "still waiting for review", "status": "new"},
        "d": {"text": "escalated to liaison", "status": "escalated",
              "decision": {"status": "escalated", "category": "trafficking"}},
        "e": {"text": "", "status": "confirmed",
              "decision": {"status": "confirmed", "category": "grooming"}},
    }
    for doc_id, doc in docs.items():
        client.index(index=alias, id=f"text-decisions-{doc_id}", document=doc)
    client.indices.refresh(index=alias)
    rows = fetch_decisions(client, index=alias)
    assert sorted(rows, key=lambda r: r["text"]) == [
        {"text": "Họp phụ huynh sáng Chủ nhật", "labels": []},
        {"text": "em bn tuổi r? đừng nói vs bme", "labels": ["grooming"]},
    ]
