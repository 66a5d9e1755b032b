"""Runs the real Kafka broker and Elasticsearch node as local processes, without Docker.

Both come from Maven Central at the versions pinned in ``services/pom.xml``; Maven's
own cache (~/.m2) keeps the downloads, and the unpacked copies live in
``var/services/``. Data and logs live under ``var/``; pid files under ``var/run/``.
``up`` is idempotent: a service already running (its pid alive and its port answering)
is left alone. ``down`` stops only the processes whose pids ``up`` recorded.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

from harmwatch.settings import REPO_ROOT, Settings

POM = REPO_ROOT / "services" / "pom.xml"
MIN_FREE_DISK_BYTES = 2 * 1024**3
ES_USER = "harmwatch-es"  # Elasticsearch refuses to run as root.


class ServiceError(RuntimeError):
    """A service could not be started or stopped; the message says what to do next."""


@dataclass(frozen=True)
class Layout:
    """Where each service keeps its files under ``var/``."""

    var: Path

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def logs(self) -> Path:
        return self.var / "logs"

    @property
    def downloads(self) -> Path:
        return self.var / "services"

    @property
    def kafka_data(self) -> Path:
        return self.var / "kafka" / "data"

    @property
    def kafka_config(self) -> Path:
        return self.var / "kafka" / "server.properties"

    @property
    def es_root(self) -> Path:
        return self.var / "elasticsearch"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"


def pinned_versions(pom: Path = POM) -> dict[str, str]:
    """The versions in the pom's <properties>, so Python and Maven never disagree."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ElementTree.parse(pom).getroot()
    props = root.find("m:properties", ns)
    if props is None:
        raise ServiceError(f"{pom} has no <properties>; restore it from git.")
    return {child.tag.split("}", 1)[1]: (child.text or "").strip() for child in props}


# ---------------------------------------------------------------------------
# Preconditions: Java, ports, disk
# ---------------------------------------------------------------------------


def java_major(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def _java_candidates() -> Iterator[Path]:
    if home := os.environ.get("JAVA_HOME"):
        yield Path(home) / "bin" / "java"
    if on_path := shutil.which("java"):
        yield Path(on_path).resolve()
    yield from sorted(Path("/usr/lib/jvm").glob("*/bin/java"))


def find_java(minimum: int, prefer_exact: bool = False) -> Path:
    """A Java of at least ``minimum`` (the lowest such when ``prefer_exact``)."""
    found: list[tuple[int, Path]] = []
    for candidate in _java_candidates():
        if candidate.is_file() and (major := java_major(candidate)) and major >= minimum:
            found.append((major, candidate))
    if not found:
        raise ServiceError(
            f"No Java {minimum} or newer found (looked at $JAVA_HOME, PATH and /usr/lib/jvm/*). "
            f"Install one, e.g. `apt-get install openjdk-17-jre-headless` (Kafka needs 17+, "
            f"Elasticsearch 21+), or point JAVA_HOME at it."
        )
    found.sort(key=lambda item: item[0], reverse=not prefer_exact)
    return found[0][1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_ports(service: str, ports: list[int]) -> None:
    for port in ports:
        if port_open(port):
            raise ServiceError(
                f"Port {port} on 127.0.0.1, which {service} needs, is taken by another process "
                f"that harmwatch did not start. Find it with `ss -ltnp 'sport = :{port}'` and stop "
                f"it, or move harmwatch's {service} to a free port (HARMWATCH_KAFKA_BOOTSTRAP, "
                f"HARMWATCH_ES_URL), then run `harmwatch services up` again."
            )


def require_disk(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_DISK_BYTES:
        raise ServiceError(
            f"Only {free / 1024**3:.1f} GiB free under {path}; Kafka and Elasticsearch need at "
            f"least {MIN_FREE_DISK_BYTES / 1024**3:.0f} GiB. Free some space or set "
            f"HARMWATCH_VAR_DIR to a larger disk."
        )


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs and its command line contains ``marker`` (no recycled pids)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return marker.encode() in cmdline


def exited(service: Kafka | Elasticsearch) -> bool:
    """True only when the service's process is gone on two looks a second apart.

    A single look can miss a process that is alive but briefly unreadable in /proc
    under heavy load (seen while restarting the broker under load).
    """
    if service.running_pid():
        return False
    time.sleep(1)
    return service.running_pid() is None


def stop_pid(pid: int, marker: str, timeout: float = 60.0) -> None:
    if not pid_alive(pid, marker):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return
        time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def run_maven(args: list[str], what: str) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError(
            f"Maven is needed to fetch {what} from Maven Central; install it with "
            "`apt-get install maven`."
        )
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ServiceError(
            f"Maven could not resolve {what} (exit {result.returncode}). Check that Maven "
            f"Central is reachable and the version in services/pom.xml exists.\n"
            f"{(result.stdout + result.stderr)[-2000:]}"
        )


# ---------------------------------------------------------------------------
# Kafka (KRaft, single node: broker and controller in one process)
# ---------------------------------------------------------------------------


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
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if exited(self):
                raise ServiceError(
                    f"Kafka exited during start-up. Last lines of {self.log_file}:\n"
                    f"{tail(self.log_file)}\n{tail(self.layout.logs / 'kafka.out')}"
                )
            if port_open(self.port):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=f"127.0.0.1:{self.port}", request_timeout_ms=5000
                    )
                    admin.list_topics()
                    admin.close()
                    return
                except KafkaError:
                    pass
            time.sleep(1)
        raise ServiceError(
            f"Kafka did not become healthy within {timeout:.0f}s. See {self.log_file}."
        )

    def stop(self) -> None:
        if pid := read_pid(self.layout.pid_file("kafka")):
            stop_pid(pid, self.marker)
        self.layout.pid_file("kafka").unlink(missing_ok=True)

    def describe(self) -> str:
        pid = self.running_pid()
        if not pid:
            return f"kafka          stopped   (Apache Kafka {self.version}, KRaft)"
        return f"kafka          running   pid {pid}  127.0.0.1:{self.port}  Apache Kafka {self.version} (KRaft)"


# ---------------------------------------------------------------------------
# Elasticsearch (single node, loopback only)
# ---------------------------------------------------------------------------


@dataclass
class Elasticsearch:
    layout: Layout
    version: str
    port: int = 9200
    transport_port: int = 9300
    heap: str = "1g"
    marker: str = "org.elasticsearch"

    @property
    def home(self) -> Path:
        return self.layout.downloads / f"elasticsearch-{self.version}"

    @property
    def log_file(self) -> Path:
        return self.layout.es_root / "logs" / "harmwatch.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running_pid(self) -> int | None:
        pid = read_pid(self.layout.pid_file("elasticsearch"))
        return pid if pid and pid_alive(pid, self.marker) else None

    def install(self) -> None:
        if (self.home / "bin" / "elasticsearch").is_file():
            return
        print(f"  fetching Elasticsearch {self.version} (Maven, cached in ~/.m2)")
        zip_dir = self.layout.downloads / "zips"
        run_maven(
            ["dependency:copy@elasticsearch-zip", f"-Delasticsearch.zip.dir={zip_dir}"],
            f"Elasticsearch {self.version}",
        )
        archive = zip_dir / f"elasticsearch-{self.version}.zip"
        staging = self.layout.downloads / "elasticsearch.partial"
        shutil.rmtree(staging, ignore_errors=True)
        _unzip_with_modes(archive, staging)
        shutil.rmtree(self.home, ignore_errors=True)
        (staging / f"elasticsearch-{self.version}").rename(self.home)
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink()

    def configure(self) -> None:
        data, logs = self.layout.es_root / "data", self.layout.es_root / "logs"
        for path in (data, logs, self.layout.es_root / "tmp"):
            path.mkdir(parents=True, exist_ok=True)
        config = {
            "cluster.name": "harmwatch",
            "node.name": "harmwatch-1",
            "network.host": "127.0.0.1",
            "http.port": self.port,
            "transport.port": self.transport_port,
            "discovery.type": "single-node",
            "path.data": str(data),
            "path.logs": str(logs),
            # Loopback-only development node. Production (docker-compose.yml) turns security on.
            "xpack.security.enabled": False,
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.destructive_requires_name": True,
        }
        (self.home / "config" / "elasticsearch.yml").write_text(
            "".join(f"{k}: {json.dumps(v)}\n" for k, v in config.items())
        )
        (self.home / "config" / "jvm.options.d" / "harmwatch-heap.options").write_text(
            f"-Xms{self.heap}\n-Xmx{self.heap}\n"
        )

    def _run_as(self) -> list[str]:
        """Elasticsearch will not run as root: drop to a system user when we are root."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(ES_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 ES_USER],
                check=True,
            )
        _make_traversable(self.home)
        for path in (self.home, self.layout.es_root):
            subprocess.run(["chown", "-R", f"{ES_USER}:{ES_USER}", str(path)], check=True)
        return ["runuser", "-u", ES_USER, "--"]

    def start(self) -> None:
        if self.running_pid():
            return
        require_free_ports("Elasticsearch", [self.port, self.transport_port])
        java = find_java(21)
        self.install()
        self.configure()
        pid_file = self.layout.pid_file("elasticsearch")
        es_pid_file = self.layout.es_root / "elasticsearch.pid"
        es_pid_file.unlink(missing_ok=True)
        env = {
            **os.environ,
            "ES_JAVA_HOME": str(java.parent.parent),
            "ES_TMPDIR": str(self.layout.es_root / "tmp"),
        }
        env.pop("JAVA_HOME", None)
        cmd = [*self._run_as(), str(self.home / "bin" / "elasticsearch"), "-d", "-p",
               str(es_pid_file)]
        with open(self.layout.logs / "elasticsearch.out", "ab") as out:
            result = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ServiceError(
                f"Elasticsearch failed to start (exit {result.returncode}). Last lines of "
                f"{self.layout.logs / 'elasticsearch.out'}:\n"
                f"{tail(self.layout.logs / 'elasticsearch.out')}"
            )
        pid = read_pid(es_pid_file)
        if pid is None:
            raise ServiceError(f"Elasticsearch wrote no pid file; see {self.log_file}.")
        pid_file.write_text(str(pid))

    def wait_healthy(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        health_url = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=5s"
        while time.monotonic() < deadline:
            if exited(self):
                raise ServiceError(
                    f"Elasticsearch exited during start-up. Last lines of {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            try:
                with urllib.request.urlopen(health_url, timeout=10) as response:
                    if json.load(response).get("status") in ("green", "yellow"):
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            time.sleep(1)
        raise ServiceError(
            f"Elasticsearch did not become healthy within {timeout:.0f}s. See {self.log_file}."
        )

    def stop(self) -> None:
        if pid := read_pid(self.layout.pid_file("elasticsearch")):
            stop_pid(pid, self.marker)
        self.layout.pid_file("elasticsearch").unlink(missing_ok=True)

    def server_version(self) -> str | None:
        try:
            # The integ-test distribution has no rest-root module, so no `GET /`.
            url = f"{self.url}/_nodes/_local?filter_path=nodes.*.version"
            with urllib.request.urlopen(url, timeout=5) as response:
                nodes = json.load(response)["nodes"]
            return next(iter(nodes.values()))["version"]
        except (urllib.error.URLError, OSError, ValueError, KeyError, StopIteration):
            return None

    def describe(self) -> str:
        pid = self.running_pid()
        if not pid:
            return f"elasticsearch  stopped   (Elasticsearch {self.version})"
        running = self.server_version() or "not answering"
        return f"elasticsearch  running   pid {pid}  {self.url}  Elasticsearch {running}"


def _unzip_with_modes(archive: Path, target: Path) -> None:
    """Unzip keeping the executable bits (zipfile drops them; Elasticsearch needs bin/*)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode)


def _make_traversable(path: Path) -> None:
    """Let the Elasticsearch user walk down to its files (adds o+x on ancestors only)."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


# ---------------------------------------------------------------------------
# The commands
# ---------------------------------------------------------------------------


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
