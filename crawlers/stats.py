"""What each crawl job published, per source and UTC day, written to Elasticsearch.

The admin dashboard's "posts crawled" figure cannot come from the items index, which only
holds what passed the analyzer's recall floor; and the review UI must not read the
crawler's own state files (they may not even be on its host). So at the end of each
source's crawl the counts go to the ``<prefix>-crawl-stats`` index, one document per job,
source and day under a fixed id, so a retried write replaces rather than adds. If
Elasticsearch is down, the counts wait in ``crawl-state/pending-stats/`` and go with the
next crawl's.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, TransportError

from crawlers.items import SKIP_PREFIX
from crawlers.state import state_dir
from harmwatch.contract import utcnow
from harmwatch.documents import (
    CRAWL_STATS_MAPPING,
    CRAWL_STATS_MAPPING_VERSION,
    crawl_stats_alias,
    crawl_stats_doc_id,
    ensure_versioned_index,
)
from harmwatch.search import es_client
from harmwatch.settings import Settings

logger = logging.getLogger(__name__)


# Scrapy's own stats of requests it filtered, under the reason the summary gives them.
_SCRAPY_SKIPS = {"offsite/filtered": "offsite", "dupefilter/filtered": "duplicate_page",
                 "harmwatch/ssrf_blocked": "off_allow_list"}


def skipped_counts(stats: dict[str, Any]) -> dict[str, int]:
    """What a crawl read (or was led to) but did not publish, per reason."""
    skipped = {key.removeprefix(SKIP_PREFIX): int(value) for key, value in stats.items()
               if key.startswith(SKIP_PREFIX) and value}
    for key, reason in _SCRAPY_SKIPS.items():
        if stats.get(key):
            skipped[reason] = skipped.get(reason, 0) + int(stats[key])
    return dict(sorted(skipped.items()))


def record_published(settings: Settings, crawl_job_id: str, source: str,
                     per_day: Counter[str], skipped: dict[str, int] | None = None) -> bool:
    """Write this job's counts for ``source`` (and any left pending); False if they wait.

    What was skipped, and why, goes on the document of the day the crawl ended (one is
    written for that day even when nothing was published, so skips are never lost).
    """
    pending = _pending_dir(settings)
    today = utcnow().date().isoformat()
    if per_day or skipped:
        pending.mkdir(parents=True, exist_ok=True)
        days = dict(per_day)
        if skipped:
            days.setdefault(today, 0)
        docs = [{"crawl_job_id": crawl_job_id, "source": source, "day": day,
                 "published": count, "recorded_at": utcnow().isoformat(),
                 **({"skipped": skipped, "skipped_total": sum(skipped.values())}
                    if skipped and day == today else {})}
                for day, count in sorted(days.items())]
        (pending / f"{crawl_job_id}-{source}.json").write_text(json.dumps(docs),
                                                               encoding="utf-8")
    return flush_pending(settings)


def flush_pending(settings: Settings) -> bool:
    """Send every waiting file of counts; True when none is left waiting."""
    files = sorted(_pending_dir(settings).glob("*.json"))
    if not files:
        return True
    client = es_client(settings)
    try:
        ensure_versioned_index(client, crawl_stats_alias(settings), CRAWL_STATS_MAPPING_VERSION,
                               CRAWL_STATS_MAPPING, shards=1)
        for path in files:
            for doc in json.loads(path.read_text(encoding="utf-8")):
                client.index(index=crawl_stats_alias(settings), document=doc,
                             id=crawl_stats_doc_id(doc["crawl_job_id"], doc["source"],
                                                   doc["day"]))
            path.unlink()
    except (ApiError, TransportError) as exc:
        logger.warning("crawl counts not written to Elasticsearch (%s); %d file(s) wait in %s "
                       "and go with the next crawl", exc, len(files), _pending_dir(settings))
        return False
    finally:
        client.close()
    return True


def _pending_dir(settings: Settings) -> Path:
    return state_dir(settings) / "pending-stats"
