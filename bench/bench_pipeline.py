"""End-to-end pipeline throughput and latency: ``posts.raw`` → searchable in Elasticsearch.

    .venv/bin/python -m bench.bench_pipeline            # full text model, as in production
    .venv/bin/python -m bench.bench_pipeline --rules-only --posts 2000

Four runs on the running Kafka and Elasticsearch (own topics, index and group per run):
text-only posts and posts with one 1 MP JPEG each, with 1 and 2 analyzer processes and one
indexer. Per run the stages are started and warmed up first (model loaded, partitions
assigned), then a burst of posts is published; a poller records when each post becomes
searchable (Elasticsearch refreshes every second, so latency is refresh-bound from below).
Throughput is posts / (last searchable − first published); latency is per post, published
→ searchable, under that burst (so it includes queueing). Where the time goes comes from
the stages' own ``/metrics`` histograms (classification, hashing and matching per post;
indexing per bulk, divided by the posts in it). A bank of 10,000 random PDQ entries makes
matching do real index work. Figures are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench._results import append_results
from harmwatch.blobstore import get_blob_store
from harmwatch.contract import CrawledPost, CrawlProvenance, MediaItem, content_hash, utcnow
from harmwatch.documents import items_alias
from harmwatch.kafka import ensure_topics, make_producer
from harmwatch.search import es_client
from harmwatch.settings import REPO_ROOT, Settings, load_settings

TEXTS = [
    "Em bao nhiêu tuổi rồi? Đừng nói với bố mẹ nhé, gửi ảnh cho anh xem #{i}",
    "how old are you? keep this our secret, send me a photo ({i})",
    "Hôm nay trời đẹp, cả lớp đi dã ngoại ở công viên {i}",
    "great match last night, the keeper saved everything {i}",
]
STEPS = ("classification", "hashing", "matching")


@dataclass
class Run:
    name: str
    images: bool
    workers: int


@dataclass
class Result:
    run: Run
    posts: int
    seconds: float
    latencies: list[float]
    per_post_ms: dict[str, float]

    @property
    def rate(self) -> float:
        return self.posts / self.seconds


def _settings(base: Settings, tag: str, var: Path, rules_only: bool) -> Settings:
    return base.model_copy(update={
        "topic_raw": f"bench-{tag}.posts.raw", "topic_flagged": f"bench-{tag}.posts.flagged",
        "topic_dead": f"bench-{tag}.posts.dead", "es_index_prefix": f"bench-{tag}",
        "blob_dir": var / "blobs", "banks_dir": var / "banks", "recall_floor": 0.0,
        "analyzer_text_model": not rules_only,
    })


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMWATCH_")}
    for field in ("kafka_bootstrap", "es_url", "topic_raw", "topic_flagged", "topic_dead",
                  "topic_partitions", "es_index_prefix", "blob_dir", "banks_dir",
                  "recall_floor", "analyzer_text_model"):
        env[f"HARMWATCH_{field.upper()}"] = str(getattr(settings, field)).lower() \
            if isinstance(getattr(settings, field), bool) else str(getattr(settings, field))
    return env


def _bank(settings: Settings, size: int = 10_000) -> None:
    """A bank of random PDQ hashes, indexed, so every image is searched for real."""
    from classifiers.banks.matcher import Matcher
    from classifiers.banks.store import BankStore, NewEntry

    store = BankStore(settings.resolved_banks_dir)
    if not store.banks():
        store.create_bank("bench-random")
        rng = np.random.default_rng(7)
        rows = rng.integers(0, 256, (size, 32), dtype=np.uint8)
        store.add_entries("bench-random", (NewEntry(pdq=r.tobytes().hex(), category="B1")
                                           for r in rows), added_by="bench")
        Matcher(store).reindex()
    store.close()


def _jpeg(i: int) -> bytes:
    rng = np.random.default_rng(i)
    small = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    out = io.BytesIO()
    small.resize((1000, 1000), Image.Resampling.BILINEAR).save(out, "JPEG", quality=85)
    return out.getvalue()


def _posts(settings: Settings, run: Run, count: int, tag: str) -> list[CrawledPost]:
    blobs = get_blob_store(settings)
    posts = []
    for i in range(count):
        text = TEXTS[i % len(TEXTS)].format(i=i)
        media = []
        if run.images:
            data = _jpeg(i)
            ref = blobs.put(data)
            media = [MediaItem(url=f"https://img.example/{i}.jpg", blob_ref=ref,
                               sha256=ref.split(":")[1], content_type="image/jpeg",
                               size=len(data))]
        posts.append(CrawledPost(
            source=f"bench-{tag}", source_kind="demo", post_id=str(i),
            content_hash=content_hash(text, [m.url for m in media]),
            url=f"https://forum.example/{i}", text=text, media=media,
            provenance=CrawlProvenance(crawler="bench", crawl_job_id=tag, fetched_at=utcnow(),
                                       page_url="https://forum.example/")))
    return posts


def _start(settings: Settings, stage: str, workers: int, port: int, tag: str,
           log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / f"{stage}.log", "wb")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        [sys.executable, "-m", "harmwatch.cli", "consume", stage, "--workers", str(workers),
         "--metrics-port", str(port), "--group", f"bench-{tag}-{stage}"],
        env=_env(settings), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def _scrape(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = values.get(name, 0.0) + float(value)
    return values


def _ready(ports: list[int]) -> bool:
    return all(any(k.startswith("harmwatch_consumer_ready") and v == 1
                   for k, v in _scrape(p).items()) for p in ports)


def _visible(settings: Settings, expected: int) -> dict[str, float]:
    """Poll until ``expected`` posts are searchable; post id -> first time seen."""
    client = es_client(settings)
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 1800
    while len(seen) < expected and time.monotonic() < deadline:
        hits = client.search(index=items_alias(settings), size=10_000, source=False,
                             docvalue_fields=["post_id"], query={"match_all": {}},
                             ignore_unavailable=True)["hits"]["hits"]
        now = time.time()
        for hit in hits:
            seen.setdefault(hit["fields"]["post_id"][0], now)
        time.sleep(0.25)
    return seen


def _step_ms(metrics: list[dict[str, float]], stage: str, step: str) -> tuple[float, float]:
    total = count = 0.0
    for values in metrics:
        key = f'harmwatch_consumer_step_seconds_%s{{stage="{stage}",step="{step}"}}'
        total += values.get(key % "sum", 0.0)
        count += values.get(key % "count", 0.0)
    return total, count


def bench(base: Settings, run: Run, count: int, rules_only: bool, port: int) -> Result:
    tag = f"{uuid.uuid4().hex[:6]}-{run.name}"
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        settings = _settings(base, tag, Path(tmp), rules_only)
        ensure_topics(settings)
        if run.images:
            _bank(settings)
        posts = _posts(settings, run, count + 1, tag)
        analyzer_ports = [port + i for i in range(run.workers)]
        indexer_port = port + 10
        procs = [_start(settings, "analyzer", run.workers, port, tag, Path(tmp)),
                 _start(settings, "indexer", 1, indexer_port, tag, Path(tmp))]
        try:
            while not _ready([*analyzer_ports, indexer_port]):
                if any(p.poll() is not None for p in procs):
                    raise SystemExit((Path(tmp) / "analyzer.log").read_text()[-3000:])
                time.sleep(0.5)
            producer = make_producer(settings, "bench")
            warm = posts.pop()
            producer.send(settings.topic_raw, key=warm.key, value=warm.model_dump_json().encode())
            producer.flush()
            _visible(settings, 1)
            time.sleep(2)
            sent: dict[str, float] = {}
            for post in posts:
                sent[post.post_id] = time.time()
                producer.send(settings.topic_raw, key=post.key,
                              value=post.model_dump_json().encode())
            producer.flush()
            seen = _visible(settings, count + 1)
            metrics = [_scrape(p) for p in analyzer_ports]
            indexer_metrics = [_scrape(indexer_port)]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(60)
            _drop(settings)
    latencies = sorted(seen[pid] - t for pid, t in sent.items() if pid in seen)
    first = min(sent.values())
    last = max(seen[pid] for pid in sent if pid in seen)
    per_post = {}
    for step in STEPS:
        total, n = _step_ms(metrics, "analyzer", step)
        per_post[step] = 1000 * total / n if n else 0.0
    index_total, _ = _step_ms(indexer_metrics, "indexer", "indexing")
    per_post["indexing"] = 1000 * index_total / (count + 1)
    return Result(run, len(latencies), last - first, latencies, per_post)


def _drop(settings: Settings) -> None:
    """Remove the run's topics, index and templates from the shared services."""
    from harmwatch.kafka import admin_client

    client = es_client(settings)
    prefix = settings.es_index_prefix
    for index in client.indices.get(index=f"{prefix}-*", ignore_unavailable=True):
        client.indices.delete(index=index)
    templates = client.options(ignore_status=404).indices.get_index_template(name=f"{prefix}-*")
    for template in templates.get("index_templates", []):
        client.indices.delete_index_template(name=template["name"])
    admin = admin_client(settings)
    try:
        admin.delete_topics([settings.topic_raw, settings.topic_flagged, settings.topic_dead])
    finally:
        admin.close()


def _percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def render(results: list[Result], rules_only: bool, count: int, image_count: int) -> str:
    engine = "rules only" if rules_only else "rules + transformer (full model)"
    lines = [
        f"Burst of {count} text-only posts or {image_count} posts with one 1 MP JPEG, on the "
        f"running Kafka and Elasticsearch (shared machine, 2 cores, other work running); "
        f"text engine: {engine}; bank: 10,000 PDQ entries; 1 indexer; recall floor 0 (every "
        f"post indexed); default batches (analyzer 32 records, indexer 500). "
        f"Latency = published → searchable (refresh 1 s), under the burst. "
        f"Step times are per post, from the stages' /metrics.",
        "",
        "| posts | analyzers | posts/s | p50 s | p99 s | classification ms | hashing ms "
        "| matching ms | indexing ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.per_post_ms
        kind = "1 MP image" if r.run.images else "text only"
        lines.append(
            f"| {kind} | {r.run.workers} | {r.rate:.1f} | {statistics.median(r.latencies):.2f} "
            f"| {_percentile(r.latencies, 0.99):.2f} | {s['classification']:.1f} "
            f"| {s['hashing']:.1f} | {s['matching']:.2f} | {s['indexing']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=400, help="text-only posts per run")
    parser.add_argument("--image-posts", type=int, default=200, help="image posts per run")
    parser.add_argument("--rules-only", action="store_true",
                        help="text rules without the transformer (HARMWATCH_ANALYZER_TEXT_MODEL)")
    parser.add_argument("--port", type=int, default=19500, help="first /metrics port to use")
    parser.add_argument("--no-append", action="store_true", help="print, do not append")
    args = parser.parse_args()
    base = load_settings(topic_partitions=6)
    runs = [Run("text-1", False, 1), Run("text-2", False, 2), Run("image-1", True, 1),
            Run("image-2", True, 2)]
    results = []
    for run in runs:
        count = args.image_posts if run.images else args.posts
        result = bench(base, run, count, args.rules_only, args.port)
        print(f"{run.name}: {result.rate:.1f} posts/s, p50 {statistics.median(result.latencies):.2f}"
              f" s, p99 {_percentile(result.latencies, 0.99):.2f} s, {result.per_post_ms}",
              flush=True)
        results.append(result)
    body = render(results, args.rules_only, args.posts, args.image_posts)
    print(body)
    if not args.no_append:
        command = "python -m bench.bench_pipeline " + " ".join(sys.argv[1:])
        append_results("Pipeline throughput (posts.raw → searchable in Elasticsearch)",
                       command.strip(), body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
