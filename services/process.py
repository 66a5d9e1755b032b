"""What both local services share: their files under ``var/``, Java, ports, disk, pids, Maven.

``services/kafka_broker.py`` and ``services/elasticsearch_node.py`` each run one service
with these; ``services/manager.py`` starts, stops and reports both.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from xml.etree import ElementTree

from harmwatch.settings import REPO_ROOT

POM = REPO_ROOT / "services" / "pom.xml"
MIN_FREE_DISK_BYTES = 2 * 1024**3


class Service(Protocol):
    """What ``exited`` needs of a service (Kafka and Elasticsearch both have it)."""

    def running_pid(self) -> int | None: ...


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


def exited(service: Service) -> bool:
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


def wait_healthy(service: Service, name: str, healthy: Callable[[], bool], timeout: float,
                 log_file: Path, start_up_logs: Callable[[], str]) -> None:
    """Poll ``healthy()`` once a second until it is true; fail at once if the process died.

    The failure quotes the service's log, which is where the reason for a crash is.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited(service):
            raise ServiceError(f"{name} exited during start-up. Last lines of {log_file}:\n"
                               f"{start_up_logs()}")
        if healthy():
            return
        time.sleep(1)
    raise ServiceError(f"{name} did not become healthy within {timeout:.0f}s. See {log_file}.")


def stop_recorded(layout: Layout, name: str, marker: str) -> None:
    """Stop the process whose pid ``up`` recorded for ``name``, and forget the pid."""
    if pid := read_pid(layout.pid_file(name)):
        stop_pid(pid, marker)
    layout.pid_file(name).unlink(missing_ok=True)


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


