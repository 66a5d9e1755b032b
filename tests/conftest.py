"""Shared fixtures. Integration tests use the REAL Kafka and Elasticsearch.

`make test` starts them (`harmwatch services up`) before pytest and stops them after.
Every test session gets its own topic names and index prefix, so runs never see each
other's data and nothing needs cleaning between runs.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Iterator

import pytest

from harmwatch.settings import Settings, load_settings

RUN_ID = uuid.uuid4().hex[:8]


def _services_reachable(settings: Settings) -> tuple[str, str]:
    """Server versions of the running services, or a failure that says what to run."""
    from kafka import KafkaAdminClient

    from harmwatch.search import es_client, server_version
    from services.manager import pinned_versions

    try:
        es_version = server_version(es_client(settings, max_retries=0, request_timeout=5))
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                 request_timeout_ms=5000)
        admin.list_topics()
        admin.close()
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(
            f"Kafka/Elasticsearch not reachable ({exc!r}). Start them with "
            "`harmwatch services up` (or run the whole suite with `make test`).",
            pytrace=False,
        )
    return pinned_versions()["kafka.version"], es_version


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings isolated to this test session: own topics, index prefix, blob and bank dirs."""
    var = tmp_path_factory.mktemp("var")
    # One evidence (at-rest) key for the whole session, as one deployment has one: tests
    # that give themselves their own var_dir still share the blob store and the seal index,
    # and a key generated per var_dir would make one test's sealed blobs unreadable to the
    # next test that meets the same synthetic image.
    evidence_key = base64.b64encode(secrets.token_bytes(32)).decode()
    return load_settings(
        evidence_key=evidence_key,
        topic_raw=f"test-{RUN_ID}.posts.raw",
        topic_flagged=f"test-{RUN_ID}.posts.flagged",
        topic_dead=f"test-{RUN_ID}.posts.dead",
        topic_partitions=3,
        es_index_prefix=f"test-{RUN_ID}",
        blob_dir=var / "blobs",
        banks_dir=var / "banks",
    )


def pytest_report_header(config: pytest.Config) -> str:
    """Name, in the log's header, the server versions the integration tests run against."""
    settings = load_settings()
    try:
        kafka_version, es_version = _services_reachable(settings)
    except pytest.fail.Exception:
        return (f"integration services: NOT reachable at {settings.kafka_bootstrap} / "
                f"{settings.es_url} (start them with `harmwatch services up`)")
    return (f"integration services: Apache Kafka {kafka_version} at {settings.kafka_bootstrap}, "
            f"Elasticsearch {es_version} at {settings.es_url}")


@pytest.fixture(scope="session")
def services(settings: Settings) -> Iterator[Settings]:
    """Request this fixture in any test that talks to Kafka or Elasticsearch."""
    _services_reachable(settings)
    yield settings
    _drop_test_data(settings)


def _drop_test_data(settings: Settings) -> None:
    from harmwatch.kafka import admin_client
    from harmwatch.search import es_client

    client = es_client(settings)
    for index in client.indices.get(index=f"{settings.es_index_prefix}-*",
                                    expand_wildcards="all", ignore_unavailable=True):
        client.indices.delete(index=index, ignore_unavailable=True)
    lenient = client.options(ignore_status=404)
    templates = lenient.indices.get_index_template(name=f"{settings.es_index_prefix}-*")
    for template in templates.get("index_templates", []):
        lenient.indices.delete_index_template(name=template["name"])
    admin = admin_client(settings)
    try:
        ours = [t for t in admin.list_topics() if t.startswith(f"test-{RUN_ID}")]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()
