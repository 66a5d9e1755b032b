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


def configure_logging(stage: str, worker: int, level: str = "INFO") -> None:
    """Send this process's logs to stderr as JSON lines tagged with stage and worker."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter({"stage": stage, "worker": worker}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Kafka and HTTP clients are chatty at INFO; their warnings still come through.
    for noisy in ("kafka", "elastic_transport", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
