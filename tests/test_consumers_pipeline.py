"""The analyzer and indexer end to end on the real Kafka and Elasticsearch.

Posts go in on ``posts.raw``; what must come out is checked in Elasticsearch and on the
dead-letter topic: flagged text, a bank match on a benign post, images that cannot be
decoded or found (recorded, not fatal), poison messages dead-lettered, replays that
leave analysts' decisions alone, two workers sharing the partitions, SIGTERM committing.
"""

from __future__ import annotations

import contextlib
import io
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from harmwatch.blobstore import get_blob_store
from harmwatch.contract import MediaItem
from harmwatch.documents import items_alias
from harmwatch.search import es_client, fold
from harmwatch.settings import Settings
from tests.consumers_support import (
    BackgroundPublisher,
    dead_letters,
    decoded_original,
    expected_id,
    free_port,
    indexed_ids,
    make_post,
    no_leftover_stages,  # noqa: F401 - a fixture, used through pytestmark
    posts_messages,
    publish,
    start_stage,
    topic_size,
    wait_for_count,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leftover_stages")]



def scoped(settings: Settings, name: str) -> Settings:
    """The session's settings with topics, indices and banks of this scenario's own."""
    return settings.model_copy(update={
        "topic_raw": f"{settings.topic_raw}.{name}",
        "topic_flagged": f"{settings.topic_flagged}.{name}",
        "topic_dead": f"{settings.topic_dead}.{name}",
        "es_index_prefix": f"{settings.es_index_prefix}-{name}",
        "banks_dir": settings.resolved_banks_dir / name,
    })


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((1000, 1000), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _confirmed_and_cropped() -> tuple[bytes, bytes]:
    """A photograph as confirmed (PNG) and re-posted with 8 % cut off (JPEG)."""
    from skimage import data as skdata

    original = Image.fromarray(skdata.chelsea())
    width, height = original.size
    kept, cropped = io.BytesIO(), io.BytesIO()
    original.save(kept, "PNG")
    original.crop((int(width * .08), int(height * .08), width, height)).save(cropped, "JPEG",
                                                                            quality=90)
    return kept.getvalue(), cropped.getvalue()


def _run_to_idle(settings: Settings, stage: str, group: str, tmp_path, *args: str) -> str:
    process = start_stage(settings, stage, group, tmp_path, "--until-idle", "4", *args)
    assert process.proc.wait(timeout=180) == 0, process.log()[-3000:]
    return process.log()


@pytest.fixture(scope="module")
def run(services, tmp_path_factory):
    """One pass of the pipeline over a mixed batch; the tests below read its results."""
    from classifiers.banks.store import BankStore, NewEntry
    from classifiers.media.hashing import crop_resistant_hash, hash_image

    settings = scoped(services, "e2e")
    tmp = tmp_path_factory.mktemp("e2e")
    blobs = get_blob_store(settings)
    known = _jpeg(1)
    known_ref = blobs.put(known)
    garbage_ref = blobs.put(b"<html>404 not found</html>")
    store = BankStore(settings.resolved_banks_dir)
    store.create_bank("test-known", list_version="2026-11")
    store.add_entries("test-known", [NewEntry(pdq=hash_image(known).first.pdq, category="A1")],
                      added_by="test")
    confirmed, cropped = _confirmed_and_cropped()
    store.create_bank("confirmed")
    store.add_entries("confirmed", [NewEntry(phash=hash_image(confirmed).first.phash,
                                             crop_resistant=crop_resistant_hash(confirmed),
                                             category="A2")], added_by="analyst")
    store.close()
    cropped_ref = blobs.put(cropped)

    def media(ref: str | None, url: str) -> MediaItem:
        return MediaItem(url=url, blob_ref=ref, sha256=ref.split(":")[1] if ref else None)

    missing = "sha256:" + "0" * 64
    posts = {
        "flagged": make_post("e2e", 0),
        "benign": make_post("e2e", 1, text="Trời hôm nay đẹp quá, đi chơi công viên thôi"),
        "banked": make_post("e2e", 2, text="Ảnh đi chơi cuối tuần",
                            media=[media(known_ref, "https://img.example/a.jpg")]),
        "undecodable": make_post("e2e", 3, media=[media(garbage_ref, "https://img.example/b")]),
        "missing_blob": make_post("e2e", 4, media=[media(missing, "https://img.example/c")]),
        "cropped": make_post("e2e", 5, text="Ảnh mới nè",
                             media=[media(cropped_ref, "https://img.example/d.jpg")]),
    }
    poison = [("bad:json", b"{not json"), ("bad:schema", b'{"source": "x", "post_id": "1"}')]
    publish(settings, posts_messages(posts.values()) + poison)
    analyzer_log = _run_to_idle(settings, "analyzer", "test-analyzer", tmp)
    _run_to_idle(settings, "indexer", "test-indexer", tmp)
    return settings, posts, poison, analyzer_log, tmp


def _doc(settings: Settings, post) -> dict:
    return es_client(settings).get(index=items_alias(settings), id=expected_id(post))["_source"]


def test_flagged_posts_are_indexed_with_reasons_and_benign_ones_are_not(run):
    settings, posts, _, _, _ = run
    ids = set(indexed_ids(settings))
    assert ids == {expected_id(posts[k]) for k in ("flagged", "banked", "undecodable",
                                                   "missing_blob", "cropped")}
    doc = _doc(settings, posts["flagged"])
    assert doc["top_category"] == "grooming"
    assert doc["model_version"] == "rules-only"
    assert any("grooming score" in r for r in doc["reasons"])
    assert doc["status"] == "new"


def test_search_without_diacritics_finds_the_vietnamese_post(run):
    settings, posts, _, _, _ = run
    hits = es_client(settings).search(index=items_alias(settings), query={
        "match_phrase": {"text_folded": fold("dung noi voi bo me")}})["hits"]["hits"]
    assert expected_id(posts["flagged"]) in {h["_id"] for h in hits}
    assert expected_id(posts["banked"]) not in {h["_id"] for h in hits}


def test_a_bank_match_forwards_a_post_with_benign_text(run):
    settings, posts, _, _, _ = run
    doc = _doc(settings, posts["banked"])
    assert doc["has_match"] is True
    assert doc["matches"][0]["bank"] == "test-known"
    assert doc["matches"][0]["category"] == "A1"
    assert doc["risk"] >= 0.95
    assert doc["media"][0]["pdq"]


def test_a_cropped_copy_of_confirmed_material_is_matched(run):
    settings, posts, _, _, _ = run
    doc = _doc(settings, posts["cropped"])
    (match,) = doc["matches"]
    assert (match["bank"], match["algorithm"], match["category"]) == (
        "confirmed", "crop_resistant", "A2")
    assert any("cropped copy" in r for r in doc["reasons"]) and doc["risk"] >= 0.95


def test_bad_or_missing_images_are_recorded_on_the_post_not_dead_lettered(run):
    settings, posts, _, _, _ = run
    assert _doc(settings, posts["undecodable"])["media"][0]["error"].startswith("not_an_image")
    assert "blob unavailable" in _doc(settings, posts["missing_blob"])["media"][0]["error"]


def test_poison_messages_land_in_the_dead_letter_topic_whole(run):
    settings, _, poison, analyzer_log, _ = run
    letters = dead_letters(settings)
    assert sorted((d["key"], decoded_original(d)) for d in letters) == sorted(poison)
    assert {d["stage"] for d in letters} == {"analyzer"}
    assert all(d["source_topic"] == settings.topic_raw for d in letters)
    assert '"key": "bad:json"' in analyzer_log  # structured log names the post key


def test_a_replay_stores_nothing_twice_and_keeps_analysts_decisions(run):
    settings, posts, _, _, tmp = run
    client = es_client(settings)
    doc_id = expected_id(posts["flagged"])
    client.update(index=items_alias(settings), id=doc_id, refresh=True,
                  doc={"status": "confirmed", "decision": {"status": "confirmed", "user": "ana"}})
    before = indexed_ids(settings)
    log = _run_to_idle(settings, "indexer", "test-indexer-replay", tmp, "--log-level", "DEBUG")
    assert indexed_ids(settings) == before
    assert _doc(settings, posts["flagged"])["status"] == "confirmed"
    assert log.count('"status": 409') == len(before)


def test_an_urgent_post_below_the_recall_floor_reaches_the_queue(services, tmp_path):
    """A goodbye message (an urgent rule) is forwarded, indexed urgent and queued,
    though its self-harm score is under the recall floor and every threshold."""
    from consumers.analyzer import URGENT_REASON
    from harmwatch.documents import QUEUE_SORT, queue_filter

    settings = scoped(services, "urgent").model_copy(update={"recall_floor": 0.9})
    goodbye = make_post("urgent", 0, text="Tạm biệt mọi người mãi mãi. Đây là tin nhắn cuối "
                                           "cùng của em.")
    grooming = make_post("urgent", 1)  # the rules score it 0.74: under this floor
    publish(settings, posts_messages([goodbye, grooming]))
    _run_to_idle(settings, "analyzer", "test-analyzer-urgent", tmp_path)
    _run_to_idle(settings, "indexer", "test-indexer-urgent", tmp_path)
    assert indexed_ids(settings) == [expected_id(goodbye)]
    doc = _doc(settings, goodbye)
    assert doc["urgent"] is True and doc["scores"]["self_harm"] < settings.recall_floor
    assert doc["reasons"][0] == URGENT_REASON
    queued = es_client(settings).search(
        index=items_alias(settings), sort=QUEUE_SORT,
        query=queue_filter({c: 0.99 for c in doc["scores"]}))["hits"]["hits"]
    assert [h["_id"] for h in queued] == [expected_id(goodbye)]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _metric(text: str, name: str, label: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and label in line)


def _forwarded(port: int) -> float:
    return _metric(_scrape(port), "harmwatch_consumer_messages_total", 'outcome="forwarded"')


def test_two_workers_share_the_partitions_and_sigterm_commits(services, tmp_path):
    settings = scoped(services, "workers")
    posts = [make_post("workers", i) for i in range(3000)]
    publisher = BackgroundPublisher(settings, posts_messages(posts), chunks=30, pause=0.3)
    publisher.start()
    port = free_port()
    workers = start_stage(settings, "analyzer", "test-workers", tmp_path, "--workers", "2",
                          "--metrics-port", str(port), "--max-records", "50")
    deadline = time.monotonic() + 60
    both = lag = False
    while not (both and lag) and time.monotonic() < deadline:
        time.sleep(0.5)
        with contextlib.suppress(OSError):
            both = _forwarded(port) > 0 and _forwarded(port + 1) > 0
            lag = any("harmwatch_consumer_lag{" in _scrape(p) for p in (port, port + 1))
    scraped = _scrape(port)
    assert workers.stop() == 0, workers.log()[-3000:]
    assert both, "the two workers did not both get partitions"
    assert lag, "no consumer lag reported"
    assert 'harmwatch_consumer_step_seconds_count{stage="analyzer",step="classification"}' \
        in scraped
    assert "uncommitted" not in workers.log()
    publisher.finish()
    # A SIGTERM-ed worker committed what it forwarded: resuming repeats nothing.
    _run_to_idle(settings, "analyzer", "test-workers", tmp_path)
    assert topic_size(settings, settings.topic_flagged) == len(posts)
    indexer = start_stage(settings, "indexer", "test-workers-indexer", tmp_path)
    try:
        assert wait_for_count(settings, len(posts), 120, [indexer]) == len(posts)
    finally:
        assert indexer.stop() == 0
    assert sorted(indexed_ids(settings)) == sorted(expected_id(p) for p in posts)


def test_an_analysed_post_over_the_message_limit_is_dead_lettered_whole_then_replayed(
        services, tmp_path):
    """A forwarded message the producer would refuse must not stall the partition."""
    import subprocess
    import sys

    from harmwatch.settings import REPO_ROOT
    from tests.consumers_support import settings_env

    settings = scoped(services, "oversize")
    small = settings.model_copy(update={"kafka_max_message_bytes": 64 * 1024})
    filler = " ".join(f"đoạn {i} của một bài viết rất dài" for i in range(2200))
    big = make_post("oversize", 0, text=make_post("oversize", 0).text + " " + filler)
    after = make_post("oversize", 1)
    raw = big.model_dump_json().encode()
    assert 66 * 1024 < len(raw) < 200 * 1024
    publish(settings, posts_messages([big, after]))

    process = start_stage(small, "analyzer", "test-oversize", tmp_path, "--until-idle", "4")
    assert process.proc.wait(timeout=180) == 0, process.log()[-3000:]
    (letter,) = dead_letters(settings)
    assert letter["key"] == big.key and "message limit" in letter["error"]
    assert letter["original_base64"] == "" and letter["original_size"] == len(raw)
    assert get_blob_store(settings).get(letter["original_blob_ref"]) == raw
    assert topic_size(settings, settings.topic_flagged) == 1  # the next post went on

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "harmwatch.cli", "dead-letters", *args],
                              env=settings_env(settings), cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert big.key in cli("list") and "65,536-byte message limit" in cli("list")
    assert filler[:200] in cli("show", "0:0")
    assert "1 replayed" in cli("replay", "--all", "--stage", "analyzer")
    _run_to_idle(settings, "analyzer", "test-oversize", tmp_path)  # 1 MiB limit: fits now
    _run_to_idle(settings, "indexer", "test-oversize-indexer", tmp_path)
    assert sorted(indexed_ids(settings)) == sorted(expected_id(p) for p in (big, after))


def test_a_worker_killed_by_the_os_is_restarted_and_nothing_is_lost(services, tmp_path):
    import json
    import os
    import signal

    settings = scoped(services, "restart")
    posts = [make_post("restart", i) for i in range(400)]
    publish(settings, posts_messages(posts))
    workers = start_stage(settings, "analyzer", "test-restart", tmp_path, "--workers", "2",
                          "--until-idle", "8", "--max-records", "20")

    def started() -> list[dict]:
        lines = [json.loads(x) for x in workers.log().splitlines() if x.startswith("{")]
        return [x for x in lines if x.get("msg") == "worker started"]

    deadline = time.monotonic() + 60
    while len(started()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    victim = next(x for x in started() if x["child"].endswith("-1"))
    time.sleep(3)  # let it take partitions and work
    os.kill(victim["pid"], signal.SIGKILL)
    assert workers.proc.wait(timeout=240) == 0, workers.log()[-3000:]
    assert "worker died; restarting it" in workers.log()
    assert [x["child"] for x in started()].count(victim["child"]) == 2
    _run_to_idle(settings, "indexer", "test-restart-indexer", tmp_path)
    assert sorted(indexed_ids(settings)) == sorted(expected_id(p) for p in posts)
