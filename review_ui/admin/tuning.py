"""Threshold tuning from analysts' decisions: precision, recall, histograms and previews.

Thresholds apply at query time (docs/architecture.md), so everything here is a count
over the items index. For one category, an item is a *positive* when an analyst
confirmed or escalated it with that category, and a *negative* when it was dismissed;
items confirmed under another category say nothing about this one and are left out.
Histograms use 0.01-wide buckets (aggregations, no scripts); the figures shown for a
chosen threshold are exact ``range`` counts, the same query the queue runs. Each
category's model default (``harmwatch.documents.model_defaults``: chosen on the model's
validation split, with its precision and recall there) is shown beside these figures,
which come from this programme's own decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from harmwatch.contract import CATEGORIES
from harmwatch.documents import get_thresholds, items_alias, model_defaults, queue_filter
from harmwatch.settings import Settings
from review_ui.errors import ReviewError

BUCKET = 0.01
# Scores are stored as float32 (0.29 becomes 0.28999999...); shifting bucket edges down a
# hair puts such a score in the bucket of the threshold that a ``gte`` query counts it at.
BUCKET_OFFSET = -0.00001
STEPS = 100  # thresholds 0.00, 0.01, ... 1.00
WINDOWS_DAYS = (7, 30)
POSITIVE_STATUSES = ("confirmed", "escalated")


class TuningError(ReviewError):
    """A category or threshold that cannot be tuned (the UI answers 400 with the message)."""


def check(category: str, threshold: float | None = None) -> None:
    if category not in CATEGORIES:
        raise TuningError(f"unknown category {category!r}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise TuningError("a threshold lies between 0 and 1")


def positive(category: str) -> dict[str, Any]:
    return {"bool": {"filter": [{"terms": {"decision.status": list(POSITIVE_STATUSES)}},
                                {"term": {"decision.category": category}}]}}


NEGATIVE: dict[str, Any] = {"term": {"decision.status": "dismissed"}}


def _at_least(category: str, threshold: float) -> dict[str, Any]:
    return {"range": {f"scores.{category}": {"gte": threshold}}}


@dataclass
class Curve:
    """Per-bucket counts of positives and negatives, and the curve derived from them."""

    category: str
    positives: list[int]
    negatives: list[int]
    thresholds: list[float] = field(default_factory=list)
    precision: list[float | None] = field(default_factory=list)
    recall: list[float | None] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return sum(self.positives) + sum(self.negatives)


def _histogram(category: str) -> dict[str, Any]:
    return {"histogram": {"field": f"scores.{category}", "interval": BUCKET, "offset": BUCKET_OFFSET,
                          "min_doc_count": 0,
                          "extended_bounds": {"min": 0.0, "max": 1.0}}}


def _bucket_counts(buckets: list[dict[str, Any]]) -> list[int]:
    counts = [0] * (STEPS + 1)
    for bucket in buckets:
        index = min(STEPS, max(0, round(bucket["key"] / BUCKET)))
        counts[index] += bucket["doc_count"]
    return counts


def curve(client: Elasticsearch, settings: Settings, category: str) -> Curve:
    """Score histograms of positives and negatives, and precision/recall at each 0.01 step."""
    check(category)
    result = client.search(index=items_alias(settings), size=0, aggs={
        "pos": {"filter": positive(category), "aggs": {"h": _histogram(category)}},
        "neg": {"filter": NEGATIVE, "aggs": {"h": _histogram(category)}},
    })["aggregations"]
    data = Curve(category, _bucket_counts(result["pos"]["h"]["buckets"]),
                 _bucket_counts(result["neg"]["h"]["buckets"]))
    total_pos = sum(data.positives)
    tp = fp = 0
    points = []
    for step in range(STEPS, -1, -1):  # cumulative from the top: counts at score >= step
        tp, fp = tp + data.positives[step], fp + data.negatives[step]
        points.append((step * BUCKET, tp, fp))
    for threshold, tp, fp in reversed(points):
        data.thresholds.append(round(threshold, 2))
        data.precision.append(tp / (tp + fp) if tp + fp else None)
        data.recall.append(tp / total_pos if total_pos else None)
    return data


def decided_counts(client: Elasticsearch, settings: Settings) -> dict[str, int]:
    """Per category, how many decisions its curve rests on (one search for all)."""
    filters = {c: {"bool": {"should": [positive(c), NEGATIVE], "minimum_should_match": 1}}
               for c in CATEGORIES}
    result = client.search(index=items_alias(settings), size=0,
                           aggs={"d": {"filters": {"filters": filters}}})["aggregations"]
    return {c: bucket["doc_count"] for c, bucket in result["d"]["buckets"].items()}


@dataclass
class Preview:
    """What a candidate threshold would do, beside what the current one does."""

    category: str
    current: float
    candidate: float
    queue_now: int  # items waiting (status new) in the queue, all time
    queue_candidate: int
    windows: dict[int, dict[str, int]]  # days -> {"current": n, "candidate": n}
    precision_current: float | None
    precision_candidate: float | None
    recall_current: float | None
    recall_candidate: float | None
    decided_above_candidate: int
    model_default: float | None = None  # the text model's default (model.json)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "windows": {str(k): v for k, v in self.windows.items()}}


def _queue_count(client: Elasticsearch, settings: Settings, thresholds: dict[str, float],
                 days: int | None) -> int:
    """Items the queue would show (status new), optionally crawled in the last ``days``."""
    filters: list[dict[str, Any]] = [queue_filter(thresholds), {"term": {"status": "new"}}]
    if days is not None:
        filters.append({"range": {"crawled_at": {"gte": f"now-{days}d"}}})
    return client.count(index=items_alias(settings), query={"bool": {"filter": filters}})["count"]


def _quality(client: Elasticsearch, settings: Settings, category: str,
             threshold: float) -> tuple[float | None, float | None, int]:
    """(precision, recall, decided items above) at one threshold, from exact counts."""
    result = client.search(index=items_alias(settings), size=0, aggs={
        "tp": {"filter": {"bool": {"filter": [positive(category), _at_least(category, threshold)]}}},
        "fp": {"filter": {"bool": {"filter": [NEGATIVE, _at_least(category, threshold)]}}},
        "pos": {"filter": positive(category)},
    })["aggregations"]
    tp, fp, pos = result["tp"]["doc_count"], result["fp"]["doc_count"], result["pos"]["doc_count"]
    return (tp / (tp + fp) if tp + fp else None, tp / pos if pos else None, tp + fp)


def preview(client: Elasticsearch, settings: Settings, category: str,
            candidate: float) -> Preview:
    """Queue sizes and expected precision if ``category`` had threshold ``candidate``."""
    check(category, candidate)
    current = get_thresholds(client, settings)
    proposed = {**current, category: candidate}
    windows = {days: {"current": _queue_count(client, settings, current, days),
                      "candidate": _queue_count(client, settings, proposed, days)}
               for days in WINDOWS_DAYS}
    p_now, r_now, _ = _quality(client, settings, category, current[category])
    p_new, r_new, decided = _quality(client, settings, category, candidate)
    return Preview(category, current[category], candidate,
                   _queue_count(client, settings, current, None),
                   _queue_count(client, settings, proposed, None), windows,
                   p_now, p_new, r_now, r_new, decided,
                   model_defaults(settings)[category].threshold)
