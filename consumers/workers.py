"""Running a stage as N processes of one consumer group.

Processes, not threads: classification and hashing are CPU-bound and the GIL would
serialise them. Kafka spreads the topic's partitions over the group's members and moves
them when a worker joins or leaves; each worker commits its batch before it polls again,
so a rebalance never loses work. The parent forwards SIGTERM/SIGINT, and restarts a
worker that dies (killed by the OOM killer, a crash in native code, a bug that escapes the
stage) after a growing pause; one that keeps dying is left down and the parent exits
non-zero, so a supervisor (systemd, Docker) or a person sees it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    stage: str
    metrics_port: int = 0
    until_idle: float | None = None
    max_records: int | None = None
    log_level: str = "INFO"
    group: str | None = None


def run_worker(spec: WorkerSpec, worker: int) -> int:
    """Run one consumer process of ``spec.stage`` until idle or told to stop."""
    from consumers.analyzer import Analyzer
    from consumers.indexer import Indexer
    from consumers.logs import configure_logging
    from consumers.stage import RunOptions, StageRunner
    from harmwatch.settings import get_settings

    configure_logging(spec.stage, worker, spec.log_level)
    settings = get_settings()
    stage_class = Analyzer if spec.stage == "analyzer" else Indexer
    stage = stage_class(settings, group=spec.group or spec.stage)
    options = RunOptions(worker=worker, until_idle=spec.until_idle,
                         metrics_port=spec.metrics_port + worker if spec.metrics_port else 0,
                         max_records=spec.max_records or stage.default_batch)
    return StageRunner(stage, settings, options).run()


def _child(spec: WorkerSpec, worker: int) -> None:
    raise SystemExit(run_worker(spec, worker))


def run_workers(spec: WorkerSpec, count: int) -> int:
    """Run ``count`` workers; one runs in this process, more are supervised children."""
    if count == 1:
        return run_worker(spec, 0)
    from consumers.logs import configure_logging

    configure_logging(spec.stage, -1, spec.log_level)
    # N model-running processes each defaulting to every core would oversubscribe the CPU;
    # the spawned children read this when they import torch. An explicit setting wins.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    return Supervisor(spec, count).run()


@dataclass
class Supervisor:
    """Keeps ``count`` worker processes running until they finish or are told to stop."""

    spec: WorkerSpec
    count: int
    restart_pause_max: float = 60.0
    crash_loop: tuple[int, float] = (5, 300.0)  # this many deaths within this many seconds
    running: dict[int, BaseProcess] = field(default_factory=dict)
    restarts_due: dict[int, float] = field(default_factory=dict)
    deaths: dict[int, list[float]] = field(default_factory=dict)
    stopping: bool = False
    failed: bool = False

    def run(self) -> int:
        for worker in range(self.count):
            self._start(worker)
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        while self.running or self.restarts_due:
            self._wait_for_exits()
            self._restart_due_workers()
        return 1 if self.failed else 0

    def _start(self, worker: int) -> None:
        child = multiprocessing.get_context("spawn").Process(
            target=_child, args=(self.spec, worker), name=f"{self.spec.stage}-{worker}")
        child.start()
        self.running[worker] = child
        log.info("worker started", extra={"child": child.name, "pid": child.pid})

    def _forward(self, signum: int, _frame: object) -> None:
        self.stopping = True
        self.restarts_due.clear()
        for child in self.running.values():
            if child.is_alive() and child.pid:
                _signal(child.pid, signum)

    def _wait_for_exits(self) -> None:
        due = list(self.restarts_due.values())  # a signal may clear the dict meanwhile
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        with contextlib.suppress(InterruptedError):
            wait([c.sentinel for c in self.running.values()], timeout=timeout)
        for worker, child in list(self.running.items()):
            if child.exitcode is None:
                continue
            child.join()
            del self.running[worker]
            if child.exitcode == 0:
                continue
            if self.stopping:
                self.failed = True
                log.error("worker exited abnormally while stopping",
                          extra={"child": child.name, "exitcode": child.exitcode})
            else:
                self._died(worker, child)

    def _died(self, worker: int, child: BaseProcess) -> None:
        now = time.monotonic()
        times, window = self.crash_loop
        recent = [t for t in self.deaths.get(worker, []) if now - t < window] + [now]
        self.deaths[worker] = recent
        if len(recent) >= times:
            self.failed = True
            log.error("worker keeps dying; not restarting it (see its log lines above, then "
                      "restart the stage)", extra={"child": child.name,
                                                    "exitcode": child.exitcode,
                                                    "deaths": len(recent)})
            return
        pause = min(2.0 ** (len(recent) - 1), self.restart_pause_max)
        self.restarts_due[worker] = now + pause
        log.error("worker died; restarting it", extra={"child": child.name,
                                                        "exitcode": child.exitcode,
                                                        "restart_in": pause})

    def _restart_due_workers(self) -> None:
        now = time.monotonic()
        for worker, due in list(self.restarts_due.items()):
            if due <= now and not self.stopping:
                del self.restarts_due[worker]
                self._start(worker)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
