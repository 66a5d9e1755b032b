"""Apache Kafka as a local process: KRaft, one node that is both broker and controller."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.process import (
    Layout,
    ServiceError,
    find_java,
    pid_alive,
    port_open,
    read_pid,
    require_free_ports,
    run_maven,
    stop_recorded,
    tail,
    wait_healthy,
)


def new_cluster_id() -> str:
    """A random KRaft cluster id that never begins with "-".

    Kafka's ids are URL-safe base64, so one in 64 would start with a dash and be read by
    kafka-storage as an option rather than the id; Kafka's own Uuid.randomUuid() redraws those too.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class Kafka:
    layout: Layout
    version: str
    port: int = 9092
    controller_port: int = 9093
    marker: str = "kafka.Kafka"

    @property
    def libs(self) -> Path:
        return self.layout.downloads / f"kafka-{self.version}" / "libs"

    @property
    def log_file(self) -> Path:
        return self.layout.logs / "kafka.log"

    def running_pid(self) -> int | None:
        pid = read_pid(self.layout.pid_file("kafka"))
        return pid if pid and pid_alive(pid, self.marker) else None

    def install(self) -> None:
        if (self.libs / f"kafka_2.13-{self.version}.jar").is_file():
            return
        print(f"  fetching Kafka {self.version} and its runtime jars (Maven, cached in ~/.m2)")
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        run_maven(
            ["dependency:copy-dependencies@kafka-libs", f"-Dkafka.libs.dir={staging}"],
            f"Kafka {self.version}",
        )
        shutil.rmtree(self.libs, ignore_errors=True)
        staging.rename(self.libs)

    def configure(self) -> None:
        self.layout.kafka_data.mkdir(parents=True, exist_ok=True)
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.layout.kafka_data),
            "num.partitions": "6",
            # Topics are created explicitly, with their partition counts (harmwatch topics).
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "168",
        }
        self.layout.kafka_config.parent.mkdir(parents=True, exist_ok=True)
        self.layout.kafka_config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = self.layout.kafka_config.with_name("log4j2.properties")
        log4j.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = FILE\n"
            f"appender.file.fileName = {self.log_file}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = FILE\n"
        )

    def _java(self) -> list[str]:
        java = find_java(17, prefer_exact=True)
        return [
            str(java),
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.layout.kafka_config.with_name('log4j2.properties')}",
            f"-Dkafka.logs.dir={self.layout.logs}",
            "-cp",
            f"{self.libs}/*",
        ]

    def format_storage(self) -> None:
        if (self.layout.kafka_data / "meta.properties").is_file():
            return
        cmd = [*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={new_cluster_id()}",
               "-c", str(self.layout.kafka_config)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(
                f"Formatting Kafka's storage in {self.layout.kafka_data} failed:\n"
                f"{(result.stdout + result.stderr)[-2000:]}\n"
                f"If that directory holds an old broker's data, remove it (harmwatch services "
                f"reset) and try again."
            )

    def start(self) -> None:
        if self.running_pid():
            return
        require_free_ports("Kafka", [self.port, self.controller_port])
        self.install()
        self.configure()
        self.format_storage()
        with open(self.layout.logs / "kafka.out", "ab") as out:
            proc = subprocess.Popen(
                [*self._java(), self.marker, str(self.layout.kafka_config)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.layout.pid_file("kafka").write_text(str(proc.pid))

    def wait_healthy(self, timeout: float = 120.0) -> None:
        wait_healthy(self, "Kafka", self.answers, timeout, self.log_file,
                     lambda: f"{tail(self.log_file)}\n{tail(self.layout.logs / 'kafka.out')}")

    def answers(self) -> bool:
        """True when the broker lists its topics to an admin client."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        if not port_open(self.port):
            return False
        try:
            admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{self.port}",
                                     request_timeout_ms=5000)
            admin.list_topics()
            admin.close()
        except KafkaError:
            return False
        return True

    def stop(self) -> None:
        stop_recorded(self.layout, "kafka", self.marker)

    def describe(self) -> str:
        pid = self.running_pid()
        if not pid:
            return f"kafka          stopped   (Apache Kafka {self.version}, KRaft)"
        return f"kafka          running   pid {pid}  127.0.0.1:{self.port}  Apache Kafka {self.version} (KRaft)"


