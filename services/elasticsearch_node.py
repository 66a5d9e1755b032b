"""Elasticsearch as a local process: one node on loopback, from Maven Central's integ-test zip."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from services.process import (
    Layout,
    ServiceError,
    find_java,
    pid_alive,
    read_pid,
    require_free_ports,
    run_maven,
    stop_recorded,
    tail,
    wait_healthy,
)

ES_USER = "harmwatch-es"  # Elasticsearch refuses to run as root.




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
        wait_healthy(self, "Elasticsearch", self.answers, timeout, self.log_file,
                     lambda: tail(self.log_file))

    def answers(self) -> bool:
        """True when the cluster health is yellow or green."""
        health_url = f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=5s"
        try:
            with urllib.request.urlopen(health_url, timeout=10) as response:
                return json.load(response).get("status") in ("green", "yellow")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def stop(self) -> None:
        stop_recorded(self.layout, "elasticsearch", self.marker)

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




