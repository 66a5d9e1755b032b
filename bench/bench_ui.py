"""Review UI latency: p50/p95 of the queue and item pages, many flagged items, 20 users.

One command::

    .venv/bin/python -m bench.bench_ui                 # 1,000,000 items, 20 users, 60 s
    .venv/bin/python -m bench.bench_ui --docs 200000 --duration 30

1. Loads ``--docs`` synthetic flagged items into ``<prefix>-items`` (default prefix
   ``bench-ui``, its own indices) unless that many are already there. Documents are
   built from one real ``item_document`` (the indexer's function) and varied per item;
   the loader writes with the bulk API from two threads, with refresh off and no
   replicas during the load, then refreshes once. The stored-only ``analysed`` copy is
   left out to keep the load to the disk and time this shared machine has.
2. Starts ``harmwatch ui`` (``--workers`` uvicorn processes, default 1) on 127.0.0.1.
3. Signs in ``--users`` analysts, each running a loop for ``--duration`` seconds (after a
   warm-up): open the queue (first page, a later page by search_after cursor, or a
   diacritics-free full-text search), then one item from it. Every item view is audited
   (the hash chain), as in production.
4. Prints p50/p95/p99 per page kind and appends them to ``bench/RESULTS.md``.

Only 127.0.0.1 is contacted. Requests and time are bounded (``--max-requests``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from elasticsearch import helpers

from harmwatch.contract import CATEGORIES
from harmwatch.documents import ensure_indices, items_alias
from harmwatch.search import es_client, fold
from harmwatch.settings import Settings, load_settings
from review_ui.accounts import ensure_user
from review_ui.samples import sample_document

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PASSWORD = "bench-password-123"
WORDS = ("trẻ em", "bắt nạt", "gặp riêng", "đừng nói với bố mẹ", "Đà Nẵng", "việc nhẹ lương cao",
         "meet me", "secret", "school", "photo", "tự làm đau", "online", "forum", "game")
SEARCHES = ("tre em", "bat nat", "da nang", "secret photo", "gap rieng", "luong cao")


def _texts(pool: int, rng: random.Random) -> list[tuple[str, str]]:
    texts = []
    for _ in range(pool):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        texts.append((text, fold(text)))
    return texts


def generate(count: int, seed: int = 7):
    """``count`` varied item documents (all above a default threshold or bank-matched)."""
    rng = random.Random(seed)
    base = sample_document(0)
    base.pop("analysed", None)
    texts = _texts(2000, rng)
    now = datetime.now(UTC)
    for i in range(count):
        top = CATEGORIES[i % len(CATEGORIES)]
        scores = {c: round(rng.random() * 0.4, 3) for c in CATEGORIES}
        scores[top] = round(0.6 + rng.random() * 0.4, 3)
        text, folded = texts[i % len(texts)]
        matched = rng.random() < 0.02
        crawled = (now - timedelta(seconds=rng.randint(0, 30 * 86400))).isoformat()
        item_id = hashlib.sha1(str(i).encode()).hexdigest()
        author = f"user{rng.randint(0, 50_000)}"
        yield {
            "_index": None, "_id": item_id,
            "_source": {
                **base, "item_id": item_id, "post_id": str(i), "post_key": f"s{i % 20}:{i}",
                "source": f"source-{i % 20}", "url": f"https://forum{i % 20}.example.org/t/{i}",
                "author": {"id": author, "name": author, "url": None},
                "language": "vi" if i % 3 else "en", "text": text, "text_folded": folded,
                "title": None, "scores": scores, "max_score": scores[top], "top_category": top,
                "risk": scores[top], "crawled_at": crawled, "published_at": crawled,
                "analyzed_at": crawled, "indexed_at": crawled,
                "has_match": matched, "match_severity": rng.randint(1, 4) if matched else 0,
                "matches": base["matches"] if matched else [],
                "status": "new" if rng.random() < 0.95 else rng.choice(
                    ["confirmed", "dismissed", "escalated"]),
                "rule_hits": [], "rule_ids": [],
            },
        }


def load(settings: Settings, count: int) -> float | None:
    """Bulk-load ``count`` items unless present; returns the seconds taken (None: skipped)."""
    client = es_client(settings, request_timeout=120)
    ensure_indices(client, settings)
    alias = items_alias(settings)
    client.indices.refresh(index=alias)
    present = client.count(index=alias)["count"]
    if present >= count:
        print(f"{present:,} items already in {alias}; not reloading")
        return None
    print(f"loading {count:,} items into {alias} ...", flush=True)
    client.indices.put_settings(index=alias, settings={"refresh_interval": "-1",
                                                       "number_of_replicas": 0})
    started, done = time.monotonic(), 0
    actions = ({**a, "_index": alias} for a in generate(count))
    try:
        for ok, _info in helpers.parallel_bulk(client, actions, thread_count=2, chunk_size=2000,
                                              queue_size=4, raise_on_error=True):
            done += ok
            if done % 100_000 == 0:
                rate = done / (time.monotonic() - started)
                print(f"  {done:,} ({rate:,.0f} docs/s)", flush=True)
    finally:
        client.indices.put_settings(index=alias, settings={"refresh_interval": "1s"})
    client.indices.refresh(index=alias)
    elapsed = time.monotonic() - started
    print(f"loaded {count:,} in {elapsed:.0f} s ({count / elapsed:,.0f} docs/s)")
    return elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(settings: Settings, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "HARMWATCH_ES_INDEX_PREFIX": settings.es_index_prefix}
    server = subprocess.Popen([sys.executable, "-m", "harmwatch.cli", "ui", "--port", str(port),
                               "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the UI did not start")


async def _login(client: httpx.AsyncClient, username: str) -> None:
    page = await client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = await client.post("/login", data={"username": username, "password": PASSWORD,
                                                 "csrf_token": token})
    if response.status_code != 303:
        raise SystemExit(f"login failed for {username}: {response.status_code}")


_ITEM = re.compile(r'href="/items/([0-9a-f]{40})"')
_NEXT = re.compile(r'id="next-page" href="([^"]+)"')


async def virtual_user(base: str, username: str, stop: float, warm: float,
                       samples: dict[str, list[float]], budget: list[int]) -> None:
    rng = random.Random(username)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        await _login(client, username)
        next_url = None
        while time.monotonic() < stop and budget[0] > 0:
            roll = rng.random()
            if next_url and roll < 0.2:
                kind, url = "queue_next_page", next_url.replace("&amp;", "&")
            elif roll < 0.35:
                kind, url = "queue_search", f"/queue?q={rng.choice(SEARCHES).replace(' ', '+')}"
            else:
                kind, url = "queue", "/queue"
            started = time.monotonic()
            page = await client.get(url)
            _record(samples, kind, started, warm, page)
            found = _NEXT.search(page.text)
            next_url = found.group(1) if found else None
            ids = _ITEM.findall(page.text)
            if ids:
                started = time.monotonic()
                item = await client.get(f"/items/{rng.choice(ids)}")
                _record(samples, "item", started, warm, item)
            budget[0] -= 2


def _record(samples: dict[str, list[float]], kind: str, started: float, warm: float,
            response: httpx.Response) -> None:
    if response.status_code != 200:
        samples.setdefault("errors", []).append(response.status_code)
        return
    if started >= warm:
        samples.setdefault(kind, []).append((time.monotonic() - started) * 1000)


async def run_load(base: str, users: list[str], duration: float, warmup: float,
                   max_requests: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    now = time.monotonic()
    budget = [max_requests]
    await asyncio.gather(*(virtual_user(base, u, now + warmup + duration, now + warmup,
                                        samples, budget) for u in users))
    return samples


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(samples: dict[str, list[float]], args: argparse.Namespace, docs: int,
           load_s: float | None) -> str:
    lines = [f"\n## Review UI latency ({docs:,} flagged items, {args.users} concurrent users)\n",
             f"- command: `.venv/bin/python -m bench.bench_ui --docs {args.docs} --users "
             f"{args.users} --duration {args.duration:.0f} --workers {args.workers}`",
             f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
             f"- machine: {platform.machine()} x{os.cpu_count()} (shared with other work), "
             f"Elasticsearch 9.2.4 single node (1 GB heap), `harmwatch ui` with {args.workers} uvicorn worker(s)",
             f"- load: {f'{load_s:.0f} s' if load_s else 'reused from an earlier run'} "
             "(bulk, 2 threads, refresh off)",
             f"- measured {args.duration:.0f} s after a {args.warmup:.0f} s warm-up; every item "
             "view writes an audit record\n",
             "| page | requests | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
    for kind in ("queue", "queue_next_page", "queue_search", "item"):
        values = samples.get(kind, [])
        if values:
            lines.append(f"| {kind} | {len(values)} | {statistics.median(values):.0f} | "
                         f"{percentile(values, 0.95):.0f} | {percentile(values, 0.99):.0f} |")
    errors = samples.get("errors", [])
    lines.append(f"\nnon-200 responses: {len(errors)}\n")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--prefix", default="bench-ui")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(es_index_prefix=args.prefix)
    load_s = load(settings, args.docs)
    users = [f"bench-analyst-{n:02d}" for n in range(args.users)]
    for username in users:
        ensure_user(settings, username, PASSWORD, "analyst", locale="en")
    port = _free_port()
    server = start_server(settings, port, args.workers)
    try:
        samples = asyncio.run(run_load(f"http://127.0.0.1:{port}", users, args.duration,
                                       args.warmup, args.max_requests))
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = report(samples, args, es_client(settings).count(index=items_alias(settings))["count"],
                  load_s)
    print(text)
    if not args.no_append:
        if not RESULTS.exists():
            RESULTS.write_text("# Benchmark results\n\nAppend-only; newest last.\n")
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
