"""Structured JSON logs for the consumers: one object per line, with the post key.

Log collectors (journald, Loki, Elastic Agent) parse one JSON object per line without
configuration, and an operator chasing one post greps for its key across every stage.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """Render a record and every ``extra=`` field (key, topic, offset, ...) as JSON."""

    def __init__(self, static: dict[str, object]) -> None:
        super().__init__()
        self.static = static

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.static,
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class RepeatFilter(logging.Filter):
    """Let each distinct message template through once per ``interval`` seconds.

    While a broker is down, the Kafka client logs the same connection error many times a
    second; one line per kind every few seconds says as much without drowning the rest.
    """

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self.last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(("kafka", "elastic_transport")):
            return True
        key = (record.name, record.msg)
        if record.created - self.last.get(key, float("-inf")) < self.interval:
            return False
        self.last[key] = record.created
        return True


def configure_logging(stage: str, worker: int, level: str = "INFO") -> None:
    """Send this process's logs to stderr as JSON lines tagged with stage and worker."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter({"stage": stage, "worker": worker}))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Kafka and HTTP clients are chatty at INFO; their warnings still come through.
    for noisy in ("kafka", "elastic_transport", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
