"""Evidence pack export: throughput and peak memory for 1,000 items with 2 GiB of media.

    .venv/bin/python -m bench.bench_evidence            # appends to bench/RESULTS.md

Builds a throw-away world on the running Elasticsearch (its own index prefix) and a
temporary blob store: 1,000 confirmed items, each with two 1 MiB "media" files of random
bytes (synthetic: throughput does not depend on content) and a small page snapshot, all
in one case. Then, each on a fresh pack file:

1. a full export, sampling the process RSS every 20 ms (peak minus the baseline before);
2. the same export under ``tracemalloc`` (peak of Python-allocated memory);
3. ``verify_pack`` of the result (re-reads and hashes every file).

Everything it made — indices, templates, blobs, packs — is deleted at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path

from elasticsearch import helpers

from bench._results import append_results
from harmwatch.blobstore import get_blob_store
from harmwatch.contract import (
    AnalysedPost,
    CrawledPost,
    CrawlProvenance,
    MediaHashes,
    MediaItem,
    TextAnalysis,
    content_hash,
    utcnow,
)
from harmwatch.documents import item_document, items_alias
from harmwatch.search import es_client
from harmwatch.settings import Settings, load_settings
from review_ui.audit import Actor
from review_ui.evidence import cases
from review_ui.evidence.pack import export_case
from review_ui.evidence.verify import verify_pack

MIB = 1024 * 1024


def _media(store, seed: int) -> tuple[MediaItem, MediaHashes]:  # type: ignore[no-untyped-def]
    data = os.urandom(MIB)
    hashes = {"sha256": hashlib.sha256(data).hexdigest(), "md5": hashlib.md5(data).hexdigest(),
              "sha1": hashlib.sha1(data).hexdigest()}
    ref = store.put(data)
    return (MediaItem(url=f"https://example.test/m/{seed}.bin", blob_ref=ref, size=MIB, **hashes),
            MediaHashes(**hashes))


def _documents(store, items: int, per_item: int) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    for n in range(items):
        pairs = [_media(store, n * per_item + i) for i in range(per_item)]
        url = f"https://example.test/t/{n}"
        post = CrawledPost(
            source="bench", source_kind="demo", post_id=str(n), url=url, text=f"post {n}",
            content_hash=content_hash(f"post {n}", [p[0].url for p in pairs]),
            media=[p[0] for p in pairs], snapshot_ref=store.put(f"<html>{n}</html>".encode()),
            provenance=CrawlProvenance(crawler="bench", crawl_job_id="bench", fetched_at=utcnow(),
                                       page_url=url, response_headers={"Server": "x"},
                                       server_ip="192.0.2.1"))
        doc = item_document(AnalysedPost(
            post=post, analyzed_at=utcnow(), analyzer_version="bench",
            text=TextAnalysis(language="en", scores={"grooming": 0.9}, model_version="bench"),
            media=[p[1] for p in pairs], risk=0.9))
        doc.update(status="confirmed", decision={"status": "confirmed", "user": "bench",
                                                 "at": utcnow().isoformat()})
        yield {"_index": None, "_id": doc["item_id"], "_source": doc}


class RssSampler:
    """Peak resident set size of this process while running, sampled from /proc."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _export(settings: Settings, case_id: str, out: Path) -> tuple[float, int]:
    actor = Actor("bench", "liaison", None, "bench")
    start = time.perf_counter()
    with out.open("wb") as target:
        result = export_case(es_client(settings), settings, case_id, target, actor)
    return time.perf_counter() - start, result.bytes


def _drop(settings: Settings) -> None:
    client = es_client(settings)
    prefix = settings.es_index_prefix
    for index in client.indices.get(index=f"{prefix}-*", expand_wildcards="all",
                                    ignore_unavailable=True):
        client.indices.delete(index=index, ignore_unavailable=True)
    for template in client.options(ignore_status=404).indices.get_index_template(
            name=f"{prefix}-*").get("index_templates", []):
        client.indices.delete_index_template(name=template["name"])


def run(items: int, per_item: int, work: Path) -> str:
    settings = load_settings(es_index_prefix=f"bench-evidence-{uuid.uuid4().hex[:6]}",
                             var_dir=work / "var", blob_dir=work / "blobs")
    client = es_client(settings)
    try:
        cases.ensure_case_indices(client, settings)
        store = get_blob_store(settings)
        actions = ({**a, "_index": items_alias(settings)} for a in _documents(store, items, per_item))
        helpers.bulk(client, actions, chunk_size=200, refresh=True)
        actor = Actor("bench", "liaison", None, "bench")
        case = cases.create_case(client, settings, actor, cases.CaseFields("bench"))
        ids = [hit["_id"] for hit in helpers.scan(client, index=items_alias(settings),
                                                   query={"query": {"match_all": {}}})]
        cases.add_items(client, settings, actor, case["case_id"], ids)
        pack = work / "pack.zip"
        baseline = RssSampler.rss()
        with RssSampler() as sampler:
            seconds, written = _export(settings, case["case_id"], pack)
        pack.unlink()
        tracemalloc.start()
        traced_seconds, _ = _export(settings, case["case_id"], pack)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        start = time.perf_counter()
        report = verify_pack(pack)
        verify_seconds = time.perf_counter() - start
        if not report.ok:
            raise RuntimeError(f"the benchmark's own pack does not verify: {report.problems}")
        size = pack.stat().st_size
    finally:
        _drop(settings)
    mb = written / 1e6
    return (
        f"{items} confirmed items in one case, {per_item} × 1 MiB random-byte media each "
        f"({written / 2**30:.2f} GiB in {report.files_checked} files), real Elasticsearch, "
        "blob store and pack on local disk, no time-stamp authority.\n\n"
        "| measure | value |\n|---|---|\n"
        f"| full export | {seconds:.1f} s, **{mb / seconds:.0f} MB/s** |\n"
        f"| peak RSS during export (above baseline {baseline / 2**20:.0f} MiB) | "
        f"**{(sampler.peak - baseline) / 2**20:.1f} MiB** (absolute {sampler.peak / 2**20:.0f} MiB) |\n"
        f"| export under tracemalloc | {traced_seconds:.1f} s, peak Python heap "
        f"**{traced_peak / 2**20:.1f} MiB** |\n"
        f"| verify (`verify_pack`, re-hash every file) | {verify_seconds:.1f} s, "
        f"{size / 1e6 / verify_seconds:.0f} MB/s |\n"
        f"| pack size | {size / 2**30:.2f} GiB |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--media-per-item", type=int, default=2)
    parser.add_argument("--no-append", action="store_true", help="print, do not append")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-evidence-"))
    try:
        body = run(args.items, args.media_per_item, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(body)
    if not args.no_append:
        append_results("Evidence pack export (1,000 items, 2 GiB media)",
                       ".venv/bin/python -m bench.bench_evidence", body)


if __name__ == "__main__":
    main()
