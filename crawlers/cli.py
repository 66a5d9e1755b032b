"""``harmwatch crawl``: crawl one or more sources, all enabled ones, or on a schedule."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from harmwatch.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "crawl", help="crawl sources from the sources file(s) into Kafka (posts.raw)"
    )
    parser.add_argument("sources", nargs="*", metavar="SOURCE", help="source ids to crawl")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="crawl every enabled source once")
    which.add_argument("--schedule", action="store_true",
                       help="keep running, crawling each enabled source at its interval")
    which.add_argument("--list", action="store_true", help="list the sources and exit")
    parser.add_argument("--sources-file", type=Path, action="append", dest="files",
                        help="sources file (repeatable); default: crawlers/sources.yaml, "
                             "crawlers/sources.demo.yaml and <var_dir>/sources.yaml (the "
                             "review UI's), those that exist")
    parser.add_argument("--summary-json", type=Path, default=None, metavar="FILE",
                        help="also write the crawl summaries to FILE as JSON (a list, one "
                             "object per source; docs/formats/reports.md), for programs that "
                             "start crawls, such as the review UI's \"run now\"")
    parser.add_argument("--republish", action="store_true",
                        help="send unchanged posts again at their current version "
                             "(after resetting Kafka or the index; idempotent downstream)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harmwatch.sources import SourceError, default_paths, load_all

    # Resolved here, from the caller's directory: the crawl job runs from the checkout.
    files = ([path.expanduser().resolve() for path in args.files] if args.files
             else default_paths(get_settings().var_dir))
    try:
        sources = load_all(files)
    except SourceError as exc:
        print(f"harmwatch crawl: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for source in sources.values():
            state = "enabled" if source.enabled else "disabled"
            print(f"{source.id:24} {source.kind:9} {state:8} every {source.interval:.0f}s")
        return 0
    if args.schedule:
        return schedule(files, args.republish)
    ids = [s.id for s in sources.values() if s.enabled] if args.all else args.sources
    unknown = [i for i in ids if i not in sources]
    if unknown or not ids:
        known = ", ".join(sources) or "none"
        print(f"harmwatch crawl: unknown or missing source {', '.join(unknown) or '(none given)'}"
              f" (known: {known})", file=sys.stderr)
        return 2
    summary_json = args.summary_json.expanduser().resolve() if args.summary_json else None
    return crawl_once(ids, files, args.republish, summary_json)


def crawl_once(ids: list[str], files: list[Path], republish: bool = False,
               summary_json: Path | None = None) -> int:
    """Crawl and print the summary; non-zero if the job failed or posts went unpublished.

    ``summary_json`` receives the same summaries as JSON, written atomically, so a caller
    reads them as data instead of parsing the printed lines.
    """
    from crawlers.runner import CrawlJobError, crawl

    print(f"Crawling {', '.join(ids)} …", file=sys.stderr, flush=True)
    try:
        summaries = crawl(ids, settings=get_settings(), sources_files=files,
                          scrapy={"HARMWATCH_REPUBLISH": republish})
    except CrawlJobError as exc:
        print(f"harmwatch crawl: {exc}", file=sys.stderr)
        return 1
    for summary in summaries:
        print(summary.line(), flush=True)
    if summary_json:
        write_summaries(summary_json, [summary.as_dict() for summary in summaries])
    return 1 if any(s.publish_failed for s in summaries) else 0


def write_summaries(path: Path, summaries: list[dict]) -> None:
    """Write the summaries as a JSON list, replacing ``path`` atomically (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summaries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def due_sources(sources: dict, next_due: dict[str, float], now: float) -> list[str]:
    """Enabled sources whose next run time has come (never run counts as due)."""
    return [s.id for s in sources.values() if s.enabled and next_due.get(s.id, 0.0) <= now]


def seconds_until_next(sources: dict, next_due: dict[str, float], now: float) -> float:
    """How long the scheduler may sleep: until the earliest enabled source is due."""
    times = [next_due.get(s.id, 0.0) for s in sources.values() if s.enabled]
    return max(1.0, min(times, default=now + 60.0) - now)


def schedule(files: list[Path], republish: bool = False) -> int:
    """Run each enabled source whenever its interval has passed; sources files are re-read
    each round, so edits apply without a restart (a broken edit keeps the last good set).
    Sources due together are crawled in one job; the next run of each is measured from
    the start of its last one."""
    from harmwatch.sources import SourceError, load_all

    next_due: dict[str, float] = {}
    sources = load_all(files)
    print(f"Scheduler: {sum(s.enabled for s in sources.values())} enabled sources",
          file=sys.stderr, flush=True)
    while True:
        try:
            sources = load_all(files)
        except SourceError as exc:
            print(f"harmwatch crawl: sources not reloaded: {exc}", file=sys.stderr)
        now = time.monotonic()
        due = due_sources(sources, next_due, now)
        if due:
            crawl_once(due, files, republish)
            for source_id in due:
                next_due[source_id] = now + sources[source_id].interval
        time.sleep(seconds_until_next(sources, next_due, time.monotonic()))
