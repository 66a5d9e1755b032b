"""The local services manager's preconditions fail with messages that say what to do."""

from __future__ import annotations

import socket

import pytest

from services import kafka_broker, manager, process
from services.kafka_broker import new_cluster_id


def test_pinned_versions_come_from_the_pom():
    versions = manager.pinned_versions()
    assert versions["kafka.version"].startswith("4.")
    assert versions["elasticsearch.version"].split(".")[0] in {"7", "8", "9"}


def test_a_taken_port_is_reported_with_the_next_step():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(process.ServiceError, match=rf"Port {port}.*ss -ltnp"):
            process.require_free_ports("Kafka", [port])


def test_missing_java_says_how_to_install_it():
    with pytest.raises(process.ServiceError, match="No Java 99 or newer.*apt-get install"):
        process.find_java(99)


def test_elasticsearch_gets_a_java_of_21_or_newer():
    assert process.java_major(process.find_java(21)) >= 21
    assert process.java_major(process.find_java(17, prefer_exact=True)) >= 17


def test_status_reports_the_running_services(services):
    from harmwatch.settings import get_settings

    lines = manager.status(get_settings())
    assert any(line.startswith("kafka") and " running " in line for line in lines)
    assert any(line.startswith("elasticsearch") and " running " in line for line in lines)


def test_services_listen_where_the_settings_point_clients():
    from harmwatch.settings import load_settings

    kafka, es = manager.services_for(load_settings(kafka_bootstrap="127.0.0.1:39092",
                                                   es_url="http://127.0.0.1:39200"))
    assert (kafka.port, kafka.controller_port) == (39092, 39093)
    assert (es.port, es.transport_port) == (39200, 39300)
    with pytest.raises(process.ServiceError, match="HARMWATCH_ES_URL.*127.0.0.1"):
        manager.services_for(load_settings(es_url="http://search.internal:9200"))


def test_cluster_ids_never_look_like_an_option():
    assert not any(new_cluster_id().startswith("-") for _ in range(2000))


def test_storage_formats_even_when_the_cluster_id_starts_with_a_dash(services, tmp_path, monkeypatch):
    """One fresh clone in 64 drew such an id and `services up` failed (CI, 2026-11-29)."""
    import base64

    from harmwatch.settings import get_settings

    installed = manager.services_for(get_settings())[0]
    kafka = manager.Kafka(manager.Layout(tmp_path), installed.version, port=39092, controller_port=39093)
    kafka.libs.parent.mkdir(parents=True)
    kafka.libs.symlink_to(installed.libs.resolve())
    dash_id = base64.urlsafe_b64encode(bytes([0xF8]) + bytes(15)).decode().rstrip("=")
    assert dash_id.startswith("-")
    monkeypatch.setattr(kafka_broker, "new_cluster_id", lambda: dash_id)
    kafka.configure()
    kafka.format_storage()
    assert f"cluster.id={dash_id}" in (kafka.layout.kafka_data / "meta.properties").read_text()
