"""Support for the consumer tests: posts, subprocess stages, ES checks, private services.

Fault-injection tests stop and kill Kafka and Elasticsearch, which other people's work
shares; so they run against a *private* broker and node started here with
:mod:`services.manager` on other ports under a temporary var directory, reusing the
unpacked distributions of the shared ``var/services`` (Kafka's jars by symlink,
Elasticsearch's by hard links with its own ``config/``, which the manager rewrites).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harmwatch.contract import CrawledPost, CrawlProvenance, MediaItem, content_hash, item_id
from harmwatch.settings import REPO_ROOT, Settings, settings_environment

TEXTS = [
    "Em bao nhiêu tuổi rồi? Đừng nói với bố mẹ nhé #{i}",
    "send me a secret photo, don't tell your parents ({i})",
    "Gửi ảnh cho anh xem đi, bí mật của hai đứa mình thôi {i}",
    "how old are you? keep this our secret ok {i}",
]


def make_post(run: str, i: int, media: list[MediaItem] | None = None,
              text: str | None = None) -> CrawledPost:
    """A post whose text the rules flag above the recall floor (so it must reach ES)."""
    body = text if text is not None else TEXTS[i % len(TEXTS)].format(i=i)
    return CrawledPost(
        source=f"test-{run}", source_kind="demo", post_id=str(i),
        content_hash=content_hash(body, [m.url for m in media or []]),
        url=f"https://forum.example/t/{i}", text=body, media=media or [],
        provenance=CrawlProvenance(crawler="demo", crawl_job_id=run,
                                   fetched_at=datetime(2026, 11, 29, 10, tzinfo=UTC),
                                   page_url=f"https://forum.example/t/{i}"),
    )


def expected_id(post: CrawledPost) -> str:
    return item_id(post.source, post.post_id, post.version)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives a subprocess these settings (rules-only text engine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMWATCH_")}
    env.update(settings_environment(settings))
    env["HARMWATCH_ANALYZER_TEXT_MODEL"] = "false"
    env.update(extra)
    return env


@dataclass
class StageProcess:
    """A ``harmwatch consume`` subprocess whose JSON logs go to a file."""

    stage: str
    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait: the stage finishes and commits its batch before exiting."""
        self.signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


STARTED: list[StageProcess] = []


def kill_leftovers() -> None:
    """Kill stage processes a failed test left running (they would retry forever)."""
    while STARTED:
        process = STARTED.pop()
        if process.proc.poll() is None:
            process.signal(signal.SIGKILL)
            process.proc.wait(10)


@pytest.fixture()
def no_leftover_stages() -> Iterator[None]:
    """Kill any stage process a test left behind, so it cannot eat the next test's CPU."""
    yield
    kill_leftovers()


def start_stage(settings: Settings, stage: str, group: str, log_dir: Path,
                *args: str, **env: str) -> StageProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{stage}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harmwatch.cli", "consume", stage, "--group", group, *args],
            env=settings_env(settings, **env), stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO_ROOT, start_new_session=True,
        )
    STARTED.append(StageProcess(stage, proc, log_path))
    return STARTED[-1]


def publish(settings: Settings, messages: Iterable[tuple[str | None, bytes]]) -> int:
    """Produce and wait for every acknowledgement, re-sending what failed (broker restarts)."""
    from kafka.errors import KafkaError

    from harmwatch.kafka import ensure_topics, make_producer

    ensure_topics(settings)
    producer = make_producer(settings, "test-publisher", key_serializer=None)
    pending = [(k.encode() if k else None, v) for k, v in messages]
    count = len(pending)
    try:
        while pending:
            failed = []
            futures = []
            for message in pending:
                try:
                    futures.append((message, producer.send(settings.topic_raw, key=message[0],
                                                           value=message[1])))
                except KafkaError:
                    failed.append(message)
            for message, future in futures:
                try:
                    future.get(timeout=90)
                except KafkaError:
                    failed.append(message)
            pending = failed
            if pending:
                time.sleep(1)
    finally:
        producer.close(timeout=10)
    return count


class BackgroundPublisher(threading.Thread):
    """Publishes messages in small timed chunks, to keep the pipeline under load."""

    def __init__(self, settings: Settings, messages: list[tuple[str | None, bytes]],
                 chunks: int = 20, pause: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.settings, self.messages, self.chunks, self.pause = settings, messages, chunks, pause
        self.error: BaseException | None = None

    def run(self) -> None:
        from kafka.errors import KafkaError

        size = -(-len(self.messages) // self.chunks)
        try:
            for start in range(0, len(self.messages), size):
                while True:  # a chunk sent again after a broker outage repeats no post id
                    try:
                        publish(self.settings, self.messages[start:start + size])
                        break
                    except KafkaError:
                        time.sleep(1)
                time.sleep(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self, timeout: float = 300) -> None:
        self.join(timeout)
        assert not self.is_alive(), "publisher did not finish"
        assert self.error is None, f"publisher failed: {self.error!r}"


def topic_size(settings: Settings, topic: str) -> int:
    """Messages ever written to ``topic`` (sum of its partitions' end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def posts_messages(posts: Iterable[CrawledPost]) -> list[tuple[str, bytes]]:
    return [(p.key, p.model_dump_json().encode()) for p in posts]


def indexed_ids(settings: Settings) -> list[str]:
    """Every item id in the items alias, paging with search_after (duplicates would show)."""
    from harmwatch.documents import items_alias
    from harmwatch.search import es_client

    client = es_client(settings)
    client.indices.refresh(index=items_alias(settings))
    ids: list[str] = []
    after = None
    while True:
        page = client.search(index=items_alias(settings), size=5000, sort=[{"item_id": "asc"}],
                             source=False, fields=["item_id"], search_after=after)["hits"]["hits"]
        if not page:
            return ids
        ids += [hit["fields"]["item_id"][0] for hit in page]
        after = page[-1]["sort"]


def item_count(settings: Settings) -> int:
    from elasticsearch import ApiError, NotFoundError, TransportError

    from harmwatch.documents import items_alias
    from harmwatch.search import es_client

    try:
        return es_client(settings, max_retries=0, request_timeout=5).count(
            index=items_alias(settings))["count"]
    except (NotFoundError, ApiError, TransportError):
        return -1


def wait_for_count(settings: Settings, expected: int, timeout: float,
                   stages: Iterable[StageProcess] = ()) -> int:
    """Poll until the items alias holds ``expected`` documents (or time runs out)."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = item_count(settings)
        if count >= expected:
            return count
        for stage in stages:
            if stage.proc.poll() is not None:
                raise AssertionError(f"{stage.stage} exited {stage.proc.returncode}:\n"
                                     f"{stage.log()[-3000:]}")
        time.sleep(1)
    return count


def dead_letters(settings: Settings, timeout_ms: int = 5000) -> list[dict]:
    """Every message of the dead-letter topic, parsed."""
    import json

    from kafka import KafkaConsumer

    consumer = KafkaConsumer(settings.topic_dead, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=timeout_ms,
                             enable_auto_commit=False)
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def decoded_original(letter: dict) -> bytes:
    return base64.b64decode(letter["original_base64"])


# ---------------------------------------------------------------------------
# Private Kafka and Elasticsearch for fault injection
# ---------------------------------------------------------------------------


@dataclass
class PrivateServices:
    """A broker and a node of our own, which tests may stop, kill and restart."""

    var: Path
    kafka: object = field(init=False)
    es: object = field(init=False)

    def __post_init__(self) -> None:
        from services.manager import Elasticsearch, Kafka, Layout, pinned_versions

        versions = pinned_versions()
        layout = Layout(self.var)
        _share_distributions(layout.downloads, versions)
        self.kafka = Kafka(layout, versions["kafka.version"], port=19092, controller_port=19093)
        self.es = Elasticsearch(layout, versions["elasticsearch.version"], port=19200,
                                transport_port=19300, heap="512m")
        layout.run.mkdir(parents=True, exist_ok=True)
        layout.logs.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.kafka.start()
        self.es.start()
        _healthy(self.kafka)
        _healthy(self.es)

    def restart_kafka(self, down: float = 5.0) -> None:
        self.kafka.stop()
        time.sleep(down)
        self.kafka.start()
        _healthy(self.kafka)

    def restart_elasticsearch(self, down: float = 30.0) -> None:
        self.es.stop()
        time.sleep(down)
        self.es.start()
        _healthy(self.es)

    def stop(self) -> None:
        self.kafka.stop()
        self.es.stop()

    def settings_for(self, settings: Settings) -> Settings:
        return settings.model_copy(update={
            "kafka_bootstrap": f"127.0.0.1:{self.kafka.port}", "es_url": self.es.url})


def _healthy(service: object, attempts: int = 3) -> None:
    """Wait for a service, tolerating the manager's occasional false "exited" verdict.

    Right after a restart under load the manager's pid check can miss a live JVM; a
    service whose process is really gone is started again.
    """
    from services.manager import ServiceError

    for _ in range(attempts - 1):
        try:
            service.wait_healthy()
            return
        except ServiceError:
            time.sleep(2)
            if not service.running_pid():
                service.start()
    service.wait_healthy()


def _share_distributions(downloads: Path, versions: dict[str, str]) -> None:
    """Point the private layout at the shared unpacked Kafka and Elasticsearch."""
    shared = REPO_ROOT / "var" / "services"
    downloads.mkdir(parents=True, exist_ok=True)
    kafka = f"kafka-{versions['kafka.version']}"
    if not (downloads / kafka).exists():
        (downloads / kafka).symlink_to(shared / kafka)
    es = f"elasticsearch-{versions['elasticsearch.version']}"
    if not (downloads / es).exists():
        subprocess.run(["cp", "-al", str(shared / es), str(downloads / es)], check=True)
        # The manager writes elasticsearch.yml and the heap options into config/: own copies.
        shutil.rmtree(downloads / es / "config")
        shutil.copytree(shared / es / "config", downloads / es / "config")
