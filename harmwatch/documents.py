"""The Elasticsearch documents shared by the indexer and the review UI.

This is the second half of the contract between stages (the first is
:mod:`harmwatch.contract`): the indexer writes ``items`` documents, the review UI reads
them and records analysts' claims and decisions on them, and admins store the
per-category thresholds in the ``settings`` index, which the queue query reads on every
request — so a threshold change needs no restart anywhere.

Indices are versioned behind aliases (``harmwatch-items`` → ``harmwatch-items-v1``): a
mapping change creates ``-v2``, reindexes, and moves the alias.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from harmwatch.contract import CATEGORIES, AnalysedPost, item_id, utcnow
from harmwatch.search import fold
from harmwatch.settings import Settings

ITEMS_MAPPING_VERSION = 1
SETTINGS_MAPPING_VERSION = 1
CRAWL_STATS_MAPPING_VERSION = 1

DEFAULT_THRESHOLDS: dict[str, float] = {
    "sexual_exploitation": 0.5,
    "grooming": 0.5,
    "violence": 0.6,
    "bullying": 0.6,
    "self_harm": 0.5,
    "trafficking": 0.5,
}

# Review states of an item. "new" items are in the queue when above threshold.
STATUSES = ("new", "confirmed", "dismissed", "escalated")

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}
_TEXT = {"type": "text", "analyzer": "standard"}
_STORED_ONLY = {"type": "object", "enabled": False}

ITEMS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": ITEMS_MAPPING_VERSION},
    "properties": {
        "item_id": _KEYWORD,
        "post_key": _KEYWORD,
        "source": _KEYWORD,
        "source_kind": _KEYWORD,
        "post_id": _KEYWORD,
        "version": {"type": "integer"},
        "url": _KEYWORD,
        "thread_id": _KEYWORD,
        "thread_title": _TEXT,
        "author": {
            "properties": {"id": _KEYWORD, "name": _KEYWORD, "url": _KEYWORD}
        },
        "published_at": _DATE,
        "crawled_at": _DATE,
        "analyzed_at": _DATE,
        "indexed_at": _DATE,
        "language": _KEYWORD,
        "title": _TEXT,
        "text": _TEXT,
        # Diacritics-folded twin of title + text: "tre em" finds "trẻ em".
        "text_folded": _TEXT,
        "media": {
            "properties": {
                "url": _KEYWORD,
                "blob_ref": _KEYWORD,
                "sha256": _KEYWORD,
                "md5": _KEYWORD,
                "sha1": _KEYWORD,
                "pdq": _KEYWORD,
                "pdq_quality": {"type": "integer"},
                "phash": _KEYWORD,
                "dhash": _KEYWORD,
                "content_type": _KEYWORD,
                "size": {"type": "long"},
                "error": _KEYWORD,
            }
        },
        "media_count": {"type": "integer"},
        "snapshot_ref": _KEYWORD,
        "scores": {"properties": {c: {"type": "float"} for c in CATEGORIES}},
        "max_score": {"type": "float"},
        "top_category": _KEYWORD,
        "model_version": _KEYWORD,
        "rules_version": _KEYWORD,
        "rule_ids": _KEYWORD,
        "rule_hits": _STORED_ONLY,
        "matches": {
            "type": "nested",
            "properties": {
                "media_sha256": _KEYWORD,
                "bank": _KEYWORD,
                "list_version": _KEYWORD,
                "algorithm": _KEYWORD,
                "distance": {"type": "integer"},
                "entry_id": _KEYWORD,
                "category": _KEYWORD,
                "severity": {"type": "integer"},
                "source_list": _KEYWORD,
            },
        },
        "has_match": {"type": "boolean"},
        "match_severity": {"type": "integer"},
        "risk": {"type": "float"},
        "reasons": {"type": "text"},
        "status": _KEYWORD,
        "claim": {"properties": {"user": _KEYWORD, "expires_at": _DATE}},
        "decision": {
            "properties": {
                "status": _KEYWORD,
                "category": _KEYWORD,
                "severity": _KEYWORD,
                "user": _KEYWORD,
                "at": _DATE,
                "note": {"type": "text"},
            }
        },
        "notes": _STORED_ONLY,
        "reveals": _STORED_ONLY,
        # The whole analysed message, kept for evidence packs; never searched.
        "analysed": _STORED_ONLY,
    },
}

SETTINGS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": SETTINGS_MAPPING_VERSION},
    "properties": {
        "kind": _KEYWORD,
        "thresholds": {"properties": {c: {"type": "float"} for c in CATEGORIES}},
        "updated_at": _DATE,
        "updated_by": _KEYWORD,
    },
}

THRESHOLDS_DOC_ID = "thresholds"

# What crawlers published, per crawl job, source and UTC day: the items index only holds
# what passed the analyzer's recall floor, so "posts crawled" has to come from here.
CRAWL_STATS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"mapping_version": CRAWL_STATS_MAPPING_VERSION},
    "properties": {
        "crawl_job_id": _KEYWORD,
        "source": _KEYWORD,
        "day": {"type": "date", "format": "strict_date"},
        "published": {"type": "long"},
        "recorded_at": _DATE,
    },
}


def crawl_stats_doc_id(crawl_job_id: str, source: str, day: str) -> str:
    """One document per job, source and day: a retried write replaces, never adds."""
    return f"{crawl_job_id}:{source}:{day}"


def items_alias(settings: Settings) -> str:
    return settings.index_name("items")


def settings_alias(settings: Settings) -> str:
    return settings.index_name("settings")


def crawl_stats_alias(settings: Settings) -> str:
    return settings.index_name("crawl-stats")


def ensure_versioned_index(
    client: Elasticsearch, alias: str, version: int, mapping: dict[str, Any], shards: int
) -> None:
    """Create ``<alias>-v<version>`` with its template and point the alias at it."""
    index = f"{alias}-v{version}"
    client.indices.put_index_template(
        name=f"{alias}-v{version}",
        index_patterns=[f"{alias}-v{version}"],
        template={
            "settings": {"number_of_shards": shards, "number_of_replicas": 0,
                         "refresh_interval": "1s"},
            "mappings": mapping,
        },
        priority=100 + version,
    )
    if not client.indices.exists(index=index):
        try:
            client.indices.create(index=index)
        except ApiError as exc:
            if exc.status_code != 400 or "resource_already_exists" not in str(exc):
                raise
    if not client.indices.exists_alias(name=alias, index=index):
        client.indices.update_aliases(
            actions=[{"add": {"index": index, "alias": alias, "is_write_index": True}}]
        )


def ensure_indices(client: Elasticsearch, settings: Settings) -> None:
    """Idempotently create the items, settings and crawl-stats indices behind their aliases."""
    ensure_versioned_index(client, items_alias(settings), ITEMS_MAPPING_VERSION,
                            ITEMS_MAPPING, shards=3)
    ensure_versioned_index(client, settings_alias(settings), SETTINGS_MAPPING_VERSION,
                            SETTINGS_MAPPING, shards=1)
    ensure_versioned_index(client, crawl_stats_alias(settings), CRAWL_STATS_MAPPING_VERSION,
                            CRAWL_STATS_MAPPING, shards=1)


def item_document(analysed: AnalysedPost, indexed_at: datetime | None = None) -> dict[str, Any]:
    """The ``items`` document for one analysed post version (a new item starts as 'new')."""
    post, text = analysed.post, analysed.text
    scores = {c: float(text.scores.get(c, 0.0)) for c in CATEGORIES}
    top_category = max(scores, key=scores.get) if scores else None
    hashes_by_sha = {m.sha256: m for m in analysed.media if m.sha256}
    media = []
    for item in post.media:
        hashed = hashes_by_sha.get(item.sha256) if item.sha256 else None
        media.append({
            "url": item.url, "blob_ref": item.blob_ref, "sha256": item.sha256,
            "md5": item.md5, "sha1": item.sha1, "content_type": item.content_type,
            "size": item.size, "error": item.error or (hashed.error if hashed else None),
            "pdq": hashed.pdq if hashed else None,
            "pdq_quality": hashed.pdq_quality if hashed else None,
            "phash": hashed.phash if hashed else None,
            "dhash": hashed.dhash if hashed else None,
        })
    severities = [m.severity for m in analysed.matches if m.severity is not None]
    return {
        "item_id": item_id(post.source, post.post_id, post.version),
        "post_key": post.key,
        "source": post.source,
        "source_kind": post.source_kind,
        "post_id": post.post_id,
        "version": post.version,
        "url": post.url,
        "thread_id": post.thread_id,
        "thread_title": post.thread_title,
        "author": post.author.model_dump() if post.author else None,
        "published_at": post.published_at,
        "crawled_at": post.provenance.fetched_at,
        "analyzed_at": analysed.analyzed_at,
        "indexed_at": indexed_at or utcnow(),
        "language": text.language,
        "title": post.title,
        "text": post.text,
        "text_folded": fold(" ".join(filter(None, [post.title, post.text]))),
        "media": media,
        "media_count": len(post.media),
        "snapshot_ref": post.snapshot_ref,
        "scores": scores,
        "max_score": max(scores.values()) if scores else 0.0,
        "top_category": top_category,
        "model_version": text.model_version,
        "rules_version": text.rules_version,
        "rule_ids": sorted({hit.rule_id for hit in text.rule_hits}),
        "rule_hits": [hit.model_dump() for hit in text.rule_hits],
        "matches": [m.model_dump() for m in analysed.matches],
        "has_match": bool(analysed.matches),
        "match_severity": max(severities) if severities else (1 if analysed.matches else 0),
        "risk": analysed.risk,
        "reasons": analysed.reasons,
        "status": "new",
        "analysed": analysed.model_dump(mode="json"),
    }


def get_thresholds(client: Elasticsearch, settings: Settings) -> dict[str, float]:
    """The current per-category thresholds (defaults for categories never set)."""
    try:
        doc = client.get(index=settings_alias(settings), id=THRESHOLDS_DOC_ID)
        stored = doc["_source"].get("thresholds", {})
    except NotFoundError:
        stored = {}
    return {c: float(stored.get(c, DEFAULT_THRESHOLDS[c])) for c in CATEGORIES}


def put_thresholds(
    client: Elasticsearch, settings: Settings, thresholds: dict[str, float], user: str
) -> dict[str, float]:
    unknown = set(thresholds) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
    for category, value in thresholds.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold for {category} must be between 0 and 1, got {value}")
    merged = {**get_thresholds(client, settings), **thresholds}
    client.index(
        index=settings_alias(settings), id=THRESHOLDS_DOC_ID, refresh="wait_for",
        document={"kind": "thresholds", "thresholds": merged, "updated_at": utcnow(),
                  "updated_by": user},
    )
    return merged


def queue_filter(thresholds: dict[str, float]) -> dict[str, Any]:
    """The review queue as a query: any category at or over its threshold, or a bank match."""
    above = [{"range": {f"scores.{c}": {"gte": t}}} for c, t in thresholds.items()]
    return {"bool": {"should": [*above, {"term": {"has_match": True}}],
                     "minimum_should_match": 1}}


QUEUE_SORT: list[dict[str, Any]] = [
    {"match_severity": {"order": "desc"}},
    {"risk": {"order": "desc"}},
    {"crawled_at": {"order": "asc"}},
    {"item_id": {"order": "asc"}},  # unique tie-breaker for search_after
]
