"""Evidence at rest: which blobs are sealed, and when (the sealing itself: harmwatch.sealing).

Confirming an item seals its media and snapshot (review_ui.actions); ``harmwatch evidence
seal`` seals whatever a failure left in plaintext. Every reader and writer gets the
sealing store from :func:`harmwatch.blobstore.get_blob_store`, so a sealed blob is read
decrypted and never written in plaintext again.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from harmwatch.documents import items_alias
from harmwatch.sealing import SealingBlobStore
from harmwatch.settings import Settings
from review_ui import audit


def item_refs(item: dict[str, Any]) -> list[str]:
    """Every blob an item names: its media and its page snapshot."""
    refs = [m["blob_ref"] for m in item.get("media") or [] if m.get("blob_ref")]
    return refs + ([item["snapshot_ref"]] if item.get("snapshot_ref") else [])


def seal_item(store: SealingBlobStore, item: dict[str, Any]) -> int:
    """Seal every blob of one item that still has plaintext; returns how many."""
    return sum(store.seal(ref, item["item_id"]) for ref in item_refs(item))


def seal_confirmed(client: Elasticsearch, settings: Settings, store: SealingBlobStore,
                   actor: audit.Actor) -> int:
    """Seal the blobs of every confirmed item that still has plaintext; returns how many."""
    sealed, after = 0, None
    while True:
        hits = client.search(index=items_alias(settings), size=200,
                             query={"term": {"status": "confirmed"}},
                             source_includes=["item_id", "media.blob_ref", "snapshot_ref"],
                             sort=[{"item_id": "asc"}], search_after=after)["hits"]["hits"]
        for hit in hits:
            item = hit["_source"]
            count = seal_item(store, item)
            if count:
                audit.record(client, settings, actor, "evidence_seal", item["item_id"],
                             {"blobs": count})
            sealed += count
        if len(hits) < 200:
            return sealed
        after = hits[-1]["sort"]
