"""Fault injection on a private Kafka broker and Elasticsearch node (real ones).

Each scenario publishes posts while the pipeline runs, breaks something, and then checks
that every published post is in Elasticsearch exactly once: the id set equals the
expected set and the count equals the number of posts. The services are our own
(:class:`tests.consumers_support.PrivateServices`), so stopping and killing them does not
disturb anyone sharing the development services. Text engine: rules only (these tests are
about delivery, not classification).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harmwatch.contract import CrawledPost
from harmwatch.settings import REPO_ROOT, Settings
from tests.consumers_support import (
    BackgroundPublisher,
    PrivateServices,
    StageProcess,
    dead_letters,
    decoded_original,
    expected_id,
    indexed_ids,
    item_count,
    make_post,
    no_leftover_stages,  # noqa: F401 - a fixture, used through pytestmark
    posts_messages,
    publish,
    start_stage,
    topic_size,
    wait_for_count,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leftover_stages")]



@pytest.fixture(scope="module")
def private(services) -> Iterator[PrivateServices]:
    """A broker and node on ports 19092/19200 under a temporary var directory.

    ``HARMWATCH_TEST_PRIVATE_VAR`` names a var directory to reuse instead (its services are
    started if needed and left running), which saves the start-up when iterating locally.
    """
    reuse = os.environ.get("HARMWATCH_TEST_PRIVATE_VAR")
    # Not under pytest's basetemp: every pytest session (anyone's) resets that tree to mode
    # 0700, which would lock the Elasticsearch user out of its data mid-run.
    var = Path(reuse) if reuse else REPO_ROOT / "var" / f"test-private-{uuid.uuid4().hex[:8]}"
    instance = PrivateServices(var)
    started = not instance.kafka.running_pid()
    instance.start()
    yield instance
    if started:
        instance.stop()
    if not reuse:
        shutil.rmtree(var, ignore_errors=True)


def _scenario(services: Settings, private: PrivateServices, name: str) -> Settings:
    settings = private.settings_for(services)
    return settings.model_copy(update={
        "topic_raw": f"{settings.topic_raw}.{name}",
        "topic_flagged": f"{settings.topic_flagged}.{name}",
        "topic_dead": f"{settings.topic_dead}.{name}",
        "es_index_prefix": f"{settings.es_index_prefix}-{name}",
    })


def _pipeline(settings: Settings, name: str, logs) -> tuple[StageProcess, StageProcess]:
    return (start_stage(settings, "analyzer", f"{name}-analyzer", logs, "--max-records", "100"),
            start_stage(settings, "indexer", f"{name}-indexer", logs, "--max-records", "100"))


def _wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _assert_exactly_once(settings: Settings, posts: list[CrawledPost],
                         stages: list[StageProcess]) -> None:
    try:
        count = wait_for_count(settings, len(posts), 180, stages)
        time.sleep(2)  # a late duplicate would show up now
        ids = indexed_ids(settings)
    finally:
        codes = [stage.stop() for stage in stages]
    assert count == len(posts)
    assert len(ids) == len(posts) == item_count(settings)
    assert set(ids) == {expected_id(p) for p in posts}
    assert codes == [0] * len(stages), [s.log()[-2000:] for s in stages]


def test_kill_9_of_analyzer_and_indexer_mid_batch_loses_and_repeats_nothing(
        services, private, tmp_path):
    settings = _scenario(services, private, "kill9")
    posts = [make_post("kill9", i) for i in range(4000)]
    publisher = BackgroundPublisher(settings, posts_messages(posts), chunks=20, pause=0.3)
    publisher.start()
    analyzer, indexer = _pipeline(settings, "kill9", tmp_path)
    _wait_until(lambda: topic_size(settings, settings.topic_flagged) >= 800, 120, "analyzer")
    analyzer.signal(signal.SIGKILL)
    _wait_until(lambda: item_count(settings) >= 800, 120, "indexer")
    indexer.signal(signal.SIGKILL)
    assert analyzer.proc.wait(10) == -9 and indexer.proc.wait(10) == -9
    assert item_count(settings) < len(posts)  # killed mid-stream, not after the end
    analyzer, indexer = _pipeline(settings, "kill9", tmp_path)
    publisher.finish()
    _assert_exactly_once(settings, posts, [analyzer, indexer])


def test_elasticsearch_down_for_30_seconds_under_load(services, private, tmp_path):
    settings = _scenario(services, private, "esdown")
    posts = [make_post("esdown", i) for i in range(3000)]
    publisher = BackgroundPublisher(settings, posts_messages(posts), chunks=30, pause=0.5)
    publisher.start()
    analyzer, indexer = _pipeline(settings, "esdown", tmp_path)
    _wait_until(lambda: item_count(settings) >= 300, 120, "first documents")
    private.restart_elasticsearch(down=30)
    assert indexer.proc.poll() is None, "the indexer gave up while Elasticsearch was down"
    publisher.finish()
    _assert_exactly_once(settings, posts, [analyzer, indexer])
    assert "transient failure, retrying" in indexer.log()


def test_broker_restart_under_load(services, private, tmp_path):
    settings = _scenario(services, private, "brokerdown")
    posts = [make_post("brokerdown", i) for i in range(3000)]
    publisher = BackgroundPublisher(settings, posts_messages(posts), chunks=30, pause=0.5)
    publisher.start()
    analyzer, indexer = _pipeline(settings, "brokerdown", tmp_path)
    _wait_until(lambda: item_count(settings) >= 300, 120, "first documents")
    private.restart_kafka(down=5)
    publisher.finish()
    _assert_exactly_once(settings, posts, [analyzer, indexer])


def _malformed(i: int) -> bytes:
    """Ten kinds of poison, each unique: bad JSON, wrong shapes, schema violations."""
    good = json.loads(make_post("poison", i).model_dump_json())
    kinds = [
        lambda: f"{{not json {i}".encode(),
        lambda: f"[{i}]".encode(),
        lambda: b"\xff\xfe" + str(i).encode(),
        lambda: json.dumps({**good, "provenance": None}).encode(),
        lambda: json.dumps({k: v for k, v in good.items() if k != "post_id"}).encode(),
        lambda: json.dumps({**good, "unexpected": i}).encode(),
        lambda: json.dumps({**good, "version": "second"}).encode(),
        lambda: json.dumps({**good, "schema_version": 2}).encode(),
        lambda: json.dumps({**good, "content_hash": "not-a-hash"}).encode(),
        lambda: json.dumps({**good, "source": ""}).encode(),
    ]
    return kinds[i % len(kinds)]()


def test_a_thousand_malformed_among_ten_thousand_good(services, private, tmp_path):
    settings = _scenario(services, private, "poison")
    posts = [make_post("poison", i) for i in range(10_000)]
    good = posts_messages(posts)
    bad = [(f"bad:{i}", _malformed(i)) for i in range(1000)]
    mixed = [m for pair in zip(good[::10], bad, strict=True) for m in pair]
    mixed += [m for i, m in enumerate(good) if i % 10]
    publish(settings, mixed)
    analyzer, indexer = _pipeline(settings, "poison", tmp_path)
    _assert_exactly_once(settings, posts, [analyzer, indexer])
    letters = dead_letters(settings)
    assert len(letters) == len(bad)
    assert sorted((d["key"], decoded_original(d)) for d in letters) == sorted(bad)
    assert all(d["stage"] == "analyzer" and d["error"] for d in letters)
