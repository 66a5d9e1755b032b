"""Prometheus metrics of one consumer process, served on ``/metrics``.

Each worker process has its own endpoint (base port + worker index) rather than
multiprocess collection, so one scrape target is one process and nothing is shared
through files. Step timings are histograms labelled by step, which is also what the
benchmark reads to say where the time goes.
"""

from __future__ import annotations

import time
from collections import deque

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                 2.5, 5.0, 10.0, 30.0)

MESSAGES = Counter(
    "harmwatch_consumer_messages",
    "Messages handled, by outcome (forwarded, below_floor, indexed, duplicate, dead_lettered).",
    ["stage", "outcome"],
)
ERRORS = Counter(
    "harmwatch_consumer_errors",
    "Failures by kind: transient ones are retried, the others dead-lettered or logged.",
    ["stage", "kind"],
)
DEAD_LETTERED = Counter(
    "harmwatch_consumer_dead_lettered", "Messages sent to the dead-letter topic.", ["stage"]
)
LAG = Gauge(
    "harmwatch_consumer_lag", "Messages behind the partition's high watermark.",
    ["stage", "topic", "partition"],
)
RATE = Gauge(
    "harmwatch_consumer_messages_per_second", "Messages handled per second over the last minute.",
    ["stage"],
)
READY = Gauge(
    "harmwatch_consumer_ready", "1 once engines and clients are loaded and consuming.", ["stage"]
)
STEP_SECONDS = Histogram(
    "harmwatch_consumer_step_seconds",
    "Time spent per step (per message for analysis steps, per batch for writes and commits).",
    ["stage", "step"], buckets=_STEP_BUCKETS,
)
BATCH_SECONDS = Histogram(
    "harmwatch_consumer_batch_seconds", "Wall time of one batch, poll to commit.", ["stage"],
    buckets=_STEP_BUCKETS,
)
RECORD_LATENCY = Histogram(
    "harmwatch_consumer_record_latency_seconds",
    "From the record's Kafka timestamp to its batch being committed downstream.",
    ["stage"], buckets=_STEP_BUCKETS,
)


def serve(port: int) -> None:
    """Start the ``/metrics`` endpoint on 127.0.0.1:``port`` (0 means no endpoint)."""
    if port:
        start_http_server(port, addr="127.0.0.1")


class RateMeter:
    """Messages per second over a sliding window, for the ``messages_per_second`` gauge."""

    def __init__(self, stage: str, window: float = 60.0) -> None:
        self.window = window
        self.events: deque[tuple[float, int]] = deque()
        self.gauge = RATE.labels(stage)

    def add(self, count: int) -> None:
        now = time.monotonic()
        self.events.append((now, count))
        while self.events and self.events[0][0] < now - self.window:
            self.events.popleft()
        span = max(now - self.events[0][0], 1.0)
        self.gauge.set(sum(c for _, c in self.events) / span)
