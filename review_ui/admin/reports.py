"""Programme figures for the dashboard and the periodic report (docs/formats/reports.md).

Every figure is a count over the items index (flagged, decided, queued) except *crawled*,
which the items index cannot know — it holds only what passed the analyzer's recall
floor — so it is summed from the crawl-stats documents each crawl writes when it ends.
Days are UTC calendar days; a period is ``[start, end)``.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from harmwatch.contract import CATEGORIES, utcnow
from harmwatch.documents import crawl_stats_alias, get_thresholds, items_alias, queue_filter
from harmwatch.settings import Settings
from review_ui.errors import ReviewError

PERIODS = ("week", "month")
DECIDED = ("confirmed", "escalated", "dismissed")
RIGHT = ("confirmed", "escalated")
METRICS = ("crawled", "flagged", "confirmed", "dismissed")


def period_bounds(kind: str, anchor: date) -> tuple[date, date]:
    """The ISO week (Monday to Monday) or calendar month containing ``anchor``."""
    if kind == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return start, start + timedelta(days=7)
    if kind == "month":
        start = anchor.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    raise ReviewError(f"period must be one of {', '.join(PERIODS)}")


@dataclass
class Report:
    """The figures of one period; rows are ``{metric: count}`` keyed by day, category, source."""

    start: date
    end: date
    generated_at: datetime
    daily: dict[str, dict[str, int]] = field(default_factory=dict)
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    precision: dict[str, float | None] = field(default_factory=dict)
    queue_size: int = 0
    oldest_queued_at: str | None = None
    decision_hours: dict[str, float | None] = field(default_factory=dict)
    crawl_counts_available: bool = True

    @property
    def totals(self) -> dict[str, int]:
        return {m: sum(row.get(m, 0) for row in self.daily.values()) for m in METRICS}

    @property
    def oldest_age_hours(self) -> float | None:
        if not self.oldest_queued_at:
            return None
        oldest = datetime.fromisoformat(self.oldest_queued_at.replace("Z", "+00:00"))
        return round((self.generated_at - oldest).total_seconds() / 3600, 1)


def _days(start: date, end: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days)]


def _range(field_name: str, start: date, end: date) -> dict[str, Any]:
    return {"range": {field_name: {"gte": start.isoformat(), "lt": end.isoformat(),
                                   "format": "strict_date_optional_time"}}}


def _per_day(field_name: str, start: date, end: date) -> dict[str, Any]:
    return {"date_histogram": {"field": field_name, "calendar_interval": "day",
                               "format": "yyyy-MM-dd", "min_doc_count": 0,
                               "extended_bounds": {"min": start.isoformat(),
                                                   "max": (end - timedelta(days=1)).isoformat()}}}


def _terms(field_name: str) -> dict[str, Any]:
    return {"terms": {"field": field_name, "size": 1000}}


def _buckets(agg: dict[str, Any]) -> dict[str, int]:
    return {str(b.get("key_as_string", b["key"])): b["doc_count"] for b in agg["buckets"]}


def _status(*statuses: str) -> dict[str, Any]:
    return {"terms": {"decision.status": list(statuses)}}


def _es_figures(client: Elasticsearch, settings: Settings, start: date,
                end: date) -> dict[str, Any]:
    """One search: flagged by crawl day, decisions by decision day, split every way needed."""
    flagged = _range("crawled_at", start, end)
    decided = _range("decision.at", start, end)
    by = {"day_f": _per_day("crawled_at", start, end), "cat_f": _terms("top_category"),
          "src_f": _terms("source")}
    decision_aggs = {"day": _per_day("decision.at", start, end), "src": _terms("source"),
                     "top": _terms("top_category"), "cat": _terms("decision.category")}
    aggs = {
        "flagged": {"filter": flagged, "aggs": by},
        "confirmed": {"filter": {"bool": {"filter": [decided, _status("confirmed")]}},
                      "aggs": decision_aggs},
        "dismissed": {"filter": {"bool": {"filter": [decided, _status("dismissed")]}},
                      "aggs": decision_aggs},
        "right": {"filter": {"bool": {"filter": [decided, _status(*RIGHT)]}},
                  "aggs": {"top": _terms("top_category")}},
    }
    return client.search(index=items_alias(settings), size=0, aggs=aggs)["aggregations"]


def crawled_counts(client: Elasticsearch, settings: Settings, start: date,
                   end: date) -> tuple[Counter, Counter] | None:
    """(per day, per source) posts the crawlers published in the period, or None if unknown.

    From the documents each crawl writes when it ends (``harmwatch.documents``'
    crawl-stats index): a new version of an edited post counts as published again.
    """
    alias = crawl_stats_alias(settings)
    if not client.indices.exists_alias(name=alias):
        return None
    result = client.search(
        index=alias, size=0,
        query={"range": {"day": {"gte": start.isoformat(), "lt": end.isoformat()}}},
        aggs={"days": {"terms": {"field": "day", "size": 1000, "format": "yyyy-MM-dd"},
                       "aggs": {"published": {"sum": {"field": "published"}}}},
              "sources": {"terms": {"field": "source", "size": 10_000},
                          "aggs": {"published": {"sum": {"field": "published"}}}}})
    aggregations = result["aggregations"]
    days = Counter({b["key_as_string"]: int(b["published"]["value"])
                    for b in aggregations["days"]["buckets"]})
    sources = Counter({b["key"]: int(b["published"]["value"])
                       for b in aggregations["sources"]["buckets"]})
    return days, sources


def _queue(client: Elasticsearch, settings: Settings) -> tuple[int, str | None]:
    """Items waiting now under the current thresholds, and the oldest one's crawl time."""
    query = {"bool": {"filter": [queue_filter(get_thresholds(client, settings)),
                                 {"term": {"status": "new"}}]}}
    result = client.search(index=items_alias(settings), size=0, query=query, track_total_hits=True,
                           aggs={"oldest": {"min": {"field": "crawled_at"}}})
    oldest = result["aggregations"]["oldest"]
    return result["hits"]["total"]["value"], oldest.get("value_as_string")


def decision_delays(client: Elasticsearch, settings: Settings, start: date,
                    end: date) -> list[float]:
    """Hours from crawl to decision of every item decided in the period (paged; no scripts)."""
    query = {"bool": {"filter": [_range("decision.at", start, end), _status(*DECIDED)]}}
    hours, after = [], None
    while True:
        page = client.search(index=items_alias(settings), size=1000, query=query,
                             sort=[{"item_id": "asc"}], search_after=after,
                             source_includes=["crawled_at", "decision.at"])["hits"]["hits"]
        for hit in page:
            source = hit["_source"]
            crawled = _parse(source.get("crawled_at"))
            decided = _parse((source.get("decision") or {}).get("at"))
            if crawled and decided:
                hours.append((decided - crawled).total_seconds() / 3600)
        if len(page) < 1000:
            return hours
        after = page[-1]["sort"]


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _summary(hours: list[float]) -> dict[str, float | None]:
    if not hours:
        return {"count": 0, "median": None, "mean": None, "p90": None}
    ordered = sorted(hours)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {"count": len(hours), "median": round(statistics.median(ordered), 2),
            "mean": round(statistics.fmean(ordered), 2), "p90": round(p90, 2)}


def build(client: Elasticsearch, settings: Settings, start: date, end: date) -> Report:
    """All figures of ``[start, end)``."""
    if end <= start:
        raise ReviewError("the period must end after it starts")
    aggs = _es_figures(client, settings, start, end)
    crawled = crawled_counts(client, settings, start, end)
    crawl_days, crawl_sources = crawled or (Counter(), Counter())
    report = Report(start, end, utcnow(), crawl_counts_available=crawled is not None)
    flagged, confirmed, dismissed = aggs["flagged"], aggs["confirmed"], aggs["dismissed"]
    columns = {"flagged": _buckets(flagged["day_f"]), "confirmed": _buckets(confirmed["day"]),
               "dismissed": _buckets(dismissed["day"])}
    report.daily = {day: {"crawled": crawl_days.get(day, 0),
                          **{m: columns[m].get(day, 0) for m in columns}}
                    for day in _days(start, end)}
    report.by_category = _rows(CATEGORIES, {"flagged": _buckets(flagged["cat_f"]),
                                            "confirmed": _buckets(confirmed["cat"]),
                                            "dismissed": _buckets(dismissed["top"])})
    source_cols = {"crawled": dict(crawl_sources), "flagged": _buckets(flagged["src_f"]),
                   "confirmed": _buckets(confirmed["src"]), "dismissed": _buckets(dismissed["src"])}
    sources = sorted(set().union(*source_cols.values()))
    report.by_source = _rows(sources, source_cols)
    right, wrong = _buckets(aggs["right"]["top"]), _buckets(dismissed["top"])
    report.precision = {c: (right.get(c, 0) / (right.get(c, 0) + wrong.get(c, 0))
                            if right.get(c, 0) + wrong.get(c, 0) else None) for c in CATEGORIES}
    report.queue_size, report.oldest_queued_at = _queue(client, settings)
    report.decision_hours = _summary(decision_delays(client, settings, start, end))
    return report


def _rows(keys: Any, columns: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {key: {metric: values.get(key, 0) for metric, values in columns.items()}
            for key in keys}
