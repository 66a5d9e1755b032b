"""The real services answer, and the shared clients set them up idempotently."""

from __future__ import annotations

from harmwatch.documents import ensure_indices, get_thresholds, items_alias, put_thresholds
from harmwatch.kafka import admin_client, ensure_topics
from harmwatch.search import es_client, server_version
from services.manager import pinned_versions


def test_elasticsearch_is_the_pinned_version(services):
    assert server_version(es_client(services)) == pinned_versions()["elasticsearch.version"]


def test_topics_are_created_with_explicit_partitions(services):
    first = ensure_topics(services)
    second = ensure_topics(services)
    assert [(n, p) for n, p, _ in first] == [
        (services.topic_raw, 3), (services.topic_flagged, 3), (services.topic_dead, 1)]
    assert not any(created for _, _, created in second)
    admin = admin_client(services)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(
            [services.topic_raw, services.topic_dead])}
    finally:
        admin.close()
    assert described == {services.topic_raw: 3, services.topic_dead: 1}


def test_indices_live_behind_versioned_aliases(services):
    client = es_client(services)
    ensure_indices(client, services)
    ensure_indices(client, services)
    aliases = client.indices.get_alias(name=items_alias(services))
    assert list(aliases) == [f"{items_alias(services)}-v1"]


def test_thresholds_round_trip_and_validate(services):
    client = es_client(services)
    ensure_indices(client, services)
    saved = put_thresholds(client, services, {"grooming": 0.42}, user="test")
    assert get_thresholds(client, services) == saved
    assert saved["grooming"] == 0.42
    try:
        put_thresholds(client, services, {"grooming": 1.5}, user="test")
    except ValueError as exc:
        assert "grooming" in str(exc)
    else:
        raise AssertionError("a threshold above 1 was accepted")
