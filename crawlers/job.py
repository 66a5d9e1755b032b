"""One crawl job in its own process: ``python -m crawlers.job SPEC.json``.

Twisted's reactor cannot be restarted, so every crawl (a CLI call, a scheduler tick, a
test) runs in a fresh process. The spec names the sources files, the source ids, the
harmwatch settings and any Scrapy overrides; the per-source summaries are written as
JSON to the spec's ``summary_path`` for the parent to print or check.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

from crawlers.extensions import CrawlSummary
from harmwatch.kafka import ensure_topics
from harmwatch.settings import load_settings
from harmwatch.sources import load_all


def run(spec: dict[str, Any]) -> list[CrawlSummary]:
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from crawlers import settings as project_settings
    from crawlers.spiders import SPIDERS

    settings = load_settings(**spec["settings"])
    sources = load_all([Path(p) for p in spec["sources_files"]])
    ensure_topics(settings)
    base = ScrapySettings()
    base.setmodule(project_settings, priority="project")
    base.update(spec.get("scrapy", {}), priority="cmdline")
    process = CrawlerProcess(base)
    job_id = spec.get("job_id") or uuid.uuid4().hex
    crawlers = []
    for index, source_id in enumerate(spec["source_ids"]):
        source = sources[source_id]
        per_source = base.copy()
        per_source.update(project_settings.crawler_settings(source, settings, job_id),
                          priority="spider")
        per_source.update(spec.get("scrapy", {}), priority="cmdline")
        crawler = Crawler(SPIDERS[source.kind], per_source, init_reactor=index == 0)
        crawlers.append((source_id, crawler))
        process.crawl(crawler, source=source)
    process.start()
    return [CrawlSummary.from_stats(sid, crawler.stats.get_stats() if crawler.stats else {})
            for sid, crawler in crawlers]


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    summaries = run(spec)
    Path(spec["summary_path"]).write_text(
        json.dumps([s.as_dict() for s in summaries], ensure_ascii=False), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
