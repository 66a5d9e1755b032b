"""The consume → process → write → commit loop shared by the analyzer and the indexer.

Delivery is at-least-once: a batch's offsets are committed only after everything the
batch produced (forwarded messages, Elasticsearch documents, dead letters) has been
acknowledged downstream. Writes downstream are idempotent (the indexer creates documents
under ids derived from the post's identity and version), so a replayed batch is stored
once. Transient failures are retried with capped exponential backoff, never dropped.
Rebalances cannot lose work: a batch is committed before the next ``poll()``, and the
client only revokes partitions inside ``poll()``.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from elasticsearch import ApiError, TransportError
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import metrics
from harmwatch.blobstore import BlobStore, get_blob_store
from harmwatch.contract import DeadLetter, utcnow
from harmwatch.kafka import ensure_topics, fits, make_consumer, make_producer
from harmwatch.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0


class ShutdownAbandoned(RuntimeError):
    """Stopping was requested and the downstream stayed down past the grace period.

    The batch is left uncommitted, so it is processed again by the next consumer: no loss.
    """


class Retryable(RuntimeError):
    """A downstream write partly failed in a way that retrying can fix."""


def is_transient(exc: BaseException) -> bool:
    """Whether retrying can help: broker or Elasticsearch unreachable, busy or timing out."""
    if isinstance(exc, Retryable):
        return True
    if isinstance(exc, ApiError):
        return exc.status_code in (408, 429) or exc.status_code >= 500
    return isinstance(exc, KafkaError | TransportError | ConnectionError | TimeoutError)


@dataclass
class RunOptions:
    """How one consumer process runs (from the command line)."""

    worker: int = 0
    until_idle: float | None = None
    metrics_port: int = 0
    poll_timeout_ms: int = 500
    max_records: int = 200
    shutdown_grace: float = 30.0


@dataclass
class DeadLetterSink:
    """Collects a batch's poison messages as :class:`DeadLetter` values to produce.

    The original travels inside the letter as base64 unless that would not fit in one
    Kafka message (base64 adds a third): then it goes to the blob store and the letter
    carries its ref, so even the largest poison message is kept whole.
    """

    stage: str
    settings: Settings
    blobs: BlobStore
    letters: list[tuple[str | None, bytes]] = field(default_factory=list)

    def add(self, record: Any, error: str) -> None:
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        original = record.value or b""
        letter = DeadLetter(
            stage=self.stage, error=error[:4000], source_topic=record.topic,
            partition=record.partition, offset=record.offset, key=key,
            original_base64=base64.b64encode(original).decode("ascii"),
            original_size=len(original), failed_at=utcnow(),
        )
        value = letter.model_dump_json().encode("utf-8")
        if not fits(self.settings, record.key, value):
            letter.original_blob_ref = self.blobs.put(original)
            letter.original_base64 = ""
            value = letter.model_dump_json().encode("utf-8")
        self.letters.append((key, value))
        metrics.DEAD_LETTERED.labels(self.stage).inc()
        metrics.MESSAGES.labels(self.stage, "dead_lettered").inc()
        log.warning("dead-lettered", extra={"key": key, "topic": record.topic,
                                            "partition": record.partition,
                                            "offset": record.offset, "error": error[:500]})


class Stage(Protocol):
    """One pipeline stage: what it reads, and how it handles a batch of records."""

    name: str
    group: str
    topic: str
    default_batch: int

    def start(self, runner: StageRunner) -> None:
        """Prepare downstream resources (indices, models); called once, retried if transient."""

    def handle(self, records: list[Any], dead: DeadLetterSink, runner: StageRunner) -> None:
        """Process and durably write a batch; put poison records into ``dead``."""


class _Rebalance(ConsumerRebalanceListener):
    """Logs assignment changes and drops lag gauges of partitions that moved away."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Nothing to commit here: every batch is committed before the next poll().
        for tp in revoked:
            with contextlib.suppress(KeyError):
                metrics.LAG.remove(self.stage, tp.topic, str(tp.partition))
        log.info("partitions revoked", extra={"partitions": sorted(p.partition for p in revoked)})

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned",
                 extra={"partitions": sorted(p.partition for p in assigned)})


class StageRunner:
    """Runs one stage in this process until idle, SIGTERM/SIGINT, or forever."""

    def __init__(self, stage: Stage, settings: Settings, options: RunOptions) -> None:
        self.stage = stage
        self.settings = settings
        self.options = options
        self.stopping = threading.Event()
        self.stop_requested_at: float | None = None
        self.client_id = f"harmwatch-{stage.name}-{options.worker}"
        self.producer: KafkaProducer | None = None
        self.blobs: BlobStore = get_blob_store(settings)
        self.rate = metrics.RateMeter(stage.name)
        self._last_lag_update = 0.0

    # -- lifecycle ---------------------------------------------------------------

    def request_stop(self, signum: int | None = None, _frame: object = None) -> None:
        """Finish the current batch, commit it, then exit (the SIGTERM handler)."""
        if not self.stopping.is_set():
            log.info("stop requested", extra={"signal": signum})
            self.stop_requested_at = time.monotonic()
            self.stopping.set()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        metrics.serve(self.options.metrics_port)
        try:
            self.retry(lambda: ensure_topics(self.settings), "topics")
            self.retry(lambda: self.stage.start(self), "start")
            self.producer = self.retry(
                lambda: make_producer(self.settings, self.client_id), "producer")
            consumer = self.retry(self._consumer, "consumer")
        except ShutdownAbandoned:
            return 0
        metrics.READY.labels(self.stage.name).set(1)
        try:
            self._loop(consumer)
        except ShutdownAbandoned:
            log.warning("stopped with a batch uncommitted; it will be processed again")
        finally:
            consumer.close(autocommit=False)
            self.producer.close(timeout=10)
        log.info("stopped")
        return 0

    def _consumer(self) -> KafkaConsumer:
        consumer = make_consumer(self.settings, self.stage.group, [self.stage.topic],
                                 self.client_id, max_poll_records=self.options.max_records)
        # Re-subscribing replaces the subscription, adding the listener.
        consumer.subscribe([self.stage.topic], listener=_Rebalance(self.stage.name))
        return consumer

    def _loop(self, consumer: KafkaConsumer) -> None:
        last_message = time.monotonic()
        while not self.stopping.is_set():
            polled = consumer.poll(timeout_ms=self.options.poll_timeout_ms,
                                   max_records=self.options.max_records)
            records = [r for batch in polled.values() for r in batch]
            self._update_lag(consumer)
            if not records:
                self.rate.add(0)
                idle = time.monotonic() - last_message
                if self.options.until_idle is not None and idle >= self.options.until_idle:
                    log.info("idle, exiting", extra={"idle_seconds": round(idle, 1)})
                    return
                continue
            self._handle_batch(consumer, records)
            last_message = time.monotonic()

    def _handle_batch(self, consumer: KafkaConsumer, records: list[Any]) -> None:
        started = time.monotonic()
        dead = DeadLetterSink(self.stage.name, self.settings, self.blobs)
        self.stage.handle(records, dead, self)
        if dead.letters:
            self.produce(self.settings.topic_dead, dead.letters, "dead letters")
        with metrics.STEP_SECONDS.labels(self.stage.name, "commit").time():
            self._commit(consumer, records)
        now_ms = time.time() * 1000
        latency = metrics.RECORD_LATENCY.labels(self.stage.name)
        for record in records:
            latency.observe(max(now_ms - record.timestamp, 0) / 1000)
        metrics.BATCH_SECONDS.labels(self.stage.name).observe(time.monotonic() - started)
        self.rate.add(len(records))

    def _commit(self, consumer: KafkaConsumer, records: list[Any]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp not in offsets or offsets[tp].offset <= record.offset:
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
        try:
            self.retry(lambda: consumer.commit(offsets), "commit",
                       give_up=lambda exc: isinstance(exc, CommitFailedError))
        except CommitFailedError as exc:
            # The group rebalanced: the new owner re-reads these records and the idempotent
            # writes downstream absorb the repeat.
            metrics.ERRORS.labels(self.stage.name, "commit_failed").inc()
            log.warning("commit refused after a rebalance; records will be re-read",
                        extra={"error": str(exc)})

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        now = time.monotonic()
        assignment = consumer.assignment()
        if not assignment or now - self._last_lag_update < 2:
            return
        self._last_lag_update = now
        try:
            for tp in assignment:
                high = consumer.highwater(tp)
                if high is not None:
                    position = consumer.position(tp, timeout_ms=1000)
                    metrics.LAG.labels(self.stage.name, tp.topic, str(tp.partition)).set(
                        max(high - (position or 0), 0))
        except KafkaError:
            pass  # lag is best effort; the next update tries again

    # -- downstream writes -------------------------------------------------------

    def produce(self, topic: str, messages: list[tuple[str | None, bytes]], what: str) -> None:
        """Send ``messages`` and wait for the broker's acknowledgement of each, retrying."""
        pending = list(messages)

        def attempt() -> None:
            nonlocal pending
            assert self.producer is not None
            futures = [(m, self.producer.send(topic, key=m[0], value=m[1])) for m in pending]
            self.producer.flush(timeout=60)
            failed, first_error = [], None
            for message, future in futures:
                try:
                    future.get(timeout=60)
                except KafkaError as exc:
                    failed.append(message)
                    first_error = first_error or exc
            pending = failed
            if first_error is not None:
                raise first_error

        with metrics.STEP_SECONDS.labels(self.stage.name, f"produce_{what.replace(' ', '_')}") \
                .time():
            self.retry(attempt, f"produce {what}")

    def retry(self, action: Callable[[], T], what: str,
              give_up: Callable[[BaseException], bool] = lambda _exc: False) -> T:
        """Run ``action`` until it succeeds, backing off on transient failures.

        A failure that is not transient propagates (a bug, or a refusal that retrying
        cannot fix). After a stop request, retrying continues for ``shutdown_grace``
        seconds and then :class:`ShutdownAbandoned` leaves the batch uncommitted.
        """
        delay = BACKOFF_START
        while True:
            try:
                return action()
            except Exception as exc:  # noqa: BLE001 - classified just below
                if give_up(exc) or not is_transient(exc):
                    raise
                metrics.ERRORS.labels(self.stage.name, f"transient_{what.split()[0]}").inc()
                log.warning("transient failure, retrying",
                            extra={"action": what, "error": repr(exc)[:500],
                                   "retry_in": round(delay, 2)})
            if self.stopping.is_set():
                assert self.stop_requested_at is not None
                if time.monotonic() - self.stop_requested_at > self.options.shutdown_grace:
                    raise ShutdownAbandoned(what)
                time.sleep(min(delay, 1.0))
            else:
                self.stopping.wait(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX)
