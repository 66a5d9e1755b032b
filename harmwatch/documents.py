"""The Elasticsearch documents shared by the indexer and the review UI.

This is the second half of the contract between stages (the first is
:mod:`harmwatch.contract`): the indexer writes ``items`` documents, the review UI reads
them and records analysts' claims and decisions on them, and admins store the
per-category thresholds in the ``settings`` index, which the queue query reads on every
request — so a threshold change needs no restart anywhere.

Indices are versioned behind aliases (``harmwatch-items`` → ``harmwatch-items-v1``). An
additive mapping change (a new field) is applied to the existing index in place by
:func:`ensure_versioned_index`; any other change creates ``-v2``, reindexes, and moves the
alias.

The default threshold of each category is not a constant here: it comes from the trained
text model's manifest (``<text_model_dir>/model.json``, see :func:`model_defaults`), so a
retrained model brings its own validated defaults; thresholds an admin saved override them.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from harmwatch.contract import CATEGORIES, AnalysedPost, item_id, utcnow
from harmwatch.search import fold
from harmwatch.settings import ConfigError, Settings

log = logging.getLogger(__name__)

ITEMS_MAPPING_VERSION = 1
SETTINGS_MAPPING_VERSION = 1
CRAWL_STATS_MAPPING_VERSION = 1

# The threshold of a category the model's manifest gives no default for (models trained
# before per-category defaults were written into model.json, or no model on this host).
FALLBACK_THRESHOLD = 0.5
MODEL_MANIFEST = "model.json"

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
        # On the self-harm path (TextAnalysis.urgent): always queued, first. Added to
        # mapping version 1 in place (additive); documents indexed before lack it.
        "urgent": {"type": "boolean"},
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
        # Items and pages read but not published, per reason (duplicate, no_text, ...):
        # the reasons are open-ended, their counts always longs.
        "skipped": {"type": "object", "dynamic": True},
        "skipped_total": {"type": "long"},
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


class MappingConflict(RuntimeError):
    """The code's mapping changes an existing field: not additive, so it needs a new version."""


def ensure_versioned_index(
    client: Elasticsearch, alias: str, version: int, mapping: dict[str, Any], shards: int
) -> None:
    """Create ``<alias>-v<version>`` with its template and point the alias at it.

    When the index already exists, the mapping's properties are put on it: Elasticsearch
    adds the fields it lacks and leaves identical ones alone, so an additive change (a new
    field) reaches an index created by an older release without a reindex. A change to an
    existing field is refused with :class:`MappingConflict`: that takes ``-v<version+1>``.
    """
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
    created = False
    if not client.indices.exists(index=index):
        try:
            client.indices.create(index=index)
            created = True
        except ApiError as exc:
            if exc.status_code != 400 or "resource_already_exists" not in str(exc):
                raise
    if not created:
        _apply_additive_mapping(client, index, mapping)
    if not client.indices.exists_alias(name=alias, index=index):
        client.indices.update_aliases(
            actions=[{"add": {"index": index, "alias": alias, "is_write_index": True}}]
        )


def _apply_additive_mapping(client: Elasticsearch, index: str, mapping: dict[str, Any]) -> None:
    """Put ``mapping``'s properties (and ``_meta``, ``dynamic``) on an existing index."""
    extra = {key: mapping[key] for key in ("dynamic", "_meta") if key in mapping}
    try:
        client.indices.put_mapping(index=index, properties=mapping["properties"], **extra)
    except ApiError as exc:
        if exc.status_code != 400:
            raise
        raise MappingConflict(
            f"{index}: the mapping in the code changes a field the index already has "
            f"({exc.message}: {_reason(exc)}). Only additive changes are applied in place; "
            f"raise the mapping version to create the next index and reindex into it.") from exc


def _reason(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str((body.get("error") or {}).get("reason") or exc)


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
        "urgent": bool(text.urgent),
        "risk": analysed.risk,
        "reasons": analysed.reasons,
        "status": "new",
        "analysed": analysed.model_dump(mode="json"),
    }


@dataclass(frozen=True)
class ModelDefault:
    """One category's default threshold from the model manifest, with its validation figures.

    ``precision`` and ``recall`` are on the model's validation split at ``threshold``;
    ``target`` is the validation recall the threshold was chosen to reach. ``from_model``
    is False when the manifest gives nothing for the category (``threshold`` is then
    :data:`FALLBACK_THRESHOLD` and the figures are None).
    """

    threshold: float
    precision: float | None = None
    recall: float | None = None
    target: float | None = None
    from_model: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_defaults_lock = threading.Lock()
_defaults_cache: dict[Path, tuple[tuple[int, int], dict[str, ModelDefault]]] = {}
_missing_warned: set[Path] = set()


def model_defaults(settings: Settings) -> dict[str, ModelDefault]:
    """Per category, the default threshold the text model's manifest gives.

    Read from ``<text_model_dir>/model.json`` (its ``thresholds``: ``{category:
    {"threshold", "precision", "recall", "target"}}``) and re-read when the file changes,
    so a retrained model's defaults apply without a restart. A missing file, or a manifest
    without ``thresholds``, gives :data:`FALLBACK_THRESHOLD` for every category; a file
    that is unreadable or malformed raises :class:`ConfigError` naming it.
    """
    path = Path(settings.text_model_dir) / MODEL_MANIFEST
    try:
        stat = path.stat()
    except FileNotFoundError:
        return _fallback_defaults(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the text model's manifest ({exc}); fix the "
                          "file or HARMWATCH_TEXT_MODEL_DIR.") from exc
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _defaults_lock:
        cached = _defaults_cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    defaults = _read_defaults(path)
    with _defaults_lock:
        _defaults_cache[path] = (stamp, defaults)
    return defaults


def _fallback_defaults(path: Path) -> dict[str, ModelDefault]:
    with _defaults_lock:
        first = path not in _missing_warned
        _missing_warned.add(path)
    if first:
        log.warning("no text model manifest at %s: every category's default threshold is %s",
                    path, FALLBACK_THRESHOLD)
    return {c: ModelDefault(FALLBACK_THRESHOLD) for c in CATEGORIES}


def _read_defaults(path: Path) -> dict[str, ModelDefault]:
    fix = "fix the file or HARMWATCH_TEXT_MODEL_DIR"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the text model's manifest ({exc}); {fix}.") \
            from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: the text model's manifest is not valid JSON ({exc}); "
                          f"{fix}.") from exc
    if not isinstance(manifest, dict):
        raise ConfigError(f"{path}: the text model's manifest is not a JSON object; {fix}.")
    chosen = manifest.get("thresholds") or {}
    if not isinstance(chosen, dict):
        raise ConfigError(f"{path}: \"thresholds\" must map categories to objects; {fix}.")
    defaults = {}
    for category in CATEGORIES:
        entry = chosen.get(category)
        if entry is None:
            defaults[category] = ModelDefault(FALLBACK_THRESHOLD)
            continue
        if not isinstance(entry, dict) or not _is_share(entry.get("threshold")):
            raise ConfigError(f"{path}: thresholds.{category}.threshold must be a number "
                              f"between 0 and 1; {fix}.")
        figures = {k: float(entry[k]) if _is_share(entry.get(k)) else None
                   for k in ("precision", "recall", "target")}
        defaults[category] = ModelDefault(float(entry["threshold"]), **figures, from_model=True)
    return defaults


def _is_share(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0.0 <= float(value) <= 1.0)


def default_thresholds(settings: Settings) -> dict[str, float]:
    """The model's default threshold per category (what applies until an admin saves one)."""
    return {c: d.threshold for c, d in model_defaults(settings).items()}


def stored_thresholds(client: Elasticsearch, settings: Settings) -> dict[str, float]:
    """The thresholds admins saved (categories never saved are absent)."""
    try:
        doc = client.get(index=settings_alias(settings), id=THRESHOLDS_DOC_ID)
        stored = doc["_source"].get("thresholds") or {}
    except NotFoundError:
        stored = {}
    return {c: float(stored[c]) for c in CATEGORIES if stored.get(c) is not None}


def get_thresholds(client: Elasticsearch, settings: Settings) -> dict[str, float]:
    """The current per-category thresholds: the admins' where saved, else the model's default."""
    return {**default_thresholds(settings), **stored_thresholds(client, settings)}


def put_thresholds(
    client: Elasticsearch, settings: Settings, thresholds: dict[str, float], user: str
) -> dict[str, float]:
    """Save admin thresholds for some categories; returns every category's current threshold.

    Only the categories an admin set are stored: the others keep following the model's
    defaults (a retrained model's new defaults reach them).
    """
    unknown = set(thresholds) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
    for category, value in thresholds.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold for {category} must be between 0 and 1, got {value}")
    stored = {**stored_thresholds(client, settings), **thresholds}
    client.index(
        index=settings_alias(settings), id=THRESHOLDS_DOC_ID, refresh="wait_for",
        document={"kind": "thresholds", "thresholds": stored, "updated_at": utcnow(),
                  "updated_by": user},
    )
    return {**default_thresholds(settings), **stored}


URGENT: dict[str, Any] = {"term": {"urgent": True}}


def queue_filter(thresholds: dict[str, float]) -> dict[str, Any]:
    """The review queue as a query: any category at or over its threshold, a bank match, or
    an urgent (self-harm path) item, whatever the thresholds."""
    above = [{"range": {f"scores.{c}": {"gte": t}}} for c, t in thresholds.items()]
    return {"bool": {"should": [*above, {"term": {"has_match": True}}, URGENT],
                     "minimum_should_match": 1}}


QUEUE_SORT: list[dict[str, Any]] = [
    # Urgent first. Items indexed before the field existed sort as not urgent (0), not
    # last; unmapped_type keeps the sort valid on an index not yet upgraded.
    {"urgent": {"order": "desc", "missing": 0, "unmapped_type": "boolean"}},
    {"match_severity": {"order": "desc"}},
    {"risk": {"order": "desc"}},
    {"crawled_at": {"order": "asc"}},
    {"item_id": {"order": "asc"}},  # unique tie-breaker for search_after
]
