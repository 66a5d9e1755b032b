"""Runs the real Kafka broker and Elasticsearch node as local processes, without Docker.

Both come from Maven Central at the versions pinned in ``services/pom.xml``; Maven's
own cache (~/.m2) keeps the downloads, and the unpacked copies live in
``var/services/``. Data and logs live under ``var/``; pid files under ``var/run/``.
``up`` is idempotent: a service already running (its pid alive and its port answering)
is left alone. ``down`` stops only the processes whose pids ``up`` recorded.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from harmwatch.settings import Settings
from services.elasticsearch_node import Elasticsearch
from services.kafka_broker import Kafka
from services.process import Layout, ServiceError, pinned_versions, require_disk

__all__ = ["Elasticsearch", "Kafka", "Layout", "ServiceError", "down", "local_port",
           "pinned_versions", "services_for", "status", "up"]


def local_port(address: str, setting: str) -> int:
    """The port of a loopback address from settings: the local services listen there."""
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    if parsed.hostname not in ("127.0.0.1", "localhost") or parsed.port is None:
        raise ServiceError(
            f"{setting}={address!r}: `harmwatch services` runs Kafka and Elasticsearch on this "
            f"machine only, so it needs a 127.0.0.1 address with a port (e.g. 127.0.0.1:9092). "
            f"For remote services, do not run `harmwatch services`."
        )
    return parsed.port


def services_for(settings: Settings) -> tuple[Kafka, Elasticsearch]:
    """The two services, listening where the settings say clients will look for them.

    The controller and transport ports sit next to the client ports (+1, +100), so moving
    a service away from a taken port is one setting: HARMWATCH_KAFKA_BOOTSTRAP or
    HARMWATCH_ES_URL.
    """
    layout = Layout(settings.var_dir)
    versions = pinned_versions()
    kafka_port = local_port(settings.kafka_bootstrap, "HARMWATCH_KAFKA_BOOTSTRAP")
    es_port = local_port(settings.es_url, "HARMWATCH_ES_URL")
    return (
        Kafka(layout, versions["kafka.version"], port=kafka_port, controller_port=kafka_port + 1),
        Elasticsearch(layout, versions["elasticsearch.version"], port=es_port,
                      transport_port=es_port + 100),
    )


def up(settings: Settings) -> None:
    layout = Layout(settings.var_dir)
    require_disk(layout.var)
    layout.run.mkdir(parents=True, exist_ok=True)
    layout.logs.mkdir(parents=True, exist_ok=True)
    kafka, es = services_for(settings)
    started = time.monotonic()
    for service in (kafka, es):
        if service.running_pid():
            print(f"  {type(service).__name__.lower()} already running (pid {service.running_pid()})")
        else:
            service.start()
    kafka.wait_healthy()
    es.wait_healthy()
    print(f"  healthy after {time.monotonic() - started:.1f}s")


def down(settings: Settings) -> None:
    kafka, es = services_for(settings)
    for service in (kafka, es):
        service.stop()


def status(settings: Settings) -> list[str]:
    kafka, es = services_for(settings)
    return [kafka.describe(), es.describe()]
