"""Running a stage as N processes of one consumer group.

Processes, not threads: classification and hashing are CPU-bound and the GIL would
serialise them. Kafka spreads the topic's partitions over the group's members and moves
them when a worker joins or leaves; each worker commits its batch before it polls again,
so a rebalance never loses work. The parent only forwards SIGTERM/SIGINT and waits.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass

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
    """Run ``count`` workers; one runs in this process, more are spawned children."""
    if count == 1:
        return run_worker(spec, 0)
    from consumers.logs import configure_logging

    configure_logging(spec.stage, -1, spec.log_level)
    # N model-running processes each defaulting to every core would oversubscribe the CPU;
    # the spawned children read this when they import torch. An explicit setting wins.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // count)))
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_child, args=(spec, i), name=f"{spec.stage}-{i}")
                for i in range(count)]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                _signal(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = []
    for child in children:
        child.join()
        codes.append(child.exitcode)
        if child.exitcode:
            log.error("worker exited abnormally",
                      extra={"worker": child.name, "exitcode": child.exitcode})
    return 0 if all(code == 0 for code in codes) else 1


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
