"""Kafka clients configured one way for every stage.

Producers wait for the broker's acknowledgement (``acks=all``) and retry; consumers
never auto-commit, so a stage commits an offset only after its downstream write
succeeded (at-least-once; idempotent writes downstream make it effectively once).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from harmwatch.settings import Settings


def topic_plan(settings: Settings) -> list[tuple[str, int]]:
    """Each harmwatch topic with its partition count (the dead-letter topic needs fewer)."""
    return [
        (settings.topic_raw, settings.topic_partitions),
        (settings.topic_flagged, settings.topic_partitions),
        (settings.topic_dead, 1),
    ]


def admin_client(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="harmwatch-admin",
        request_timeout_ms=15000,
    )


def ensure_topics(
    settings: Settings, extra: Iterable[tuple[str, int]] = ()
) -> list[tuple[str, int, bool]]:
    """Create missing topics with explicit partition counts; returns (name, partitions, created)."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        report = []
        for name, partitions in [*topic_plan(settings), *extra]:
            created = False
            if name not in existing:
                try:
                    admin.create_topics(
                        [NewTopic(name, partitions, settings.topic_replication)],
                        validate_only=False,
                    )
                    created = True
                except TopicAlreadyExistsError:
                    pass
            report.append((name, partitions, created))
        return report
    finally:
        admin.close()


# What a record costs beyond its key and value inside a batch request (headers, varints,
# the batch header): generous, so a message that passes :func:`fits` is never refused.
RECORD_OVERHEAD = 1024


def fits(settings: Settings, key: bytes | None, value: bytes) -> bool:
    """Whether a producer made by :func:`make_producer` will accept this message.

    Checked before sending because kafka-python refuses an oversized message with an
    error that no retry can fix; a stage that retried it would stall its partition.
    """
    return len(value) + len(key or b"") + RECORD_OVERHEAD <= settings.kafka_max_message_bytes


def make_producer(settings: Settings, client_id: str, **overrides: Any) -> KafkaProducer:
    """A producer whose sends count only once the broker acknowledged them on all replicas."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "acks": "all",
        "retries": 10,
        "retry_backoff_ms": 500,
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 1,  # keeps a key's versions in order on retry
        "request_timeout_ms": 30000,
        "max_block_ms": 60000,
        "key_serializer": lambda key: key.encode("utf-8") if key is not None else None,
        "compression_type": "gzip",
        "max_request_size": settings.kafka_max_message_bytes,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def make_consumer(
    settings: Settings, group_id: str, topics: list[str], client_id: str, **overrides: Any
) -> KafkaConsumer:
    """A group consumer that never commits on its own: callers commit after their writes."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 200,
        "max_poll_interval_ms": 300000,
        "session_timeout_ms": 30000,
        "heartbeat_interval_ms": 3000,
    }
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    consumer.subscribe(topics)
    return consumer
